"""Durability across a broker restart (in-process): stop the broker, start a new one on the same
data dir, and check what came back.

What the issue asks for:

* durable exchanges (type, arguments), durable queues (arguments), bindings between durable
  objects and persistent messages (delivery_mode=2) in durable queues survive a restart, in
  order, with their properties, exchange and routing key;
* transient messages, transient queues, exclusive queues and auto-delete queues of dead
  connections do not; transient messages never touch the disk;
* messages delivered but not acked before the stop come back with redelivered=true, the others
  with redelivered=false; acked (basic.ack, basic.get with ack, tx-committed acks) and dropped
  (nack/reject without requeue, purge, max-length) messages never come back;
* deletions (queue, exchange, binding) and purges are durable too.

These always run against our broker (a restart cannot be done on the shared reference), with a
graceful stop: every change acknowledged by a synchronous reply before the stop must be on disk
after it. Hard kills are in test_crash.py.

This file: the database file, exchanges, queues and bindings; messages and acks are in
test_durability_messages.py.
"""

from __future__ import annotations

import sqlite3

import pika
import pika.exceptions
import pytest

from helpers.durability import node  # noqa: F401 - pytest fixture
from helpers.durability import PERSISTENT, closed_with, numbers, publish
from helpers.pika_client import drain, drain_flagged, ready_count

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------
# the database file


def test_database_file_is_sqlite_wal_with_schema_version(node):
    ch = node.channel()
    ch.queue_declare("db-q", durable=True)
    publish(ch, "db-q", [b"x"])
    node.stop()
    db = node.data_dir / "broker.db"
    assert db.is_file()
    con = sqlite3.connect(db)  # the broker is stopped
    try:
        (version,) = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert int(version) >= 1
        assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    finally:
        con.close()
    node.start()
    assert ready_count(node.channel(), "db-q") == 1


def test_restart_with_empty_data_dir_twice(node):
    """Nothing declared: restarts work, and the default exchanges are there."""
    node.restart()
    node.restart()
    for x in ("amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"):
        assert node.has_exchange(x)


# --------------------------------------------------------------------------------------------
# exchanges


def test_durable_exchange_keeps_type_and_arguments(node):
    ch = node.channel()
    ch.exchange_declare("ae", "fanout", durable=True)
    ch.queue_declare("ae-q", durable=True)
    ch.queue_bind("ae-q", "ae")
    ch.exchange_declare("x-topic", "topic", durable=True, arguments={"alternate-exchange": "ae"})
    ch.queue_declare("x-topic-q", durable=True)
    ch.queue_bind("x-topic-q", "x-topic", "a.*")
    node.restart()
    node.restart()  # twice: recovery must not lose what it recovered

    ch = node.channel()
    ch.exchange_declare("x-topic", passive=True)
    # same declaration: ok; different type / arguments / flags: 406
    ch.exchange_declare("x-topic", "topic", durable=True, arguments={"alternate-exchange": "ae"})
    exc = closed_with(406, node.channel().exchange_declare, "x-topic", "direct", durable=True,
                      arguments={"alternate-exchange": "ae"})
    assert "type" in exc.reply_text
    exc = closed_with(406, node.channel().exchange_declare, "x-topic", "topic", durable=True,
                      arguments={"alternate-exchange": "other"})
    assert "alternate-exchange" in exc.reply_text
    closed_with(406, node.channel().exchange_declare, "x-topic", "topic", durable=False,
                arguments={"alternate-exchange": "ae"})

    # the alternate exchange still works: unroutable in the topic exchange -> ae -> ae-q
    ch = node.channel()
    publish(ch, "a.b", [b"routed"], exchange="x-topic")
    publish(ch, "zzz", [b"unroutable"], exchange="x-topic")
    assert drain(ch, "x-topic-q") == [b"routed"]
    assert drain(ch, "ae-q") == [b"unroutable"]


