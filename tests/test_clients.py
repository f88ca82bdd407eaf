"""The same simple flow (declare, publish, consume, ack) through every client library the broker
must serve unchanged: pika (BlockingConnection and SelectConnection), aio-pika (plain and robust),
aiormq, py-amqp, and kombu (amqp:// and pyamqp:// transports, Producer/Consumer and SimpleQueue).
Checked against RabbitMQ (AMQP_REFERENCE_URL)."""
from __future__ import annotations

import asyncio
import json
import socket
import time
from urllib.parse import unquote, urlparse

import aio_pika
import aiormq
import amqp
import pika
import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue

from helpers.pika_client import delete_all
from helpers.wait import HANG_GUARD

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------
# pika
# --------------------------------------------------------------------------------------------

def test_pika_blocking_connection(amqp_url, uid):
    q = f"test-clients-pika-{uid}"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        ok = ch.queue_declare(q, durable=False)
        assert ok.method.queue == q
        for i in range(5):
            ch.basic_publish("", q, f"m{i}".encode(), pika.BasicProperties(content_type="text/plain"))
        got = []

        def on_message(c, method, props, body):
            got.append((body, props.content_type))
            c.basic_ack(method.delivery_tag)

        tag = ch.basic_consume(q, on_message)
        deadline = time.monotonic() + HANG_GUARD
        while len(got) < 5 and time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.02)
        ch.basic_cancel(tag)
        assert got == [(f"m{i}".encode(), "text/plain") for i in range(5)]
        assert ch.queue_declare(q, passive=True).method.message_count == 0
        assert ch.queue_delete(q).method.message_count == 0
    finally:
        conn.close()


def test_pika_blocking_consume_generator(amqp_url, uid):
    q = f"test-clients-pika-gen-{uid}"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        ch.queue_declare(q, auto_delete=True)
        for i in range(3):
            ch.basic_publish("", q, str(i).encode())
        got = []
        for method, props, body in ch.consume(q, inactivity_timeout=HANG_GUARD):
            assert method is not None, "timed out"
            got.append(body)
            ch.basic_ack(method.delivery_tag)
            if len(got) == 3:
                break
        requeued = ch.cancel()
        assert requeued == 0
        assert got == [b"0", b"1", b"2"]
    finally:
        conn.close()


def test_pika_select_connection(amqp_url, uid):
    q = f"test-clients-pika-select-{uid}"
    state = {"got": [], "steps": [], "error": None}

    def on_open(conn):
        state["steps"].append("open")
        conn.channel(on_open_callback=on_channel)

    def on_channel(ch):
        state["steps"].append("channel")
        ch.queue_declare(q, auto_delete=True, callback=lambda _f: on_declared(ch))

    def on_declared(ch):
        state["steps"].append("declared")
        ch.basic_qos(prefetch_count=10, callback=lambda _f: on_qos(ch))

    def on_qos(ch):
        ch.basic_consume(q, on_message_callback=on_message,
                         callback=lambda _f: [ch.basic_publish("", q, f"s{i}".encode()) for i in range(3)])

    def on_message(ch, method, props, body):
        state["got"].append(body)
        ch.basic_ack(method.delivery_tag)
        if len(state["got"]) == 3:
            ch.basic_cancel(method.consumer_tag, callback=lambda _f: (state["steps"].append("cancelled"),
                                                                      ch.close()))

    def on_channel_closed(ch, reason):
        pass

    def on_open_error(conn, err):
        state["error"] = err
        conn.ioloop.stop()

    conn = pika.SelectConnection(pika.URLParameters(amqp_url), on_open_callback=on_open,
                                 on_open_error_callback=on_open_error,
                                 on_close_callback=lambda c, r: c.ioloop.stop())

    def finish_when_done():
        if "cancelled" in state["steps"] or time.monotonic() > give_up:
            if conn.is_open:
                conn.close()
        else:
            conn.ioloop.call_later(0.05, finish_when_done)

    give_up = time.monotonic() + HANG_GUARD
    conn.ioloop.call_later(0.05, finish_when_done)
    conn.ioloop.start()
    assert state["error"] is None
    assert state["got"] == [b"s0", b"s1", b"s2"]
    assert state["steps"] == ["open", "channel", "declared", "cancelled"]


# --------------------------------------------------------------------------------------------
# aio-pika / aiormq
# --------------------------------------------------------------------------------------------

async def _aio_pika_flow(conn, name: str) -> None:
    async with conn:
        ch = await conn.channel()
        await ch.set_qos(prefetch_count=5)
        ex = await ch.declare_exchange(f"{name}-x", aio_pika.ExchangeType.TOPIC, auto_delete=True)
        q = await ch.declare_queue(name, auto_delete=True)
        await q.bind(ex, routing_key="orders.*")
        for i in range(5):
            await ex.publish(aio_pika.Message(f"o{i}".encode(), headers={"n": i}), routing_key=f"orders.{i}")
        await ex.publish(aio_pika.Message(b"ignored"), routing_key="other.1")
        got = []
        async with q.iterator() as it:
            async for msg in it:
                async with msg.process():
                    got.append((msg.body, msg.headers["n"], msg.routing_key, msg.exchange))
                if len(got) == 5:
                    break
        assert got == [(f"o{i}".encode(), i, f"orders.{i}", f"{name}-x") for i in range(5)]


