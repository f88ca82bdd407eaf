"""The Store contract (storage/base.py), run against every implementation.

MemoryStore (with message persistence on) and SQLiteStore must behave alike: definitions,
users, policies and delayed messages survive a restart unchanged (argument tables as the same
bytes), the message operations keep entries per queue in seq order, commit callbacks run in
order and never synchronously, and the backlog is a signal, not a side effect on clients.
"""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pika
import pytest

from amqp_broker.args import encode_typed_table
from amqp_broker.server import ClientConnection
from amqp_broker.session import backpressure
from amqp_broker.message import Message
from amqp_broker.storage import EMPTY_TABLE, BindingDef, ExchangeDef, MemoryStore, QueueDef, Store
from amqp_broker.storage import commit as commit_module
from amqp_broker.storage import sqlite as sqlite_module
from amqp_broker.storage.sqlite import BACKLOG_HIGH, BACKLOG_LOW, SQLiteStore
from helpers.broker import BrokerThread

TYPED_ARGS = encode_typed_table({
    "x-message-ttl": ("l", 60000),  # a long-long, not the long a guess would pick
    "x-dead-letter-exchange": ("S", "dlx"),
    "x-queue-mode": ("x", bytearray(b"lazy")),  # byte array
    "flag": ("t", True),
    "small": ("b", -3),
    "nested": ("F", {"a": 1}),
})


class Harness:
    """One store, restartable the way a broker restart sees it (close, then open again)."""

    def __init__(self, kind: str, data_dir):
        self.kind = kind
        self.data_dir = data_dir
        self.store: Store = self._new()

    def _new(self) -> Store:
        return MemoryStore(persist_messages=True) if self.kind == "memory" else SQLiteStore(self.data_dir)

    async def restart(self) -> Store:
        await self.store.close()
        if self.kind == "sqlite":
            self.store = self._new()
        await self.store.open()
        return self.store


@pytest.fixture(params=["memory", "sqlite"])
async def harness(request, tmp_path):
    h = Harness(request.param, tmp_path / "data")
    await h.store.open()
    yield h
    await h.store.close()


def msg(body: bytes, routing_key: str = "k") -> Message:
    m = Message("ex", routing_key, b"\x00\x3c\x00\x00header", body)
    m.persistent = True
    return m


def test_message_persistence_flags():
    assert MemoryStore().persists_messages is False  # a transient broker's publish path skips it
    assert MemoryStore(persist_messages=True).persists_messages is True
    assert SQLiteStore("unused").persists_messages is True


# -- definitions ---------------------------------------------------------------------------------


async def test_definitions_round_trip_with_identical_argument_bytes(harness):
    store = harness.store
    xd = ExchangeDef("/", "x", "topic", True, True, True, TYPED_ARGS)
    plain = ExchangeDef("/", "plain", "direct")
    store.save_exchange(xd)
    store.save_exchange(plain)
    qid = store.save_queue(QueueDef("/", "q", True, False, TYPED_ARGS))
    other = store.save_queue(QueueDef("/", "q2"))
    assert isinstance(qid, int) and isinstance(other, int) and qid != other
    bindings = [
        BindingDef("/", "x", "queue", "q", "a.#", TYPED_ARGS),
        BindingDef("/", "x", "queue", "q", "a.#"),  # same but for the arguments: a second binding
        BindingDef("/", "x", "exchange", "plain", ""),
    ]
    for b in bindings:
        store.save_binding(b)
    store.save_binding(bindings[0])  # saving twice keeps one
    await store.flush()

    defs = (await harness.restart()).load()
    assert sorted(defs.exchanges, key=lambda d: d.name) == [plain, xd]
    assert [d.arguments for d in defs.exchanges if d.name == "x"] == [TYPED_ARGS]
    queues = {d.name: d for d in defs.queues}
    assert queues["q"] == QueueDef("/", "q", True, False, TYPED_ARGS, store_id=qid)
    assert queues["q2"] == QueueDef("/", "q2", True, False, EMPTY_TABLE, store_id=other)
    assert sorted(defs.bindings, key=repr) == sorted(bindings, key=repr)