@pytest.mark.parametrize("kind", ["direct", "fanout", "topic", "headers"])
def test_durable_exchange_of_each_type(node, kind):
    ch = node.channel()
    ch.exchange_declare(f"x-{kind}", kind, durable=True, auto_delete=False, internal=False)
    ch.exchange_declare(f"x-{kind}-internal", kind, durable=True, internal=True)
    node.restart()
    ch = node.channel()
    ch.exchange_declare(f"x-{kind}", kind, durable=True)
    ch.exchange_declare(f"x-{kind}-internal", kind, durable=True, internal=True)
    closed_with(406, node.channel().exchange_declare, f"x-{kind}-internal", kind, durable=True)
    # an internal exchange still refuses direct publishes
    ch = node.channel(confirm=False)
    ch.basic_publish(f"x-{kind}-internal", "", b"x")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare("", exclusive=True)
    assert info.value.reply_code == 403


def test_transient_exchange_is_gone(node):
    ch = node.channel()
    ch.exchange_declare("x-transient", "direct", durable=False)
    ch.exchange_declare("x-durable", "direct", durable=True)
    node.restart()
    assert not node.has_exchange("x-transient")
    assert node.has_exchange("x-durable")


def test_exchange_delete_persists_and_takes_its_bindings(node):
    ch = node.channel()
    ch.exchange_declare("x-del", "direct", durable=True)
    ch.queue_declare("x-del-q", durable=True)
    ch.queue_bind("x-del-q", "x-del", "k")
    node.restart()
    ch = node.channel()
    ch.exchange_delete("x-del")
    node.restart()
    assert not node.has_exchange("x-del")
    # a new exchange of the same name starts without the old binding
    ch = node.channel()
    ch.exchange_declare("x-del", "direct", durable=True)
    node.restart()
    ch = node.channel()
    publish(ch, "k", [b"x"], exchange="x-del")
    assert ready_count(ch, "x-del-q") == 0


def test_auto_delete_exchange_deleted_when_unbound_stays_deleted(node):
    ch = node.channel()
    ch.exchange_declare("x-ad", "fanout", durable=True, auto_delete=True)
    ch.queue_declare("x-ad-q", durable=True)
    ch.queue_bind("x-ad-q", "x-ad")
    ch.queue_unbind("x-ad-q", "x-ad")  # last binding gone: the exchange goes
    node.restart()
    assert not node.has_exchange("x-ad")


# --------------------------------------------------------------------------------------------
# queues


def test_durable_queue_keeps_arguments_and_typed_equivalence(node):
    args = {"x-max-length": 5, "x-dead-letter-exchange": "dlx", "x-single-active-consumer": True,
            "x-message-ttl": 600000}
    ch = node.channel()
    ch.queue_declare("q-args", durable=True, arguments=args)
    node.restart()
    node.restart()

    ch = node.channel()
    ok = ch.queue_declare("q-args", durable=True, arguments=args)  # same: ok
    assert ok.method.message_count == 0
    ch.queue_declare("q-args", passive=True)
    exc = closed_with(406, node.channel().queue_declare, "q-args", durable=True,
                      arguments={**args, "x-max-length": 6})
    assert exc.reply_text.startswith("PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue "
                                     "'q-args' in vhost '/': received '6' but current is '5'"), exc
    exc = closed_with(406, node.channel().queue_declare, "q-args", durable=True,
                      arguments={**args, "x-dead-letter-exchange": "other"})
    assert "x-dead-letter-exchange" in exc.reply_text
    exc = closed_with(406, node.channel().queue_declare, "q-args", durable=True,
                      arguments={**args, "x-single-active-consumer": False})
    assert "x-single-active-consumer" in exc.reply_text
    missing = dict(args)
    del missing["x-max-length"]
    exc = closed_with(406, node.channel().queue_declare, "q-args", durable=True, arguments=missing)
    assert "x-max-length" in exc.reply_text
    closed_with(406, node.channel().queue_declare, "q-args", durable=False, arguments=args)

    # the arguments still act: max-length 5 drops from the head
    ch = node.channel()
    publish(ch, "q-args", numbers(7))
    assert drain(ch, "q-args") == numbers(5, start=3)


