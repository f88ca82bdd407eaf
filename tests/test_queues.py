"""queue.* methods end to end, as RabbitMQ 3.x does them (reference doc §4, §6).

Every expectation here was checked against a real RabbitMQ (AMQP_REFERENCE_URL); names carry
the `uid` suffix because the reference server is shared.
"""
from __future__ import annotations

import asyncio
import time

import aio_pika
import aiormq
import pika
import pika.exceptions
import pytest
from pika.compat import long as pika_long

from helpers.pika_client import ch, cleanup, conn  # noqa: F401 - pytest fixtures
from helpers.pika_client import connect, connection, drain, expect_channel_error, queue_exists
from helpers.wait import HANG_GUARD, wait_until

pytestmark = pytest.mark.timeout(30)


def locked(q: str) -> str:
    return (f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{q}' in vhost "
            "'/'. It could be originally declared on another connection or the exclusive "
            "property value does not match that of the original declaration.")


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def other_conn(amqp_url):
    with connection(amqp_url) as c:
        yield c


def declare(ch, cleanup, name: str, **kw):
    ok = ch.queue_declare(name, **kw).method
    cleanup["queues"].append(ok.queue)
    return ok


def passive_counts(conn, name: str) -> tuple[int, int]:
    channel = conn.channel()
    ok = channel.queue_declare(name, passive=True).method
    channel.close()
    return ok.message_count, ok.consumer_count


# --------------------------------------------------------------------------------------------
# declare


def test_declare_returns_name_and_counts(ch, cleanup, uid):
    ok = declare(ch, cleanup, f"decl-{uid}")
    assert (ok.queue, ok.message_count, ok.consumer_count) == (f"decl-{uid}", 0, 0)
    for i in range(3):
        ch.basic_publish("", ok.queue, b"%d" % i)
    again = ch.queue_declare(ok.queue).method  # active redeclare also reports counts
    assert (again.queue, again.message_count, again.consumer_count) == (ok.queue, 3, 0)


def test_declare_passive_missing_is_404(conn, uid):
    name = f"missing-{uid}"
    expect_channel_error(conn, lambda c: c.queue_declare(name, passive=True), 404,
                         f"NOT_FOUND - no queue '{name}' in vhost '/'")


def test_declare_passive_counts_ready_messages_and_consumers(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"passive-{uid}").queue
    for i in range(3):
        ch.basic_publish("", q, b"%d" % i)
    assert passive_counts(conn, q) == (3, 0)
    consumer_ch = conn.channel()
    consumer_ch.basic_qos(prefetch_count=1)
    consumer_ch.basic_consume(q, lambda *a: None)  # never acks: one message stays unacked
    # unacked messages are not counted, consumers are
    assert wait_until(lambda: passive_counts(conn, q) == (2, 1)), passive_counts(conn, q)
    ok = ch.queue_declare(q, passive=True).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == (q, 2, 1)


def test_passive_declare_ignores_flags_and_arguments(ch, cleanup, uid):
    q = declare(ch, cleanup, f"passive-flags-{uid}").queue
    ok = ch.queue_declare(q, passive=True, durable=True, auto_delete=True,
                          arguments={"x-max-length": 5}).method
    assert ok.queue == q


def test_server_named_queue(conn, ch, cleanup, uid):
    ok1 = declare(ch, cleanup, "")
    ok2 = declare(ch, cleanup, "")
    for ok in (ok1, ok2):
        assert ok.queue.startswith("amq.gen-")
        assert len(ok.queue) > len("amq.gen-")
        assert (ok.message_count, ok.consumer_count) == (0, 0)
    assert ok1.queue != ok2.queue
    ch.basic_publish("", ok1.queue, b"hi")
    assert drain(ch, ok1.queue) == [b"hi"]
    assert ch.queue_declare(ok1.queue, passive=True).method.queue == ok1.queue
    # Its name has the reserved prefix: only a passive declare may name it.
    expect_channel_error(
        conn, lambda c: c.queue_declare(ok1.queue), 403,
        f"ACCESS_REFUSED - queue name '{ok1.queue}' contains reserved prefix 'amq.*'")