async def test_deleting_definitions_takes_their_bindings(harness):
    store = harness.store
    for name in ("a", "b", "c"):
        store.save_exchange(ExchangeDef("/", name, "direct"))
    store.save_queue(QueueDef("/", "q"))
    store.save_binding(BindingDef("/", "a", "queue", "q", "k"))
    store.save_binding(BindingDef("/", "a", "exchange", "b", "k"))
    store.save_binding(BindingDef("/", "c", "exchange", "a", "k"))
    store.save_binding(BindingDef("/", "c", "exchange", "b", "k"))
    store.save_binding(BindingDef("/", "c", "queue", "q", "k", TYPED_ARGS))
    store.delete_binding(BindingDef("/", "c", "queue", "q", "k"))  # other arguments: not this one
    store.delete_exchange("/", "a")  # as source and as destination
    await store.flush()
    defs = (await harness.restart()).load()
    assert sorted(d.name for d in defs.exchanges) == ["b", "c"]
    assert sorted((b.source, b.destination) for b in defs.bindings) == [("c", "b"), ("c", "q")]

    store = harness.store
    store.delete_binding(BindingDef("/", "c", "queue", "q", "k", TYPED_ARGS))
    store.delete_queue("/", "q")
    await store.flush()
    defs = (await harness.restart()).load()
    assert [d.name for d in defs.queues] == []
    assert [(b.source, b.destination) for b in defs.bindings] == [("c", "b")]


async def test_users_policies_and_delayed_messages_round_trip(harness):
    store = harness.store
    assert store.users() == [] and store.policies() == [] and store.delayed() == []
    store.save_user("guest", b"salt", b"hash", "administrator")
    store.save_user("app", b"s2", b"h2", "")
    store.save_user("app", b"s3", b"h3", "monitoring")  # replaces
    store.save_policy("/", "ttl", '{"pattern": "^q"}')
    store.save_policy("/", "gone", "{}")
    store.delete_policy("/", "gone")
    ids = [store.add_delayed(None, "/", "dx", "k", due, b"head", b"body%d" % due) for due in (300, 100, 200)]
    assert ids == [1, 2, 3]
    assert store.add_delayed(10, "/", "dx", "", 100, b"h", b"b") == 10
    store.remove_delayed(3)
    await store.flush()

    store = await harness.restart()
    assert sorted(store.users()) == [("app", b"s3", b"h3", "monitoring", "rabbit_password_hashing_sha256"),
                                     ("guest", b"salt", b"hash", "administrator", "rabbit_password_hashing_sha256")]
    assert store.policies() == [("/", "ttl", '{"pattern": "^q"}')]
    assert store.delayed() == [(2, "/", "dx", "k", 100, b"head", b"body100"), (10, "/", "dx", "", 100, b"h", b"b"),
                               (1, "/", "dx", "k", 300, b"head", b"body300")]
    assert store.add_delayed(None, "/", "dx", "k", 1, b"h", b"b") == 11  # above every id so far


async def test_users_keep_their_hashing_algorithm_and_delete_takes_permissions(harness):
    store = harness.store
    store.save_user("md5", b"salt", b"digest", "", "rabbit_password_hashing_md5")
    store.save_user("gone", b"s", b"h", "monitoring")
    store.save_permission("gone", "/", ".*", ".*", ".*")
    store.save_permission("md5", "/", "^a", "^b", "")
    store.save_permission("md5", "other", "", "", "")
    store.delete_user("gone")
    store.delete_permission("md5", "other")
    store.delete_user("never-there")  # forgetting what is not there is no error
    await store.flush()

    store = await harness.restart()
    assert store.users() == [("md5", b"salt", b"digest", "", "rabbit_password_hashing_md5")]
    assert store.permissions() == [("md5", "/", "^a", "^b", "")]