def test_typed_equivalence_across_clients_after_restart(node):
    """Declared by pika, redeclared after the restart by aio-pika (other integer encodings):
    integers compare by class, as RabbitMQ does."""
    import asyncio

    import aio_pika

    ch = node.channel()
    ch.queue_declare("q-typed", durable=True, arguments={"x-max-length": 10, "x-overflow": "reject-publish"})
    node.restart()

    async def redeclare(args):
        conn = await aio_pika.connect(node.url)
        try:
            chan = await conn.channel()
            await chan.declare_queue("q-typed", durable=True, arguments=args)
        finally:
            await conn.close()

    asyncio.run(redeclare({"x-max-length": 10, "x-overflow": "reject-publish"}))
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        asyncio.run(redeclare({"x-max-length": 11, "x-overflow": "reject-publish"}))
    with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed):
        asyncio.run(redeclare({"x-max-length": 10, "x-overflow": "drop-head"}))


def test_transient_queue_is_gone(node):
    ch = node.channel()
    ch.queue_declare("q-transient", durable=False)
    publish(ch, "q-transient", [b"persistent into transient"], props=PERSISTENT)
    node.restart()
    assert not node.has_queue("q-transient")


def test_exclusive_and_auto_delete_queues_are_gone(node):
    owner = node.connect()
    och = owner.channel()
    och.queue_declare("q-excl-durable", durable=True, exclusive=True)
    och.queue_declare("q-ad-durable", durable=True, auto_delete=True)
    och.basic_consume("q-ad-durable", lambda *a: None)
    och.queue_declare("q-ad-unused-after-consume", durable=True, auto_delete=True)
    tag = och.basic_consume("q-ad-unused-after-consume", lambda *a: None)
    och.basic_cancel(tag)  # last consumer gone: deleted right away
    ch = node.channel()
    ch.queue_declare("q-plain", durable=True)
    # stop with the owner still connected
    node.restart(close_clients=False)
    assert not node.has_queue("q-excl-durable")
    assert not node.has_queue("q-ad-durable")
    assert not node.has_queue("q-ad-unused-after-consume")
    assert node.has_queue("q-plain")


def test_exclusive_queue_of_a_closed_connection_is_gone(node):
    owner = node.connect()
    owner.channel().queue_declare("q-excl-closed", durable=True, exclusive=True)
    owner.close()
    node.restart()
    assert not node.has_queue("q-excl-closed")
    # and the name is free for anyone
    node.channel().queue_declare("q-excl-closed", durable=True)


def test_queue_delete_persists(node):
    ch = node.channel()
    ch.queue_declare("q-del", durable=True)
    publish(ch, "q-del", numbers(5))
    node.restart()
    node.channel().queue_delete("q-del")
    node.restart()
    assert not node.has_queue("q-del")
    # a new queue of the same name starts empty
    ch = node.channel()
    ch.queue_declare("q-del", durable=True)
    node.restart()
    assert ready_count(node.channel(), "q-del") == 0


def test_queue_purge_persists(node):
    ch = node.channel()
    ch.queue_declare("q-purge", durable=True)
    publish(ch, "q-purge", numbers(10))
    node.restart()
    ch = node.channel()
    assert ch.queue_purge("q-purge").method.message_count == 10
    publish(ch, "q-purge", [b"after purge"])
    node.restart()
    assert drain_flagged(node.channel(), "q-purge") == [(b"after purge", False)]


# --------------------------------------------------------------------------------------------
# bindings