def test_empty_queue_name_means_last_declared_queue(conn, cleanup, uid):
    ch = conn.channel()
    q = declare(ch, cleanup, "", exclusive=True).queue
    x = f"shortcut-{uid}"
    ch.exchange_declare(x, "direct", auto_delete=True)
    # queue "" -> the channel's most recently declared queue; routing key "" -> its name
    ch.queue_bind("", x, "")
    ch.basic_publish(x, q, b"via-shortcut-binding")
    method, _props, body = ch.basic_get("", auto_ack=True)
    assert body == b"via-shortcut-binding"
    assert method.routing_key == q
    ch.basic_publish("", q, b"two")
    assert ch.queue_purge("").method.message_count == 1
    assert ch.queue_delete("").method.message_count == 0
    assert not queue_exists(conn, q)


def test_empty_queue_name_without_declare_is_404(conn):
    expect_channel_error(conn, lambda c: c.basic_get(""), 404,
                         "NOT_FOUND - no previously declared queue")


def test_amq_prefix_is_reserved(conn, ch, uid):
    name = f"amq.mine-{uid}"
    expect_channel_error(conn, lambda c: c.queue_declare(name), 403,
                         f"ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'")
    expect_channel_error(conn, lambda c: c.queue_declare(name, durable=True, exclusive=True), 403,
                         f"ACCESS_REFUSED - queue name '{name}' contains reserved prefix 'amq.*'")
    # passive: not found rather than refused; delete of a missing amq.* queue: ok
    expect_channel_error(conn, lambda c: c.queue_declare(name, passive=True), 404,
                         f"NOT_FOUND - no queue '{name}' in vhost '/'")
    assert ch.queue_delete(name).method.message_count == 0


# --------------------------------------------------------------------------------------------
# equivalence on redeclare


def test_redeclare_inequivalent_flags(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"ineq-{uid}").queue
    pre = f"PRECONDITION_FAILED - inequivalent arg '%s' for queue '{q}' in vhost '/': "
    expect_channel_error(conn, lambda c: c.queue_declare(q, durable=True), 406,
                         pre % "durable" + "received 'true' but current is 'false'")
    expect_channel_error(conn, lambda c: c.queue_declare(q, auto_delete=True), 406,
                         pre % "auto_delete" + "received 'true' but current is 'false'")
    qd = declare(ch, cleanup, f"ineq-durable-{uid}", durable=True).queue
    expect_channel_error(
        conn, lambda c: c.queue_declare(qd, durable=False), 406,
        f"PRECONDITION_FAILED - inequivalent arg 'durable' for queue '{qd}' in vhost '/': "
        "received 'false' but current is 'true'")


def test_redeclare_inequivalent_x_max_length(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"ineq-maxlen-{uid}", arguments={"x-max-length": 10}).queue
    pre = f"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{q}' in vhost '/': "
    # both sides present: plain values
    expect_channel_error(conn, lambda c: c.queue_declare(q, arguments={"x-max-length": 20}),
                         406, pre + "received '20' but current is '10'")
    expect_channel_error(
        conn, lambda c: c.queue_declare(q, arguments={"x-max-length": pika_long(20)}),
        406, pre + "received '20' but current is '10'")
    # one side missing: typed value vs none
    expect_channel_error(conn, lambda c: c.queue_declare(q), 406,
                         pre + "received none but current is the value '10' of type 'signedint'")
    q2 = declare(ch, cleanup, f"ineq-maxlen2-{uid}").queue
    expect_channel_error(
        conn, lambda c: c.queue_declare(q2, arguments={"x-max-length": 10}), 406,
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{q2}' in vhost '/': "
        "received the value '10' of type 'signedint' but current is none")