async def test_vhosts_round_trip_and_delete_takes_everything_in_them(harness):
    store = harness.store
    base = {name for name, _meta in store.vhosts()}  # a new SQLite database already has "/"
    store.save_vhost("keep", '{"description": "k"}')
    store.save_vhost("doomed", '{"description": "d"}')
    store.save_vhost("doomed", '{"description": "d2"}')  # replaces
    for vhost in ("keep", "doomed"):
        store.save_exchange(ExchangeDef(vhost, "x", "topic"))
        qid = store.save_queue(QueueDef(vhost, "q"))
        store.add_entry(qid, 1, msg(b"body-" + vhost.encode()))
        store.save_binding(BindingDef(vhost, "x", "queue", "q", "k"))
        store.save_policy(vhost, "p", "{}")
        store.save_permission("u", vhost, ".*", ".*", ".*")
        store.add_delayed(None, vhost, "x", "k", 100, b"h", b"b")
    await store.flush()
    store = await harness.restart()
    assert dict(store.vhosts())["doomed"] == '{"description": "d2"}'

    store.delete_vhost("doomed")
    await store.flush()
    store = await harness.restart()
    assert {name for name, _meta in store.vhosts()} == base | {"keep"}
    defs = store.load()
    assert [(d.vhost, d.name) for d in defs.exchanges] == [("keep", "x")]
    assert [(d.vhost, d.name, d.message_count) for d in defs.queues] == [("keep", "q", 1)]
    assert [b.vhost for b in defs.bindings] == ["keep"]
    assert store.policies() == [("keep", "p", "{}")]
    assert store.permissions() == [("u", "keep", ".*", ".*", ".*")]
    assert [row[1] for row in store.delayed()] == ["keep"]
    (queue,) = defs.queues
    entries = await store.read_entries(queue.store_id, 0, 10)
    assert [row[5] for row in entries] == [b"body-keep"]


async def test_database_of_schema_version_2_opens_with_its_users_allowed_everywhere(tmp_path):
    """A database written before vhosts, permissions and hashing algorithms were stored: the
    additive migration keeps its users and "/" and lets each user use each vhost, as before."""
    import sqlite3

    from amqp_broker.storage import schema

    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / sqlite_module.DB_NAME, isolation_level=None)
    for version, step in enumerate(schema.MIGRATIONS[:2], start=1):
        schema.apply_step(db, step, version)
    db.execute("INSERT INTO users (name, salt, password_hash, tags) VALUES ('old', x'01020304', x'aa', 'monitoring')")
    db.execute("INSERT INTO vhosts (name) VALUES ('legacy')")
    db.close()

    store = SQLiteStore(data)
    await store.open()
    try:
        assert store.users() == [("old", b"\x01\x02\x03\x04", b"\xaa", "monitoring", "rabbit_password_hashing_sha256")]
        meta = dict(store.vhosts())
        assert sorted(meta) == ["/", "legacy"] and '"Default virtual host"' in meta["/"] and meta["legacy"] == "{}"
        assert sorted(store.permissions()) == [("old", "/", ".*", ".*", ".*"), ("old", "legacy", ".*", ".*", ".*")]
    finally:
        await store.close()


# -- messages ------------------------------------------------------------------------------------