def test_bindings_route_after_restart(node):
    ch = node.channel()
    ch.exchange_declare("b-direct", "direct", durable=True)
    ch.exchange_declare("b-topic", "topic", durable=True)
    ch.exchange_declare("b-headers", "headers", durable=True)
    ch.exchange_declare("b-fanout", "fanout", durable=True)
    for q in ("b-q1", "b-q2", "b-q3", "b-q4"):
        ch.queue_declare(q, durable=True)
    ch.queue_bind("b-q1", "b-direct", "k1")
    ch.queue_bind("b-q1", "b-direct", "k2")
    ch.queue_bind("b-q2", "b-topic", "*.orange.#")
    ch.queue_bind("b-q3", "b-headers", arguments={"x-match": "all", "color": "red", "size": 3})
    # exchange-to-exchange: fanout -> direct -> b-q4
    ch.exchange_bind(destination="b-direct", source="b-fanout")
    ch.queue_bind("b-q4", "b-direct", "k4")
    ch.queue_bind("b-q4", "amq.direct", "builtin")  # a binding from a built-in exchange
    node.restart()
    node.restart()

    ch = node.channel()
    publish(ch, "k1", [b"d1"], exchange="b-direct")
    publish(ch, "k2", [b"d2"], exchange="b-direct")
    publish(ch, "x.orange.y.z", [b"t1"], exchange="b-topic")
    publish(ch, "x.apple", [b"t-miss"], exchange="b-topic")
    publish(ch, "", [b"h1"], exchange="b-headers",
            props=pika.BasicProperties(delivery_mode=2, headers={"color": "red", "size": 3}))
    publish(ch, "", [b"h-miss"], exchange="b-headers",
            props=pika.BasicProperties(delivery_mode=2, headers={"color": "red"}))
    publish(ch, "k4", [b"e2e"], exchange="b-fanout")
    publish(ch, "builtin", [b"amq"], exchange="amq.direct")
    assert drain(ch, "b-q1") == [b"d1", b"d2"]
    assert drain(ch, "b-q2") == [b"t1"]
    assert drain(ch, "b-q3") == [b"h1"]
    assert drain(ch, "b-q4") == [b"e2e", b"amq"]
    # the recovered bindings can be removed with the same arguments
    ch.queue_unbind("b-q3", "b-headers", arguments={"x-match": "all", "color": "red", "size": 3})
    publish(ch, "", [b"h2"], exchange="b-headers",
            props=pika.BasicProperties(delivery_mode=2, headers={"color": "red", "size": 3}))
    assert drain(ch, "b-q3") == []


def test_unbind_persists(node):
    ch = node.channel()
    ch.exchange_declare("u-x", "direct", durable=True)
    ch.exchange_declare("u-x2", "fanout", durable=True)
    ch.queue_declare("u-q", durable=True)
    ch.queue_bind("u-q", "u-x", "k")
    ch.queue_bind("u-q", "u-x", "keep")
    ch.exchange_bind(destination="u-x", source="u-x2")
    node.restart()
    ch = node.channel()
    ch.queue_unbind("u-q", "u-x", "k")
    ch.exchange_unbind(destination="u-x", source="u-x2")
    node.restart()
    ch = node.channel()
    with pytest.raises(pika.exceptions.UnroutableError):
        publish(ch, "k", [b"x"], exchange="u-x", mandatory=True)
    ch = node.channel()
    with pytest.raises(pika.exceptions.UnroutableError):
        publish(ch, "keep", [b"x"], exchange="u-x2", mandatory=True)
    ch = node.channel()
    publish(ch, "keep", [b"kept"], exchange="u-x", mandatory=True)
    assert drain(ch, "u-q") == [b"kept"]


def test_binding_to_transient_queue_is_not_recovered(node):
    """A durable exchange bound to a transient queue: after the restart the queue is gone, and
    a new durable queue of the same name is not bound."""
    ch = node.channel()
    ch.exchange_declare("t-x", "direct", durable=True)
    ch.queue_declare("t-q", durable=False)
    ch.queue_bind("t-q", "t-x", "k")
    node.restart()
    ch = node.channel()
    ch.queue_declare("t-q", durable=True)
    with pytest.raises(pika.exceptions.UnroutableError):
        publish(ch, "k", [b"x"], exchange="t-x", mandatory=True)