def test_redeclare_integer_types_are_equivalent(ch, cleanup, uid):
    # pika sends a plain int as 'signedint' and pika.compat.long as 'long' (64-bit)
    q = declare(ch, cleanup, f"int-class-{uid}",
                arguments={"x-max-length": 10, "x-message-ttl": pika_long(60000)}).queue
    ch.queue_declare(q, arguments={"x-max-length": pika_long(10), "x-message-ttl": 60000})
    ch.queue_declare(q, arguments={"x-max-length": 10, "x-message-ttl": 60000})


async def test_redeclare_integer_types_are_equivalent_across_clients(amqp_url, uid):
    # aiormq/pamqp sends 10 as a short-short-int ('b'), pika as signedint: same class
    name = f"int-class-aio-{uid}"
    c = connect(amqp_url)
    try:
        c.channel().queue_declare(name, arguments={"x-max-length": 10, "x-expires": 60000},
                                  auto_delete=True)
        connection = await aiormq.connect(amqp_url)
        try:
            channel = await connection.channel()
            ok = await channel.queue_declare(
                name, auto_delete=True, arguments={"x-max-length": 10, "x-expires": 60000})
            assert ok.queue == name
            with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as ei:
                await channel.queue_declare(name, auto_delete=True,
                                            arguments={"x-max-length": 11, "x-expires": 60000})
            assert "inequivalent arg 'x-max-length'" in str(ei.value)
        finally:
            await connection.close()
    finally:
        c.channel().queue_delete(name)
        c.close()


def test_redeclare_other_arguments_not_compared(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"ineq-other-{uid}", arguments={"x-custom": "a"}).queue
    ch.queue_declare(q, arguments={"x-custom": "b", "another": 1})
    ch.queue_declare(q)
    q2 = declare(ch, cleanup, f"ineq-ttl-{uid}", arguments={"x-message-ttl": 1000}).queue
    expect_channel_error(
        conn, lambda c: c.queue_declare(q2, arguments={"x-message-ttl": 2000}), 406,
        f"PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '{q2}' in vhost '/': "
        "received '2000' but current is '1000'")