async def test_aio_pika_connect(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    await asyncio.wait_for(_aio_pika_flow(conn, f"test-clients-aio-{uid}"), 10)


async def test_aio_pika_connect_robust(amqp_url, uid):
    conn = await aio_pika.connect_robust(amqp_url)
    await asyncio.wait_for(_aio_pika_flow(conn, f"test-clients-aio-robust-{uid}"), 10)


async def test_aio_pika_robust_channel_reopens_after_channel_error(amqp_url, uid):
    conn = await aio_pika.connect_robust(amqp_url)
    async with conn:
        ch = await conn.channel()
        with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
            await ch.declare_queue(f"test-clients-missing-{uid}", passive=True)
        # the robust channel comes back by itself and is usable again
        q = None
        for _ in range(50):
            try:
                q = await ch.declare_queue(f"test-clients-aio-reopen-{uid}", auto_delete=True)
                break
            except aio_pika.exceptions.ChannelInvalidStateError:
                await asyncio.sleep(0.05)
        assert q is not None
        await ch.default_exchange.publish(aio_pika.Message(b"again"), routing_key=q.name)
        msg = await q.get(timeout=5, no_ack=True)
        assert msg.body == b"again"
        await q.delete()


async def test_aiormq(amqp_url, uid):
    conn = await aiormq.connect(amqp_url)
    try:
        ch = await conn.channel()
        await ch.basic_qos(prefetch_count=2)
        declare = await ch.queue_declare(f"test-clients-aiormq-{uid}", auto_delete=False)
        q = declare.queue
        for i in range(4):
            ack = await ch.basic_publish(f"a{i}".encode(), routing_key=q,
                                         properties=aiormq.spec.Basic.Properties(message_id=str(i)))
            assert isinstance(ack, aiormq.spec.Basic.Ack)
        got = []
        done = asyncio.get_running_loop().create_future()

        async def on_message(message: aiormq.abc.DeliveredMessage):
            got.append((message.body, message.header.properties.message_id))
            await message.channel.basic_ack(message.delivery.delivery_tag)
            if len(got) == 4 and not done.done():
                done.set_result(None)

        consume_ok = await ch.basic_consume(q, on_message)
        await asyncio.wait_for(done, 5)
        await ch.basic_cancel(consume_ok.consumer_tag)
        assert got == [(f"a{i}".encode(), str(i)) for i in range(4)]
        get = await ch.basic_get(q)
        assert isinstance(get.delivery, aiormq.spec.Basic.GetEmpty)
        assert (await ch.queue_delete(q)).message_count == 0
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------
# py-amqp and kombu
# --------------------------------------------------------------------------------------------

def test_py_amqp(amqp_url, uid):
    u = urlparse(amqp_url)
    q = f"test-clients-pyamqp-{uid}"
    vhost = unquote(u.path[1:]) if u.path and u.path != "/" else "/"
    with amqp.Connection(f"{u.hostname}:{u.port or 5672}", userid=unquote(u.username or "guest"),
                         password=unquote(u.password or "guest"), virtual_host=vhost,
                         connect_timeout=5) as conn:
        ch = conn.channel()
        ch.queue_declare(q, auto_delete=True)
        ch.confirm_select()
        ch.basic_publish(amqp.Message("hello", content_type="text/plain", application_headers={"k": 1}),
                         routing_key=q)
        got = []
        ch.basic_consume(q, callback=lambda m: (got.append(m), m.channel.basic_ack(m.delivery_tag)))
        deadline = time.monotonic() + HANG_GUARD
        while not got and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=0.2)
            except socket.timeout:
                pass
        assert len(got) == 1
        body = got[0].body  # py-amqp decodes text bodies to str
        assert (body.encode() if isinstance(body, str) else body) == b"hello"
        assert got[0].properties["content_type"] == "text/plain"
        assert got[0].headers == {"k": 1}


@pytest.mark.parametrize("scheme", ["amqp", "pyamqp"])
def test_kombu_producer_consumer(amqp_url, uid, scheme):
    url = scheme + amqp_url[amqp_url.index("://"):]
    exchange = Exchange(f"test-clients-kombu-x-{uid}", type="direct", auto_delete=True, durable=False)
    queue = Queue(f"test-clients-kombu-{scheme}-{uid}", exchange=exchange, routing_key="task",
                  auto_delete=True, durable=False)
    with Connection(url, connect_timeout=5) as conn:
        assert conn.transport.driver_type == "amqp"
        producer = Producer(conn.channel(), exchange=exchange, serializer="json")
        queue(producer.channel).declare()
        for i in range(3):
            producer.publish({"n": i, "text": "héllo"}, routing_key="task", declare=[queue])
        got = []

        def on_message(body, message):
            got.append((body, message.content_type))
            message.ack()

        with Consumer(conn, queues=[queue], callbacks=[on_message], accept=["json"]):
            deadline = time.monotonic() + HANG_GUARD
            while len(got) < 3 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=0.2)
                except socket.timeout:
                    pass
        assert got == [({"n": i, "text": "héllo"}, "application/json") for i in range(3)]


