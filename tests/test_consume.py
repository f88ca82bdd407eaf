"""Consuming: basic.consume / cancel / get, consumer tags, exclusive consumers, round robin,
server-initiated basic.cancel.

Every expectation here was checked against a real RabbitMQ 3.x (run with AMQP_REFERENCE_URL).
Clients: pika (BlockingConnection), aio-pika, and a tiny raw-frame client (pamqp, consume_raw.py)
where a library hides the wire (server-generated consumer tags, byte-exact content headers).
Acks live in test_acks.py, prefetch in test_qos.py, bodies and properties in
test_properties_roundtrip.py.
"""

from __future__ import annotations

import asyncio

import aio_pika
import pika
import pika.exceptions
import pytest
from pamqp import commands

from helpers.pika_client import conn, queue  # noqa: F401 - pytest fixtures
from helpers.pika_client import connect, drain_flagged, publish_numbers, pump, ready_count, settle, wait_ready
from helpers.raw_content import raw  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------
# consumer tags
# --------------------------------------------------------------------------------------------

def test_server_generated_consumer_tags(raw, queue, conn):
    q = queue()
    raw.open_channel(1)
    tags = []
    for _ in range(2):
        raw.send(1, commands.Basic.Consume(queue=q, consumer_tag=""))
        tags.append(raw.expect(1, commands.Basic.ConsumeOk).consumer_tag)
    assert all(t.startswith("amq.ctag-") and len(t) > len("amq.ctag-") for t in tags)
    assert tags[0] != tags[1]
    conn.channel().basic_publish("", q, b"hello")
    deliver = raw.expect(1, commands.Basic.Deliver)
    assert deliver.consumer_tag in tags
    assert deliver.delivery_tag == 1
    _props, body = raw.read_content(1)
    assert body == b"hello"


def test_client_consumer_tag_is_used_in_deliveries(conn, queue, uid):
    q = queue()
    ch = conn.channel()
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append(m), consumer_tag=f"my-tag-{uid}")
    assert tag == f"my-tag-{uid}"
    ch.basic_publish("", q, b"x")
    assert pump(conn, lambda: got)
    assert got[0].consumer_tag == f"my-tag-{uid}"
    assert got[0].routing_key == q and got[0].exchange == ""


def test_reusing_consumer_tag_on_channel_is_connection_error(raw, queue):
    q = queue()
    raw.open_channel(1)
    raw.send(1, commands.Basic.Consume(queue=q, consumer_tag="dup"))
    raw.expect(1, commands.Basic.ConsumeOk)
    raw.send(1, commands.Basic.Consume(queue=q, consumer_tag="dup"))
    close = raw.expect(0, commands.Connection.Close)
    assert close.reply_code == 530
    assert close.reply_text == "NOT_ALLOWED - attempt to reuse consumer tag 'dup'"
    assert (close.class_id, close.method_id) == (60, 20)


def test_same_consumer_tag_on_two_channels_is_fine(raw, queue):
    q = queue()
    raw.open_channel(1)
    raw.open_channel(2)
    for ch in (1, 2):
        raw.send(ch, commands.Basic.Consume(queue=q, consumer_tag="same"))
        assert raw.expect(ch, commands.Basic.ConsumeOk).consumer_tag == "same"


def test_cancel_unknown_consumer_tag_is_not_an_error(raw):
    raw.open_channel(1)
    raw.send(1, commands.Basic.Cancel(consumer_tag="no-such-consumer"))
    ok = raw.expect(1, commands.Basic.CancelOk)
    assert ok.consumer_tag == "no-such-consumer"


def test_consume_missing_queue_is_404(conn, uid):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.basic_consume(f"missing-{uid}", lambda *a: None)
    assert ei.value.reply_code == 404
    assert ei.value.reply_text == f"NOT_FOUND - no queue 'missing-{uid}' in vhost '/'"
    assert conn.is_open


# --------------------------------------------------------------------------------------------
# exclusive consumers
# --------------------------------------------------------------------------------------------

def test_exclusive_consumer_refuses_second_consumer(conn, queue):
    q = queue()
    conn.channel().basic_consume(q, lambda *a: None, exclusive=True)
    ch2 = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch2.basic_consume(q, lambda *a: None)
    assert ei.value.reply_code == 403
    assert ei.value.reply_text == f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"


def test_exclusive_consume_refused_when_queue_already_has_consumer(conn, amqp_url, queue):
    q = queue()
    other = connect(amqp_url)
    try:
        other.channel().basic_consume(q, lambda *a: None)
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            ch.basic_consume(q, lambda *a: None, exclusive=True)
        assert ei.value.reply_code == 403
        assert ei.value.reply_text == f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"
    finally:
        other.close()


