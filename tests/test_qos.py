"""Consuming: basic.qos prefetch (per consumer, global, both), and what it does not limit.

Every expectation here was checked against a real RabbitMQ 3.x (run with AMQP_REFERENCE_URL).
"""

from __future__ import annotations

import asyncio

import aio_pika
import pika
import pika.exceptions
import pytest

from helpers.pika_client import conn, queue  # noqa: F401 - pytest fixtures
from helpers.pika_client import publish_numbers, pump, ready_count, settle

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------
# basic.qos
# --------------------------------------------------------------------------------------------

def test_prefetch_per_consumer_limits_unacked(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=2)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m))
    publish_numbers(conn.channel(), q, 5)
    assert pump(conn, lambda: len(got) == 2)
    settle(conn, 0.3)
    assert len(got) == 2
    ch.basic_ack(got[0].delivery_tag)
    assert pump(conn, lambda: len(got) == 3)
    settle(conn, 0.2)
    assert len(got) == 3
    ch.basic_ack(got[2].delivery_tag, multiple=True)
    assert pump(conn, lambda: len(got) == 5)
    assert [int(b.delivery_tag) for b in got] == [1, 2, 3, 4, 5]


def test_prefetch_is_per_consumer_when_global_false(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=2)
    a, b = [], []
    ch.basic_consume(q, lambda c, m, p, body: a.append(m))
    ch.basic_consume(q, lambda c, m, p, body: b.append(m))
    publish_numbers(conn.channel(), q, 10)
    assert pump(conn, lambda: len(a) == 2 and len(b) == 2)
    settle(conn, 0.3)
    assert (len(a), len(b)) == (2, 2)
    assert ready_count(conn.channel(), q) == 6


def test_prefetch_applies_only_to_consumers_created_after_qos(conn, queue):
    q = queue()
    ch = conn.channel()
    before, after = [], []
    ch.basic_consume(q, lambda c, m, p, b: before.append(m))
    ch.basic_qos(prefetch_count=1)
    ch.basic_consume(q, lambda c, m, p, b: after.append(m))
    publish_numbers(conn.channel(), q, 10)
    assert pump(conn, lambda: len(before) + len(after) == 10)
    assert (len(before), len(after)) == (9, 1)


def test_prefetch_global_is_shared_by_consumers_on_channel(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=3, global_qos=True)
    a, b = [], []
    ch.basic_consume(q, lambda c, m, p, body: a.append(m))
    ch.basic_consume(q, lambda c, m, p, body: b.append(m))
    publish_numbers(conn.channel(), q, 10)
    assert pump(conn, lambda: len(a) + len(b) == 3)
    settle(conn, 0.3)
    assert len(a) + len(b) == 3
    ch.basic_ack(0, multiple=True)
    assert pump(conn, lambda: len(a) + len(b) == 6)
    settle(conn, 0.2)
    assert len(a) + len(b) == 6


def test_prefetch_global_spans_queues(conn, queue):
    q1, q2 = queue(), queue()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=3, global_qos=True)
    got = []
    ch.basic_consume(q1, lambda c, m, p, body: got.append(m))
    ch.basic_consume(q2, lambda c, m, p, body: got.append(m))
    pub = conn.channel()
    publish_numbers(pub, q1, 5)
    publish_numbers(pub, q2, 5)
    assert pump(conn, lambda: len(got) == 3)
    settle(conn, 0.3)
    assert len(got) == 3
    assert ready_count(pub, q1) + ready_count(pub, q2) == 7


def test_prefetch_per_consumer_and_global_both_enforced(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=2)  # per consumer (set first!)
    ch.basic_qos(prefetch_count=3, global_qos=True)  # per channel
    a, b = [], []
    ch.basic_consume(q, lambda c, m, p, body: a.append(m))
    ch.basic_consume(q, lambda c, m, p, body: b.append(m))
    publish_numbers(conn.channel(), q, 10)
    assert pump(conn, lambda: len(a) + len(b) == 3)
    settle(conn, 0.3)
    assert sorted([len(a), len(b)]) == [1, 2]
    # ack one from the consumer holding 2: the global limit allows one more
    full = a if len(a) == 2 else b
    ch.basic_ack(full[0].delivery_tag)
    assert pump(conn, lambda: len(a) + len(b) == 4)
    settle(conn, 0.2)
    assert len(a) + len(b) == 4
    assert len(a) <= 3 and len(b) <= 3


def test_per_consumer_qos_after_global_qos_lifts_the_channel_limit(conn, queue):
    # RabbitMQ quirk: basic.qos(global=false) calls rabbit_limiter:unlimit_prefetch, so a
    # channel limit set BEFORE it is dropped; only the per-consumer limit remains.
    q = queue()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=3, global_qos=True)
    ch.basic_qos(prefetch_count=2)
    a, b = [], []
    ch.basic_consume(q, lambda c, m, p, body: a.append(m))
    ch.basic_consume(q, lambda c, m, p, body: b.append(m))
    publish_numbers(conn.channel(), q, 10)
    assert pump(conn, lambda: len(a) + len(b) == 4)
    settle(conn, 0.3)
    assert (len(a), len(b)) == (2, 2)


def test_prefetch_does_not_limit_basic_get(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1)
    ch.basic_qos(prefetch_count=1, global_qos=True)
    publish_numbers(ch, q, 4)
    got = [ch.basic_get(q) for _ in range(4)]
    assert [b for _, _, b in got] == [b"1", b"2", b"3", b"4"]


def test_prefetch_no_ack_consumer_is_not_limited(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_qos(prefetch_count=1)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    publish_numbers(conn.channel(), q, 20)
    assert pump(conn, lambda: len(got) == 20)


def test_prefetch_size_is_not_implemented(conn):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as ei:
        ch.basic_qos(prefetch_size=10)
    assert ei.value.reply_code == 540
    assert ei.value.reply_text == "NOT_IMPLEMENTED - prefetch_size!=0 (10)"


async def test_prefetch_with_aio_pika(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        await ch.set_qos(prefetch_count=3)
        q = await ch.declare_queue(f"test-consume-aio-qos-{uid}", auto_delete=True)
        got: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def on_message(m):
            got.append(m)

        await q.consume(on_message)
        pub = await conn.channel()
        for i in range(10):
            await pub.default_exchange.publish(aio_pika.Message(str(i).encode()), routing_key=q.name)
        for _ in range(100):
            if len(got) >= 3:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        assert len(got) == 3
        await got[2].ack(multiple=True)
        for _ in range(100):
            if len(got) >= 6:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        assert [m.body for m in got] == [str(i).encode() for i in range(6)]