@pytest.mark.parametrize("args,reason", [
    ({"x-max-length": "ten"}, '"expected integer, got longstr"'),
    ({"x-max-length": -1}, "{value_negative,-1}"),
    ({"x-message-ttl": "1"}, '"expected integer, got longstr"'),
    ({"x-overflow": "foo"}, "invalid_overflow"),
])
def test_declare_invalid_argument_values(conn, uid, args, reason):
    q = f"badarg-{uid}"
    (key,) = args
    expect_channel_error(
        conn, lambda c: c.queue_declare(q, arguments=args), 406,
        f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{q}' in vhost '/': {reason}")
    assert not queue_exists(conn, q)


# --------------------------------------------------------------------------------------------
# exclusive queues


def test_exclusive_queue_usable_by_its_connection(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"excl-own-{uid}", exclusive=True).queue
    other_channel = conn.channel()  # same connection, other channel: fine
    other_channel.confirm_delivery()
    ok = other_channel.queue_declare(q, exclusive=True).method
    assert ok.queue == q
    other_channel.queue_declare(q, passive=True)
    other_channel.queue_bind(q, "amq.direct", f"excl-{uid}")
    other_channel.basic_publish("amq.direct", f"excl-{uid}", b"one")
    other_channel.basic_publish("", q, b"two")
    assert drain(other_channel, q) == [b"one", b"two"]
    tag = other_channel.basic_consume(q, lambda *a: None)
    other_channel.basic_cancel(tag)
    assert other_channel.queue_purge(q).method.message_count == 0
    other_channel.queue_unbind(q, "amq.direct", f"excl-{uid}")


EXCLUSIVE_OPS = {
    "declare": lambda c, q: c.queue_declare(q),
    "declare_passive": lambda c, q: c.queue_declare(q, passive=True),
    "declare_exclusive": lambda c, q: c.queue_declare(q, exclusive=True),
    "consume": lambda c, q: c.basic_consume(q, lambda *a: None),
    "get": lambda c, q: c.basic_get(q),
    "bind": lambda c, q: c.queue_bind(q, "amq.fanout"),
    "unbind_existing": lambda c, q: c.queue_unbind(q, "amq.direct", "bound-key"),
    "purge": lambda c, q: c.queue_purge(q),
    "delete": lambda c, q: c.queue_delete(q),
}


@pytest.mark.parametrize("op", list(EXCLUSIVE_OPS))
def test_exclusive_queue_locked_for_other_connections(conn, other_conn, ch, cleanup, uid, op):
    q = declare(ch, cleanup, f"excl-{op}-{uid}", exclusive=True).queue
    ch.queue_bind(q, "amq.direct", "bound-key")
    ch.basic_publish("", q, b"kept")
    expect_channel_error(other_conn, lambda c: EXCLUSIVE_OPS[op](c, q), 405, locked(q))
    # nothing happened to the queue
    assert ch.queue_declare(q, passive=True).method.message_count == 1
    ch.basic_publish("amq.direct", "bound-key", b"still-bound")
    assert drain(ch, q) == [b"kept", b"still-bound"]


def test_exclusive_queue_unbind_of_missing_binding_is_ok_from_other_connection(
        other_conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"excl-unbind-{uid}", exclusive=True).queue
    other_conn.channel().queue_unbind(q, "amq.direct", "never-bound")


def test_exclusive_flag_mismatch_is_locked(conn, other_conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"excl-mismatch-{uid}", exclusive=True).queue
    # the owner redeclaring it non-exclusive
    expect_channel_error(conn, lambda c: c.queue_declare(q, exclusive=False), 405, locked(q))
    # anyone declaring an existing non-exclusive queue as exclusive
    shared = declare(ch, cleanup, f"nonexcl-{uid}").queue
    expect_channel_error(conn, lambda c: c.queue_declare(shared, exclusive=True), 405,
                         locked(shared))
    expect_channel_error(other_conn, lambda c: c.queue_declare(shared, exclusive=True), 405,
                         locked(shared))


def test_exclusive_queue_deleted_when_connection_closes(amqp_url, conn, uid):
    owner = connect(amqp_url)
    owner_ch = owner.channel()
    q = f"excl-close-{uid}"
    owner_ch.queue_declare(q, exclusive=True)
    owner_ch.basic_publish("", q, b"gone-with-it")
    owner_ch.close()  # closing a channel does not delete it
    owner_ch2 = owner.channel()
    assert owner_ch2.queue_declare(q, passive=True).method.message_count == 1
    owner.close()
    assert wait_until(lambda: not queue_exists(conn, q))


def test_exclusive_queue_name_reusable_after_owner_closes(amqp_url, conn, cleanup, uid):
    q = f"excl-reuse-{uid}"
    owner = connect(amqp_url)
    owner.channel().queue_declare(q, exclusive=True)
    owner.close()
    assert wait_until(lambda: not queue_exists(conn, q))
    ok = declare(conn.channel(), cleanup, q)
    assert ok.queue == q


# --------------------------------------------------------------------------------------------
# auto-delete queues


def test_auto_delete_queue_survives_until_a_consumer_has_come_and_gone(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"autodel-{uid}", auto_delete=True).queue
    ch.basic_publish("", q, b"m")
    # never had a consumer: stays, even with basic.get emptying it
    assert drain(ch, q) == [b"m"]
    assert queue_exists(conn, q)
    c1 = conn.channel()
    c2 = conn.channel()
    t1 = c1.basic_consume(q, lambda *a: None)
    t2 = c2.basic_consume(q, lambda *a: None)
    c1.basic_cancel(t1)
    assert queue_exists(conn, q)  # one consumer left
    c2.basic_cancel(t2)
    assert wait_until(lambda: not queue_exists(conn, q))


def test_auto_delete_queue_deleted_when_consumer_channel_closes(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"autodel-chclose-{uid}", auto_delete=True).queue
    consumer = conn.channel()
    consumer.basic_consume(q, lambda *a: None)
    assert passive_counts(conn, q) == (0, 1)
    consumer.close()
    assert wait_until(lambda: not queue_exists(conn, q))


def test_auto_delete_queue_deletion_removes_bindings(conn, ch, cleanup, uid):
    x = f"autodel-x-{uid}"
    ch.exchange_declare(x, "fanout", auto_delete=True)
    q = declare(ch, cleanup, f"autodel-bound-{uid}", auto_delete=True).queue
    ch.queue_bind(q, x)
    consumer = conn.channel()
    tag = consumer.basic_consume(q, lambda *a: None)
    consumer.basic_cancel(tag)
    assert wait_until(lambda: not queue_exists(conn, q))
    # the queue's binding was its exchange's last one: the auto-delete exchange goes too
    def exchange_gone():
        c = conn.channel()
        try:
            c.exchange_declare(x, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return True
        c.close()
        return False
    assert wait_until(exchange_gone)


# --------------------------------------------------------------------------------------------
# bind / unbind / purge / delete


def test_bind_and_unbind(ch, cleanup, uid):
    x = f"qbind-{uid}"
    ch.exchange_declare(x, "direct", auto_delete=True)
    q = declare(ch, cleanup, f"qbind-q-{uid}").queue
    ch.queue_bind(q, x, "k1")
    ch.queue_bind(q, x, "k1")  # idempotent
    ch.queue_bind(q, x, "k2")
    ch.basic_publish(x, "k1", b"1")
    ch.basic_publish(x, "k2", b"2")
    assert drain(ch, q) == [b"1", b"2"]
    ch.queue_unbind(q, x, "k1")
    ch.basic_publish(x, "k1", b"x")
    ch.basic_publish(x, "k2", b"y")
    assert drain(ch, q) == [b"y"]
    ch.queue_unbind(q, x, "k2")


def test_unbind_missing_is_ok(ch, cleanup, uid):
    q = declare(ch, cleanup, f"unbind-missing-{uid}").queue
    ch.queue_unbind(q, "amq.direct", "never-bound")
    ch.queue_unbind(q, f"no-exchange-{uid}", "k")
    ch.queue_unbind(f"no-queue-{uid}", "amq.direct", "k")
    ch.queue_unbind(q, "amq.headers", "", arguments={"a": 1})


def test_bind_missing_queue_or_exchange_is_404(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"bind-404-{uid}").queue
    expect_channel_error(conn, lambda c: c.queue_bind(f"noq-{uid}", "amq.direct", "k"), 404,
                         f"NOT_FOUND - no queue 'noq-{uid}' in vhost '/'")
    expect_channel_error(conn, lambda c: c.queue_bind(q, f"nox-{uid}", "k"), 404,
                         f"NOT_FOUND - no exchange 'nox-{uid}' in vhost '/'")


def test_purge_returns_count_and_leaves_unacked(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"purge-{uid}").queue
    for i in range(4):
        ch.basic_publish("", q, b"%d" % i)
    getter = conn.channel()
    method, _props, body = getter.basic_get(q)  # unacked
    assert body == b"0"
    assert ch.queue_purge(q).method.message_count == 3
    assert ch.queue_purge(q).method.message_count == 0
    assert passive_counts(conn, q) == (0, 0)
    getter.basic_nack(method.delivery_tag, requeue=True)  # the unacked one survived the purge
    assert wait_until(lambda: passive_counts(conn, q) == (1, 0))
    method, _props, body = ch.basic_get(q, auto_ack=True)
    assert body == b"0"
    assert method.redelivered is True


def test_purge_missing_queue_is_404(conn, uid):
    expect_channel_error(conn, lambda c: c.queue_purge(f"nope-{uid}"), 404,
                         f"NOT_FOUND - no queue 'nope-{uid}' in vhost '/'")


def test_delete_returns_ready_message_count(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"delete-{uid}").queue
    for i in range(5):
        ch.basic_publish("", q, b"%d" % i)
    getter = conn.channel()
    getter.basic_get(q)  # one unacked: not counted
    assert ch.queue_delete(q).method.message_count == 4
    assert not queue_exists(conn, q)
    # deleting a missing queue is fine and reports 0
    assert ch.queue_delete(q).method.message_count == 0


def test_delete_if_unused(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"ifunused-{uid}").queue
    consumer = conn.channel()
    tag = consumer.basic_consume(q, lambda *a: None)
    expect_channel_error(conn, lambda c: c.queue_delete(q, if_unused=True), 406,
                         f"PRECONDITION_FAILED - queue '{q}' in vhost '/' in use")
    assert queue_exists(conn, q)
    consumer.basic_cancel(tag)
    ch.basic_publish("", q, b"m")
    # messages do not make it "used"
    assert ch.queue_delete(q, if_unused=True).method.message_count == 1
    assert not queue_exists(conn, q)


def test_delete_if_empty(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"ifempty-{uid}").queue
    ch.basic_publish("", q, b"m")
    expect_channel_error(conn, lambda c: c.queue_delete(q, if_empty=True), 406,
                         f"PRECONDITION_FAILED - queue '{q}' in vhost '/' not empty")
    # consumers do not make it "non-empty"; an unacked message does not either
    getter = conn.channel()
    getter.basic_get(q)
    getter.basic_consume(q, lambda *a: None)
    assert ch.queue_delete(q, if_empty=True).method.message_count == 0
    assert not queue_exists(conn, q)


def test_delete_with_consumers_sends_basic_cancel(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"cancel-notify-{uid}").queue
    consumer = conn.channel()
    cancelled = []
    consumer.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = consumer.basic_consume(q, lambda *a: None)
    ch.basic_publish("", q, b"x")
    assert ch.queue_delete(q).method.message_count in (0, 1)
    deadline = time.monotonic() + HANG_GUARD
    while not cancelled and time.monotonic() < deadline:
        conn.process_data_events(0.05)
    assert cancelled == [tag]
    assert consumer.is_open  # a cancel is not a channel error


async def test_delete_with_consumers_sends_basic_cancel_aiormq(amqp_url, uid):
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        name = f"cancel-aiormq-{uid}"
        await channel.queue_declare(name)
        got = asyncio.get_running_loop().create_future()
        channel.on_consumer_cancel_callbacks.add(
            lambda frame: got.done() or got.set_result(frame.consumer_tag))
        ok = await channel.basic_consume(name, lambda m: None, consumer_tag=f"ctag-{uid}")
        assert ok.consumer_tag == f"ctag-{uid}"
        other = await connection.channel()
        await other.queue_delete(name)
        assert await asyncio.wait_for(got, 2) == f"ctag-{uid}"
        assert f"ctag-{uid}" not in channel.consumers
    finally:
        await connection.close()


def test_delete_removes_bindings(ch, cleanup, uid):
    x = f"delq-bind-{uid}"
    ch.exchange_declare(x, "fanout")
    try:
        q = f"delq-bind-q-{uid}"
        declare(ch, cleanup, q)
        ch.queue_bind(q, x)
        ch.queue_delete(q)
        ch.queue_declare(q)  # same name, fresh queue: no old binding
        ch.basic_publish(x, "", b"x")
        assert drain(ch, q) == []
    finally:
        ch.exchange_delete(x)


# --------------------------------------------------------------------------------------------
# ordering


def test_messages_published_before_consumer_arrive_in_fifo_order(conn, ch, cleanup, uid):
    q = declare(ch, cleanup, f"fifo-{uid}").queue
    n = 50
    for i in range(n):
        ch.basic_publish("", q, b"%d" % i)
    received = []
    consumer = conn.channel()

    def on_message(channel, method, _props, body):
        received.append(body)
        channel.basic_ack(method.delivery_tag)

    consumer.basic_consume(q, on_message)
    deadline = time.monotonic() + HANG_GUARD
    while len(received) < n and time.monotonic() < deadline:
        conn.process_data_events(0.05)
    assert received == [b"%d" % i for i in range(n)]


def test_basic_get_is_fifo(ch, cleanup, uid):
    q = declare(ch, cleanup, f"fifo-get-{uid}").queue
    for i in range(10):
        ch.basic_publish("", q, b"%d" % i)
    assert drain(ch, q) == [b"%d" % i for i in range(10)]


# --------------------------------------------------------------------------------------------
# names


def _padded(prefix: str, uid: str, size: int) -> str:
    base = f"{prefix}-{uid}-"
    return base + "n" * (size - len(base.encode()))


QUEUE_NAMES = {
    "unicode": lambda uid: f"é-ü-名前-{uid}",
    "star_and_spaces": lambda uid: f"a * b # c  {uid} ",
    "dots_and_symbols": lambda uid: f"a.b/c:d|e@{uid}",
    "len200": lambda uid: _padded("long200", uid, 200),
    "len255": lambda uid: _padded("long255", uid, 255),
    "unicode255": lambda uid: f"u255-{uid}-" + "é" * ((255 - len(f"u255-{uid}-")) // 2),
}


@pytest.mark.parametrize("kind", list(QUEUE_NAMES))
def test_unusual_queue_names(conn, ch, cleanup, uid, kind):
    name = QUEUE_NAMES[kind](uid)
    assert len(name.encode()) <= 255
    ok = declare(ch, cleanup, name)
    assert ok.queue == name
    ch.basic_publish("", name, b"hi")
    method, _props, body = ch.basic_get(name, auto_ack=True)
    assert body == b"hi"
    assert method.routing_key == name
    assert ch.queue_declare(name, passive=True).method.queue == name
    ch.queue_bind(name, "amq.direct", name)
    ch.basic_publish("amq.direct", name, b"via-direct")
    assert drain(ch, name) == [b"via-direct"]
    ch.queue_unbind(name, "amq.direct", name)
    assert ch.queue_delete(name).method.message_count == 0
    assert not queue_exists(conn, name)


async def test_unusual_queue_names_aio_pika(amqp_url, uid):
    # pamqp (under aio-pika/aiormq) validates queue names client side against
    # ^[a-zA-Z0-9-_.:@#,/+ ]*$, so unicode or '*' names are only reachable with pika.
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        for name in (f"a # b.c:d@e,f/g+h {uid}", _padded("aio255", uid, 255)):
            queue = await channel.declare_queue(name, auto_delete=True)
            assert queue.name == name
            await channel.default_exchange.publish(aio_pika.Message(b"x"), routing_key=name)
            async with queue.iterator() as it:
                async for message in it:
                    async with message.process():
                        assert message.body == b"x"
                        assert message.routing_key == name
                    break
            await queue.delete()
    finally:
        await connection.close()


async def test_aio_pika_declare_counts_and_passive(amqp_url, uid):
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"aio-counts-{uid}", auto_delete=True)
        for i in range(2):
            await channel.default_exchange.publish(aio_pika.Message(b"m"), routing_key=queue.name)
        again = await channel.declare_queue(queue.name, passive=True)
        assert again.declaration_result.message_count == 2
        assert again.declaration_result.consumer_count == 0
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
            await channel.declare_queue(f"aio-missing-{uid}", passive=True)
        channel = await connection.channel()
        await channel.queue_delete(queue.name)
    finally:
        await connection.close()