def test_kombu_simple_queue(amqp_url, uid):
    name = f"test-clients-kombu-simple-{uid}"
    with Connection(amqp_url, connect_timeout=5) as conn:
        sq = conn.SimpleQueue(name)
        try:
            for i in range(3):
                sq.put({"i": i})
            deadline = time.monotonic() + HANG_GUARD
            while sq.qsize() < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert sq.qsize() == 3
            out = []
            for _ in range(3):
                msg = sq.get(block=True, timeout=HANG_GUARD)
                out.append(msg.payload)
                msg.ack()
            assert out == [{"i": 0}, {"i": 1}, {"i": 2}]
            with pytest.raises(sq.Empty):
                sq.get(block=True, timeout=0.3)
            # reject/requeue through kombu
            sq.put("again")
            msg = sq.get(block=True, timeout=HANG_GUARD)
            msg.requeue()
            msg = sq.get(block=True, timeout=HANG_GUARD)
            assert msg.payload == "again" and msg.delivery_info["redelivered"] is True
            msg.ack()
        finally:
            sq.close()
            delete_all(amqp_url, [name])


def test_kombu_simple_buffer_and_get_nowait(amqp_url, uid):
    name = f"test-clients-kombu-buf-{uid}"
    with Connection(amqp_url, connect_timeout=5) as conn:
        q = conn.SimpleBuffer(name)  # no-ack, auto-delete queue
        try:
            q.put(b"raw bytes", serializer=None, content_type="application/data", content_encoding="binary")
            deadline = time.monotonic() + HANG_GUARD
            while True:
                try:
                    msg = q.get_nowait()
                    break
                except q.Empty:
                    assert time.monotonic() < deadline
                    time.sleep(0.02)
            assert msg.body == b"raw bytes"
            assert msg.content_type == "application/data"
        finally:
            q.close()


# --------------------------------------------------------------------------------------------
# across libraries
# --------------------------------------------------------------------------------------------

async def test_kombu_to_aio_pika_interop(amqp_url, uid):
    name = f"test-clients-interop-{uid}"

    def produce():
        with Connection(amqp_url, connect_timeout=5) as conn:
            q = Queue(name, durable=False, auto_delete=False)
            Producer(conn.channel(), serializer="json").publish(
                {"from": "kombu"}, routing_key=name, declare=[q], headers={"h": "v"}, priority=3)

    await asyncio.get_running_loop().run_in_executor(None, produce)
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(name, passive=True)
        msg = await q.get(timeout=5, no_ack=True)
        assert json.loads(msg.body) == {"from": "kombu"}
        assert msg.content_type == "application/json"
        assert msg.headers.get("h") == "v"
        assert msg.priority == 3
        await ch.default_exchange.publish(
            aio_pika.Message(json.dumps({"from": "aio-pika"}).encode(), content_type="application/json"),
            routing_key=name)

        def consume():
            with Connection(amqp_url, connect_timeout=5) as kconn:
                sq = kconn.SimpleQueue(Queue(name, durable=False, auto_delete=False))
                try:
                    m = sq.get(block=True, timeout=HANG_GUARD)
                    m.ack()
                    return m.payload
                finally:
                    sq.close()

        assert await asyncio.get_running_loop().run_in_executor(None, consume) == {"from": "aio-pika"}
        await q.delete()


def test_pika_to_kombu_headers_and_properties(amqp_url, uid):
    name = f"test-clients-pika-kombu-{uid}"
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        ch = conn.channel()
        ch.queue_declare(name, auto_delete=False)
        ch.basic_publish("", name, b"plain", pika.BasicProperties(
            content_type="text/plain", headers={"x": [1, "a"]}, correlation_id="cid", delivery_mode=2))
    finally:
        conn.close()
    with Connection(amqp_url, connect_timeout=5) as kconn:
        sq = kconn.SimpleQueue(Queue(name, durable=False, auto_delete=False))
        try:
            m = sq.get(block=True, timeout=HANG_GUARD)
            assert m.body == b"plain"
            assert m.content_type == "text/plain"
            assert m.headers == {"x": [1, "a"]}
            assert m.properties["correlation_id"] == "cid"
            assert m.properties["delivery_mode"] == 2
            m.ack()
        finally:
            sq.close()
    delete_all(amqp_url, [name])


def test_kombu_sees_server_capabilities(amqp_url):
    """kombu / py-amqp switch features on from these (e.g. consumer_cancel_notify, confirms)."""
    with Connection(amqp_url, connect_timeout=5) as conn:
        conn.connect()
        caps = conn.connection.server_properties["capabilities"]
        for cap in ("publisher_confirms", "exchange_exchange_bindings", "basic.nack",
                    "consumer_cancel_notify", "connection.blocked", "consumer_priorities",
                    "authentication_failure_close", "per_consumer_qos", "direct_reply_to"):
            assert caps.get(cap) is True, cap