async def test_message_operations(harness):
    store = harness.store
    q1 = store.save_queue(QueueDef("/", "q1"))
    q2 = store.save_queue(QueueDef("/", "q2"))
    shared = msg(b"shared")
    store.add_entry(q1, 1, shared)
    assert shared.store_id is not None
    first_id = shared.store_id
    store.add_entry(q2, 7, shared, 5000)  # the same stored message, referenced twice
    assert shared.store_id == first_id
    msgs = {seq: msg(b"m%d" % seq) for seq in range(2, 7)}
    for seq, m in msgs.items():
        store.add_entry(q1, seq, m, 1000 + seq if seq % 2 else None)

    rows = await store.read_entries(q1, 0, 3)
    assert [(r[0], r[2], r[3], r[4], r[5], r[6]) for r in rows] == [
        (1, "ex", "k", b"\x00\x3c\x00\x00header", b"shared", None),
        (2, "ex", "k", b"\x00\x3c\x00\x00header", b"m2", None),
        (3, "ex", "k", b"\x00\x3c\x00\x00header", b"m3", 1003),
    ]
    assert rows[0][1] == first_id
    assert [r[0] for r in await store.read_entries(q1, 3, 100)] == [4, 5, 6]
    assert [(r[0], r[1], r[5], r[6]) for r in await store.read_entries(q2, 0, 10)] == [(7, first_id, b"shared", 5000)]
    assert sorted(await store.expiring(q1)) == [(3, 1003), (5, 1005)]

    store.remove_entry(q1, 1, first_id)  # q2 still has it
    store.remove_entry(q1, 4, msgs[4].store_id)
    assert [r[0] for r in await store.read_seqs(q1, [6, 1, 4, 2, 99])] == [2, 6]
    assert [r[5] for r in await store.read_seqs(q2, [7])] == [b"shared"]
    store.purge_range(q1, 2, 5)  # after < seq <= upto
    assert [r[0] for r in await store.read_entries(q1, 0, 100)] == [2, 6]
    store.mark_delivered(q1, 2)
    await store.flush()

    store = await harness.restart()
    queues = {d.name: d for d in store.load().queues}
    assert (queues["q1"].store_id, queues["q1"].message_count, queues["q1"].min_seq, queues["q1"].max_seq,
            queues["q1"].delivered_seq) == (q1, 2, 2, 6, 2)
    assert (queues["q2"].message_count, queues["q2"].min_seq, queues["q2"].max_seq) == (1, 7, 7)
    assert [r[5] for r in await store.read_entries(q1, 0, 10)] == [b"m2", b"m6"]
    assert await store.expiring(q2) == [(7, 5000)]

    store.delete_queue("/", "q2", q2)
    after = msg(b"new")
    store.add_entry(q1, 8, after)
    assert after.store_id not in (None, first_id)
    await store.flush()
    store = await harness.restart()
    assert [d.name for d in store.load().queues] == ["q1"]
    assert await store.read_entries(q2, 0, 10) == []
    assert [r[0] for r in await store.read_entries(q1, 0, 10)] == [2, 6, 8]


async def test_an_entry_removed_before_its_commit_is_gone(harness):
    store = harness.store
    qid = store.save_queue(QueueDef("/", "q"))
    m = msg(b"short-lived")
    store.add_entry(qid, 1, m)
    store.remove_entry(qid, 1, m.store_id)
    store.add_entry(qid, 2, msg(b"kept"))
    store.purge_range(qid, 1, 2)
    store.add_entry(qid, 3, msg(b"last"))
    assert [r[5] for r in await store.read_entries(qid, 0, 10)] == [b"last"]
    store = await harness.restart()
    assert [r[5] for r in await store.read_entries(qid, 0, 10)] == [b"last"]


# -- commits -------------------------------------------------------------------------------------


async def test_on_commit_calls_back_in_order_never_synchronously(harness):
    store = harness.store
    calls = []
    qid = store.save_queue(QueueDef("/", "q"))
    store.add_entry(qid, 1, msg(b"a"))
    first = store.batch_id
    store.on_commit(lambda batch_id, ok: calls.append(("a", batch_id, ok)))
    store.on_commit(lambda batch_id, ok: calls.append(("b", batch_id, ok)))
    assert calls == []
    await store.flush()
    assert calls == [("a", first, True), ("b", first, True)]
    assert store.batch_id > first  # changes made now go with a later batch

    second = store.batch_id
    store.add_entry(qid, 2, msg(b"b"))
    store.on_commit(lambda batch_id, ok: calls.append(("c", batch_id, ok)))
    await store.flush()
    assert calls[-1] == ("c", second, True)


async def test_flush_with_nothing_pending_returns(harness):
    await asyncio.wait_for(harness.store.flush(), 5)


async def test_a_failing_callback_does_not_stop_the_others(harness, caplog):
    store = harness.store
    calls = []

    def boom(_batch_id, _ok):
        raise RuntimeError("boom")

    store.on_commit(boom)
    store.on_commit(lambda batch_id, ok: calls.append(ok))
    await store.flush()
    assert calls == [True]
    assert "commit callback failed" in caplog.text


# -- backpressure --------------------------------------------------------------------------------


def test_backlog_thresholds():
    assert (BACKLOG_HIGH, BACKLOG_LOW) == (64 << 20, 16 << 20)