def test_exclusive_consumer_released_after_cancel(conn, queue):
    q = queue()
    ch = conn.channel()
    tag = ch.basic_consume(q, lambda *a: None, exclusive=True)
    ch.basic_cancel(tag)
    ch2 = conn.channel()
    got = []
    ch2.basic_consume(q, lambda c, m, p, b: got.append(b), exclusive=True)
    ch.basic_publish("", q, b"after")
    assert pump(conn, lambda: got)
    assert got == [b"after"]


def test_exclusive_consumer_still_receives(conn, queue):
    q = queue()
    ch = conn.channel()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), exclusive=True, auto_ack=True)
    publish_numbers(conn.channel(), q, 3)
    assert pump(conn, lambda: len(got) == 3)
    assert got == [b"1", b"2", b"3"]


# --------------------------------------------------------------------------------------------
# no-ack consumers, cancel
# --------------------------------------------------------------------------------------------

def test_no_ack_consumer_messages_are_gone(conn, queue):
    q = queue()
    ch = conn.channel()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m), auto_ack=True)
    publish_numbers(conn.channel(), q, 5)
    assert pump(conn, lambda: len(got) == 5)
    assert [m.delivery_tag for m in got] == [1, 2, 3, 4, 5]
    ch.close()
    settle(conn, 0.2)
    assert ready_count(conn.channel(), q) == 0


def test_cancel_stops_deliveries(conn, queue):
    q = queue()
    ch = conn.channel()
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    pub = conn.channel()
    pub.basic_publish("", q, b"before")
    assert pump(conn, lambda: got)
    ch.basic_cancel(tag)  # waits for cancel-ok
    publish_numbers(pub, q, 3)
    settle(conn, 0.3)
    assert got == [b"before"]
    assert wait_ready(pub, q, 3) == 3
    assert pub.queue_declare(q, passive=True).method.consumer_count == 0


def test_cancel_keeps_unacked_messages_with_the_channel(conn, queue):
    q = queue()
    ch = conn.channel()
    got = []
    tag = ch.basic_consume(q, lambda c, m, p, b: got.append(m))
    pub = conn.channel()
    publish_numbers(pub, q, 2)
    assert pump(conn, lambda: len(got) == 2)
    ch.basic_cancel(tag)
    # still unacked, not requeued by the cancel
    settle(conn, 0.2)
    assert ready_count(pub, q) == 0
    # and they can still be acked on that channel
    ch.basic_ack(got[0].delivery_tag)
    ch.close()
    assert wait_ready(pub, q, 1) == 1
    assert drain_flagged(pub, q) == [(b"2", True)]


async def test_cancel_with_aio_pika(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(f"test-consume-aio-cancel-{uid}", auto_delete=False)
        got = []

        async def on_message(m):
            got.append(m.body)

        tag = await q.consume(on_message, no_ack=True)
        await ch.default_exchange.publish(aio_pika.Message(b"one"), routing_key=q.name)
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        ok = await q.cancel(tag)
        assert ok.consumer_tag == tag
        await ch.default_exchange.publish(aio_pika.Message(b"two"), routing_key=q.name)
        await asyncio.sleep(0.2)
        assert got == [b"one"]
        declared = await ch.declare_queue(q.name, passive=True)
        assert declared.declaration_result.message_count == 1
        assert declared.declaration_result.consumer_count == 0
        await q.delete(if_empty=False)


# --------------------------------------------------------------------------------------------
# distribution and ordering
# --------------------------------------------------------------------------------------------

def test_round_robin_three_consumers_on_separate_channels(conn, queue):
    q = queue()
    seen: list[int] = []
    for i in range(3):
        conn.channel().basic_consume(q, lambda c, m, p, b, i=i: seen.append(i), auto_ack=True)
    publish_numbers(conn.channel(), q, 30)
    assert pump(conn, lambda: len(seen) == 30)
    assert sorted(seen.count(i) for i in range(3)) == [10, 10, 10]


def test_round_robin_three_consumers_on_one_channel_cycles(conn, queue):
    q = queue()
    ch = conn.channel()
    seen: list[int] = []
    for i in range(3):
        ch.basic_consume(q, lambda c, m, p, b, i=i: seen.append(i), auto_ack=True)
    publish_numbers(conn.channel(), q, 30)
    assert pump(conn, lambda: len(seen) == 30)
    assert seen == [0, 1, 2] * 10


def test_round_robin_with_acks_and_prefetch(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1)
    seen: list[int] = []

    def cb(c, m, p, b, i):
        seen.append(i)
        c.basic_ack(m.delivery_tag)

    for i in range(3):
        ch.basic_consume(q, lambda c, m, p, b, i=i: cb(c, m, p, b, i))
    publish_numbers(conn.channel(), q, 30)
    assert pump(conn, lambda: len(seen) == 30, timeout=5)
    assert [seen.count(i) for i in range(3)] == [10, 10, 10]


def test_fifo_order_to_consumer(conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 200)
    got = []
    ch = conn.channel()
    ch.basic_consume(q, lambda c, m, p, b: got.append((int(b), m.delivery_tag)), auto_ack=True)
    assert pump(conn, lambda: len(got) == 200, timeout=5)
    assert [n for n, _ in got] == list(range(1, 201))
    assert [t for _, t in got] == list(range(1, 201))


def test_fifo_order_with_basic_get(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 50)
    assert [int(b) for b, _ in drain_flagged(ch, q)] == list(range(1, 51))


# --------------------------------------------------------------------------------------------
# basic.get
# --------------------------------------------------------------------------------------------

def test_basic_get_message_count_and_get_empty(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 3)
    counts = []
    for _ in range(3):
        m, _p, _b = ch.basic_get(q, auto_ack=True)
        counts.append(m.message_count)
    assert counts == [2, 1, 0]
    m, p, b = ch.basic_get(q)
    assert (m, p, b) == (None, None, None)


def test_basic_get_ok_fields(conn, queue, uid):
    q = queue()
    ch = conn.channel()
    ch.queue_bind(q, "amq.direct", routing_key=f"rk-{uid}")
    ch.basic_publish("amq.direct", f"rk-{uid}", b"a")
    ch.basic_publish("", q, b"b")
    m1, _, b1 = ch.basic_get(q)
    m2, _, b2 = ch.basic_get(q)
    assert (b1, m1.exchange, m1.routing_key, m1.redelivered, m1.delivery_tag) == \
        (b"a", "amq.direct", f"rk-{uid}", False, 1)
    assert (b2, m2.exchange, m2.routing_key, m2.redelivered, m2.delivery_tag) == (b"b", "", q, False, 2)


def test_basic_get_missing_queue_is_404(conn, uid):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.basic_get(f"missing-{uid}")
    assert ei.value.reply_code == 404
    assert ei.value.reply_text == f"NOT_FOUND - no queue 'missing-{uid}' in vhost '/'"


async def test_basic_get_with_aio_pika(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(f"test-consume-aio-get-{uid}", auto_delete=True)
        for i in range(3):
            await ch.default_exchange.publish(aio_pika.Message(str(i).encode()), routing_key=q.name)
        m = await q.get(timeout=5)
        assert m.body == b"0" and m.message_count == 2 and not m.redelivered
        await m.ack()
        m = await q.get(timeout=5)
        await m.reject(requeue=True)
        m = await q.get(timeout=5)
        assert m.body == b"1" and m.redelivered and m.message_count == 1
        await m.ack()
        assert (await q.get(no_ack=True, timeout=5)).body == b"2"
        assert await q.get(fail=False, timeout=5) is None
        await q.delete()


# --------------------------------------------------------------------------------------------
# server-initiated basic.cancel
# --------------------------------------------------------------------------------------------

def test_queue_delete_cancels_consumer_pika(conn, queue, amqp_url):
    q = queue()
    ch = conn.channel()
    cancelled = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = ch.basic_consume(q, lambda *a: None)
    admin = connect(amqp_url)
    try:
        admin.channel().queue_delete(q)
    finally:
        admin.close()
    assert pump(conn, lambda: cancelled)
    assert cancelled == [tag]
    assert ch.is_open
    # the channel is still usable
    ch.queue_declare("", exclusive=True)


def test_queue_delete_sends_basic_cancel_raw(raw, queue, amqp_url):
    q = queue()
    raw.open_channel(1)
    raw.send(1, commands.Basic.Consume(queue=q, consumer_tag="watch"))
    raw.expect(1, commands.Basic.ConsumeOk)
    admin = connect(amqp_url)
    try:
        admin.channel().queue_delete(q)
    finally:
        admin.close()
    cancel = raw.expect(1, commands.Basic.Cancel)
    assert cancel.consumer_tag == "watch"
    assert cancel.nowait is True


async def test_queue_delete_cancels_consumer_aio_pika(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(f"test-consume-aio-del-{uid}", auto_delete=False)
        cancelled = asyncio.get_running_loop().create_future()
        underlay = await ch.get_underlay_channel()
        underlay.on_consumer_cancel_callbacks.add(
            lambda frame: cancelled.done() or cancelled.set_result(frame.consumer_tag))
        async def on_message(m):
            pass

        tag = await q.consume(on_message)
        other = await conn.channel()
        await other.queue_delete(q.name)
        assert await asyncio.wait_for(cancelled, 5) == tag
        assert not ch.is_closed


async def test_aio_pika_iterator_consume_ack_order(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(f"test-consume-aio-iter-{uid}")
        for i in range(20):
            await ch.default_exchange.publish(aio_pika.Message(str(i).encode()), routing_key=q.name)
        got = []
        async with q.iterator() as it:
            async for m in it:
                async with m.process():
                    got.append(int(m.body))
                if len(got) == 20:
                    break
        assert got == list(range(20))
        declared = await ch.declare_queue(q.name, passive=True)
        assert declared.declaration_result.message_count == 0
        await q.delete()