async def test_caught_up_is_signalled_soon_when_not_backlogged(harness):
    store = harness.store
    assert not store.backlogged
    called = asyncio.Event()
    store.on_caught_up(called.set)
    assert not called.is_set()  # never synchronously
    await asyncio.wait_for(called.wait(), 5)


async def test_caught_up_is_signalled_once_the_backlog_drains(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_module, "BACKLOG_HIGH", 3000)
    monkeypatch.setattr(commit_module, "BACKLOG_LOW", 1000)
    store = SQLiteStore(tmp_path)
    await store.open()
    try:
        qid = store.save_queue(QueueDef("/", "q"))
        for seq in range(1, 5):
            store.add_entry(qid, seq, msg(b"x" * 1000))
        assert store.backlogged
        calls = []
        store.on_caught_up(lambda: calls.append(store.backlogged))
        store.on_caught_up(lambda: calls.append("second"))
        assert calls == []
        await store.flush()
        await asyncio.sleep(0)
        assert calls == [False, "second"]  # each once, after the batch was written
        store.add_entry(qid, 5, msg(b"x"))
        await store.flush()
        assert calls == [False, "second"]
    finally:
        await store.close()


def test_memory_store_is_never_backlogged():
    assert MemoryStore(persist_messages=True).backlogged is False


async def test_a_connection_paused_for_the_store_resumes_when_it_caught_up():
    """The one consumer of the signal: the connection's adapter pauses reading once, and
    resumes from the store's callback (the store never sees the transport)."""

    class Transport:
        def __init__(self):
            self.calls = []

        def get_extra_info(self, name):
            return None

        def set_write_buffer_limits(self, high):
            pass

        def pause_reading(self):
            self.calls.append("pause")

        def resume_reading(self):
            self.calls.append("resume")

        def is_closing(self):
            return False

    store = MemoryStore()
    broker = SimpleNamespace(loop=asyncio.get_running_loop(), frame_max=131072, channel_max=2047,
                             connections=set(), handshake_timeout=10.0, alarms=SimpleNamespace(active=frozenset()))
    conn = ClientConnection(broker)
    conn.connection_made(transport := Transport())
    conn.session.vhost = SimpleNamespace(store=store)
    backpressure.store_behind(conn.session)
    backpressure.store_behind(conn.session)  # already behind: one pause, one callback
    conn.data_received(b"")  # the adapter carries out the engine's effects after a read
    assert transport.calls == ["pause"]
    await asyncio.sleep(0)
    assert transport.calls == ["pause", "resume"]
    backpressure.store_behind(conn.session)
    conn.data_received(b"")
    assert transport.calls == ["pause", "resume", "pause"]


# -- a broker restarted in-process on the same MemoryStore -------------------------------------


def test_broker_restarted_on_the_same_memory_store_gets_persistent_messages_back():
    store = MemoryStore(persist_messages=True)
    bt = BrokerThread(store=store).start()
    try:
        conn = pika.BlockingConnection(pika.URLParameters(bt.url))
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare("kept", durable=True, arguments={"x-max-length": 100})
        for i in range(3):
            ch.basic_publish("", "kept", b"p%d" % i, pika.BasicProperties(delivery_mode=2))
        ch.basic_publish("", "kept", b"transient", pika.BasicProperties(delivery_mode=1))
        method, _props, body = ch.basic_get("kept")  # delivered once, not acked
        assert body == b"p0" and not method.redelivered
        conn.close()
    finally:
        bt.stop()
    bt = BrokerThread(store=store).start()
    try:
        conn = pika.BlockingConnection(pika.URLParameters(bt.url))
        ch = conn.channel()
        assert ch.queue_declare("kept", passive=True).method.message_count == 3
        ch.queue_declare("kept", durable=True, arguments={"x-max-length": 100})  # same arguments
        got = []
        for _ in range(3):
            method, _props, body = ch.basic_get("kept", auto_ack=True)
            got.append((body, method.redelivered))
        assert got == [(b"p0", True), (b"p1", False), (b"p2", False)]
        conn.close()
    finally:
        bt.stop()
