"""Consuming: basic.consume / cancel / get / ack / nack / reject / recover / qos, bodies, properties.

Every expectation here was checked against a real RabbitMQ 3.x (run with AMQP_REFERENCE_URL).
Clients: pika (BlockingConnection), aio-pika, and a tiny raw-frame client (pamqp) where a
library hides the wire (server-generated consumer tags, byte-exact content headers).
"""
from __future__ import annotations

import asyncio
import datetime
import decimal
import hashlib
import os
import socket
import struct
import time
from urllib.parse import unquote, urlparse

import aio_pika
import pika
import pika.exceptions
import pytest
import pamqp.decode
import pamqp.encode
from pamqp import commands
from pamqp import frame as pframe
from pamqp import header as pheader

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def connect(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


def url_user(url: str) -> str:
    return unquote(urlparse(url).username or "guest")


@pytest.fixture
def conn(amqp_url):
    c = connect(amqp_url)
    yield c
    if c.is_open:
        c.close()


@pytest.fixture
def queue(amqp_url, uid):
    """Factory: declare a uniquely named queue (deleted at teardown). Returns its name."""
    admin = connect(amqp_url)
    names: list[str] = []
    counter = [0]

    def _declare(**kwargs) -> str:
        counter[0] += 1
        name = f"test-consume-{uid}-{counter[0]}"
        ch = admin.channel()
        ch.queue_declare(name, **kwargs)
        ch.close()
        names.append(name)
        return name

    yield _declare
    try:
        ch = admin.channel()
        for n in names:
            ch.queue_delete(n)
        admin.close()
    except Exception:
        pass


def pump(c: pika.BlockingConnection, until, timeout: float = 2.0) -> bool:
    """Process I/O until `until()` is true or `timeout` passes; returns until()."""
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        c.process_data_events(time_limit=0.02)
    return until()


def settle(c: pika.BlockingConnection, seconds: float = 0.3) -> None:
    """Process I/O for a while (to show that nothing more arrives)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        c.process_data_events(time_limit=0.02)


def ready_count(ch, q) -> int:
    return ch.queue_declare(q, passive=True).method.message_count


def wait_ready(ch, q, n: int, timeout: float = 2.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        count = ready_count(ch, q)
        if count == n or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def publish_numbers(ch, q, n: int, start: int = 1) -> None:
    for i in range(start, start + n):
        ch.basic_publish("", q, str(i).encode())


def drain(ch, q, auto_ack: bool = True) -> list[tuple[bytes, bool]]:
    out = []
    while True:
        m, _p, b = ch.basic_get(q, auto_ack=auto_ack)
        if m is None:
            return out
        out.append((b, m.redelivered))


# --------------------------------------------------------------------------------------------
# a minimal raw AMQP client, for what the libraries hide
# --------------------------------------------------------------------------------------------

FRAME_END = b"\xce"


class Raw:
    """Synchronous AMQP 0-9-1 client over a socket: pamqp for method frames, raw bytes otherwise."""

    def __init__(self, url: str, timeout: float = 5.0):
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 5672), timeout=timeout)
        self.buf = b""
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self.expect(0, commands.Connection.Start)
        user, pw = unquote(u.username or "guest"), unquote(u.password or "guest")
        caps = {"publisher_confirms": True, "consumer_cancel_notify": True, "basic.nack": True,
                "exchange_exchange_bindings": True, "connection.blocked": True,
                "authentication_failure_close": True, "per_consumer_qos": True}
        self.send(0, commands.Connection.StartOk(
            client_properties={"product": "raw-test", "capabilities": caps},
            mechanism="PLAIN", response=f"\0{user}\0{pw}", locale="en_US"))
        tune = self.expect(0, commands.Connection.Tune)
        self.frame_max = tune.frame_max
        self.send(0, commands.Connection.TuneOk(channel_max=tune.channel_max,
                                                frame_max=tune.frame_max, heartbeat=0))
        vhost = unquote(u.path[1:]) if u.path and u.path != "/" else "/"
        self.send(0, commands.Connection.Open(virtual_host=vhost))
        self.expect(0, commands.Connection.OpenOk)

    def send(self, ch: int, method) -> None:
        self.sock.sendall(pframe.marshal(method, ch))

    def send_raw(self, ftype: int, ch: int, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">BHI", ftype, ch, len(payload)) + payload + FRAME_END)

    def recv_frame(self) -> tuple[int, int, bytes]:
        while True:
            if len(self.buf) >= 7:
                ftype, ch, size = struct.unpack(">BHI", self.buf[:7])
                if len(self.buf) >= 8 + size:
                    payload = self.buf[7:7 + size]
                    assert self.buf[7 + size:8 + size] == FRAME_END
                    self.buf = self.buf[8 + size:]
                    if ftype == 8:
                        continue
                    return ftype, ch, payload
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("socket closed by peer")
            self.buf += data

    def recv(self):
        ftype, ch, payload = self.recv_frame()
        assert ftype == 1, f"expected a method frame, got type {ftype}"
        _, _, obj = pframe.unmarshal(struct.pack(">BHI", ftype, ch, len(payload)) + payload + FRAME_END)
        return ch, obj

    def expect(self, ch: int, cls):
        got_ch, obj = self.recv()
        assert got_ch == ch and isinstance(obj, cls), (got_ch, obj, getattr(obj, "reply_text", None))
        return obj

    def open_channel(self, ch: int) -> None:
        self.send(ch, commands.Channel.Open())
        self.expect(ch, commands.Channel.OpenOk)

    def publish(self, ch: int, exchange: str, rk: str, body: bytes, props_raw: bytes | None = None) -> None:
        self.send(ch, commands.Basic.Publish(exchange=exchange, routing_key=rk))
        if props_raw is None:
            self.sock.sendall(pframe.marshal(pheader.ContentHeader(0, len(body), commands.Basic.Properties()), ch))
        else:
            self.send_raw(2, ch, struct.pack(">HHQ", 60, 0, len(body)) + props_raw)
        step = self.frame_max - 8
        for i in range(0, len(body), step):
            self.send_raw(3, ch, body[i:i + step])

    def read_content(self, ch: int) -> tuple[bytes, bytes]:
        """After basic.deliver / get-ok / return: (raw property bytes after body size, body)."""
        ftype, c, payload = self.recv_frame()
        assert ftype == 2 and c == ch, (ftype, c)
        class_id, _weight, size = struct.unpack(">HHQ", payload[:12])
        assert class_id == 60
        body = b""
        while len(body) < size:
            ftype, c, chunk = self.recv_frame()
            assert ftype == 3 and c == ch
            body += chunk
        return payload[12:], body

    def close(self) -> None:
        try:
            self.send(0, commands.Connection.Close(reply_code=200, reply_text="bye"))
            while True:
                _, obj = self.recv()
                if isinstance(obj, commands.Connection.CloseOk):
                    break
        except Exception:
            pass
        self.sock.close()


@pytest.fixture
def raw(amqp_url):
    r = Raw(amqp_url)
    yield r
    r.close()


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
    assert drain(pub, q) == [(b"2", True)]


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
    assert [int(b) for b, _ in drain(ch, q)] == list(range(1, 51))


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
# ack / nack / reject
# --------------------------------------------------------------------------------------------

def test_ack_single_message(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 3)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(3)]
    ch.basic_ack(tags[1])
    ch.close()
    ch = conn.channel()
    assert wait_ready(ch, q, 2) == 2
    assert drain(ch, q) == [(b"1", True), (b"3", True)]


def test_ack_multiple(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 5)
    for _ in range(5):
        ch.basic_get(q)
    ch.basic_ack(3, multiple=True)
    ch.close()
    ch = conn.channel()
    assert wait_ready(ch, q, 2) == 2
    assert drain(ch, q) == [(b"4", True), (b"5", True)]


def test_ack_multiple_with_tag_zero_acks_everything(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 4)
    for _ in range(4):
        ch.basic_get(q)
    ch.basic_ack(0, multiple=True)
    ch.close()
    ch = conn.channel()
    settle(conn, 0.2)
    assert ready_count(ch, q) == 0


def test_double_ack_is_unknown_delivery_tag(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 1)
    m, _, _ = ch.basic_get(q)
    ch.basic_ack(m.delivery_tag)
    ch.basic_ack(m.delivery_tag)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - unknown delivery tag 1"
    assert conn.is_open


def test_ack_tag_from_another_channel_is_unknown(conn, queue):
    q = queue()
    ch1 = conn.channel()
    publish_numbers(ch1, q, 1)
    ch1.basic_get(q)
    ch2 = conn.channel()
    ch2.basic_ack(1)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch2.queue_declare(q, passive=True)
    assert (ei.value.reply_code, ei.value.reply_text) == (406, "PRECONDITION_FAILED - unknown delivery tag 1")


def test_ack_of_no_ack_delivery_is_unknown_tag(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 1)
    m, _, _ = ch.basic_get(q, auto_ack=True)
    ch.basic_ack(m.delivery_tag)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert (ei.value.reply_code, ei.value.reply_text) == (406, "PRECONDITION_FAILED - unknown delivery tag 1")


def test_reject_requeue_puts_message_back_in_original_position(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 5)
    got = [ch.basic_get(q) for _ in range(3)]
    assert [b for _, _, b in got] == [b"1", b"2", b"3"]
    ch.basic_reject(got[1][0].delivery_tag, requeue=True)
    assert wait_ready(ch, q, 3) == 3
    m, _, b = ch.basic_get(q)
    assert (b, m.redelivered, m.message_count) == (b"2", True, 2)
    m, _, b = ch.basic_get(q)
    assert (b, m.redelivered) == (b"4", False)
    m, _, b = ch.basic_get(q)
    assert (b, m.redelivered) == (b"5", False)


def test_nack_multiple_requeue_restores_original_order(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 5)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(4)]  # 1..4 unacked, 5 ready
    ch.basic_ack(tags[1])  # "2" done
    ch.basic_nack(tags[3], multiple=True, requeue=True)  # 1, 3, 4 back
    assert wait_ready(ch, q, 4) == 4
    assert drain(ch, q) == [(b"1", True), (b"3", True), (b"4", True), (b"5", False)]


def test_requeued_messages_go_to_the_consumer_again(conn, queue):
    q = queue()
    ch = conn.channel()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((m, b)))
    publish_numbers(conn.channel(), q, 2)
    assert pump(conn, lambda: len(got) == 2)
    ch.basic_nack(got[1][0].delivery_tag, multiple=True, requeue=True)
    assert pump(conn, lambda: len(got) == 4)
    assert [(b, m.redelivered) for m, b in got] == [(b"1", False), (b"2", False), (b"1", True), (b"2", True)]
    assert [m.delivery_tag for m, _ in got] == [1, 2, 3, 4]


@pytest.mark.parametrize("how", ["reject", "nack", "nack-multiple"])
def test_requeue_false_drops_message(conn, queue, how):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 3)
    m1, _, _ = ch.basic_get(q)
    m2, _, _ = ch.basic_get(q)
    if how == "reject":
        ch.basic_reject(m2.delivery_tag, requeue=False)
    elif how == "nack":
        ch.basic_nack(m2.delivery_tag, requeue=False)
    else:
        ch.basic_nack(m2.delivery_tag, multiple=True, requeue=False)
    ch.close()
    ch = conn.channel()
    expected = [(b"3", False)] if how == "nack-multiple" else [(b"1", True), (b"3", False)]
    assert wait_ready(ch, q, len(expected)) == len(expected)
    assert drain(ch, q) == expected


# --------------------------------------------------------------------------------------------
# unacked messages come back
# --------------------------------------------------------------------------------------------

def test_unacked_messages_requeued_in_order_on_channel_close(conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 5)
    ch = conn.channel()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m))
    assert pump(conn, lambda: len(got) == 5)
    ch.basic_ack(got[0].delivery_tag)
    ch.close()
    assert wait_ready(pub, q, 4) == 4
    assert drain(pub, q) == [(b"2", True), (b"3", True), (b"4", True), (b"5", True)]


def test_unacked_messages_requeued_on_connection_close(amqp_url, conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 4)
    other = connect(amqp_url)
    och = other.channel()
    for _ in range(3):
        och.basic_get(q)
    other.close()
    assert wait_ready(pub, q, 4) == 4
    assert drain(pub, q) == [(b"1", True), (b"2", True), (b"3", True), (b"4", False)]


def test_unacked_messages_requeued_when_socket_drops(amqp_url, conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 2)
    r = Raw(amqp_url)
    r.open_channel(1)
    r.send(1, commands.Basic.Get(queue=q, no_ack=False))
    r.expect(1, commands.Basic.GetOk)
    r.read_content(1)
    r.sock.close()  # no connection.close handshake
    assert wait_ready(pub, q, 2) == 2
    assert drain(pub, q) == [(b"1", True), (b"2", False)]


def test_basic_recover_requeue_true_redelivers(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 3)
    ch.basic_get(q)
    ch.basic_get(q)
    ch.basic_recover(requeue=True)
    assert wait_ready(ch, q, 3) == 3
    assert drain(ch, q) == [(b"1", True), (b"2", True), (b"3", False)]


def test_basic_recover_redelivers_to_consumer(conn, queue):
    q = queue()
    ch = conn.channel()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((b, m.redelivered)))
    publish_numbers(conn.channel(), q, 2)
    assert pump(conn, lambda: len(got) == 2)
    ch.basic_recover(requeue=True)
    assert pump(conn, lambda: len(got) == 4)
    assert got == [(b"1", False), (b"2", False), (b"1", True), (b"2", True)]


def test_basic_recover_requeue_false_not_implemented(conn):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as ei:
        ch.basic_recover(requeue=False)
    assert ei.value.reply_code == 540
    assert ei.value.reply_text == "NOT_IMPLEMENTED - requeue=false"


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


# --------------------------------------------------------------------------------------------
# bodies
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [131072 - 8, 131072 - 7, 300 * 1024, 1024 * 1024])
def test_large_body_integrity_consume(conn, queue, size):
    q = queue()
    body = os.urandom(size)
    ch = conn.channel()
    ch.basic_publish("", q, body)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    assert pump(conn, lambda: got, timeout=5)
    assert len(got[0]) == size
    assert hashlib.sha256(got[0]).digest() == hashlib.sha256(body).digest()


def test_large_body_integrity_get(conn, queue):
    q = queue()
    bodies = [os.urandom(300 * 1024), os.urandom(1024 * 1024), b"small"]
    ch = conn.channel()
    for b in bodies:
        ch.basic_publish("", q, b)
    got = [ch.basic_get(q, auto_ack=True)[2] for _ in bodies]
    assert got == bodies


def test_large_body_is_split_into_frame_max_frames(raw, queue):
    q = queue()
    raw.open_channel(1)
    body = os.urandom(300 * 1024)
    raw.publish(1, "", q, body)
    raw.send(1, commands.Basic.Get(queue=q, no_ack=True))
    raw.expect(1, commands.Basic.GetOk)
    ftype, _, _hdr = raw.recv_frame()
    assert ftype == 2
    sizes = []
    total = 0
    while total < len(body):
        ftype, _, chunk = raw.recv_frame()
        assert ftype == 3
        sizes.append(len(chunk))
        total += len(chunk)
    assert max(sizes) <= raw.frame_max - 8
    assert sizes[:-1] == [raw.frame_max - 8] * (len(sizes) - 1)


async def test_large_body_aio_pika(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(f"test-consume-aio-big-{uid}", auto_delete=True)
        body = os.urandom(1024 * 1024 + 17)
        await ch.default_exchange.publish(aio_pika.Message(body), routing_key=q.name)
        async with q.iterator() as it:
            async for m in it:
                async with m.process():
                    assert m.body == body
                break


def test_empty_body(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_publish("", q, b"", pika.BasicProperties(content_type="text/plain"))
    ch.basic_publish("", q, b"")
    m, p, b = ch.basic_get(q, auto_ack=True)
    assert b == b"" and p.content_type == "text/plain"
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(b), auto_ack=True)
    assert pump(conn, lambda: got)
    assert got == [b""]


def test_empty_body_has_no_body_frame(raw, queue):
    q = queue()
    raw.open_channel(1)
    raw.publish(1, "", q, b"")
    raw.publish(1, "", q, b"after")
    raw.send(1, commands.Basic.Get(queue=q, no_ack=True))
    raw.expect(1, commands.Basic.GetOk)
    _props, body = raw.read_content(1)
    assert body == b""
    # next frame is the next method, not an empty body frame
    raw.send(1, commands.Basic.Get(queue=q, no_ack=True))
    raw.expect(1, commands.Basic.GetOk)
    assert raw.read_content(1)[1] == b"after"


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------

def full_pika_properties(user: str) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        content_encoding="gzip",
        headers={
            "str": "héllo wörld",
            "int_small": 7,
            "int_neg": -1,
            "int32_max": 2**31 - 1,
            "int32_min": -(2**31),
            "int64_big": 2**40 + 3,
            "int64_max": 2**63 - 1,
            "int64_min": -(2**63),
            "bool_t": True,
            "bool_f": False,
            "decimal": decimal.Decimal("3.14"),
            "timestamp": datetime.datetime(2024, 5, 17, 12, 30, 45, tzinfo=datetime.timezone.utc),
            "bytes": b"\x00\x01\xfe\xff",
            "void": None,
            "array": [1, "two", [3, 4], {"k": "v"}, True, None],
            "nested": {"a": {"b": {"c": [1, 2, {"d": "deep"}]}}, "e": 2**33},
            "empty_table": {},
            "empty_array": [],
            "empty_str": "",
        },
        delivery_mode=2,
        priority=5,
        correlation_id="corr-123",
        reply_to="reply-queue",
        expiration="315360000000",
        message_id="msg-1",
        timestamp=1_700_000_000,
        type="my.type",
        user_id=user,
        app_id="the-app",
    )


def props_dict(p: pika.BasicProperties) -> dict:
    return {k: getattr(p, k) for k in (
        "content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
        "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id")}


def test_properties_round_trip_pika_consume(conn, queue, amqp_url):
    q = queue()
    sent = full_pika_properties(url_user(amqp_url))
    ch = conn.channel()
    ch.basic_publish("", q, b"payload", sent)
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((p, b)), auto_ack=True)
    assert pump(conn, lambda: got)
    props, body = got[0]
    assert body == b"payload"
    assert props_dict(props) == props_dict(sent)


def test_properties_round_trip_pika_get(conn, queue, amqp_url):
    q = queue()
    sent = full_pika_properties(url_user(amqp_url))
    ch = conn.channel()
    ch.basic_publish("", q, b"payload", sent)
    _m, props, body = ch.basic_get(q, auto_ack=True)
    assert body == b"payload"
    assert props_dict(props) == props_dict(sent)


def test_no_properties_stay_absent(conn, queue):
    q = queue()
    ch = conn.channel()
    ch.basic_publish("", q, b"bare")
    _m, p, _b = ch.basic_get(q, auto_ack=True)
    assert all(v is None for v in props_dict(p).values())


async def test_properties_round_trip_aio_pika(amqp_url, uid):
    user = url_user(amqp_url)
    headers = {
        "float": 1.25,
        "double": 3.141592653589793,
        "neg_float": -0.5,
        "int": 42,
        "big": 2**62,
        "bool": True,
        "str": "text",
        "list": [1, 2.5, "x", [True]],
        "table": {"inner": {"x": 1}},
        "decimal": decimal.Decimal("1.5"),
    }
    ts = datetime.datetime(2023, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.declare_queue(f"test-consume-aio-props-{uid}", auto_delete=True)
        msg = aio_pika.Message(
            b"body", headers=headers, content_type="text/x", content_encoding="utf-8",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT, priority=9, correlation_id="cid",
            reply_to="rq", expiration=86400, message_id="mid", timestamp=ts, type="t",
            user_id=user, app_id="aid")
        await ch.default_exchange.publish(msg, routing_key=q.name)
        got = await q.get(timeout=5, no_ack=True)
        assert got.body == b"body"
        assert got.content_type == "text/x" and got.content_encoding == "utf-8"
        assert got.delivery_mode == aio_pika.DeliveryMode.PERSISTENT and got.priority == 9
        assert got.correlation_id == "cid" and got.reply_to == "rq" and got.message_id == "mid"
        assert got.type == "t" and got.user_id == user and got.app_id == "aid"
        assert got.expiration == 86400
        assert got.timestamp == ts
        # what the client library itself makes of an encode/decode round trip (pamqp sends
        # Python floats as 32-bit 'f'): the broker must not change anything on top of that
        expected = pamqp.decode.field_table(pamqp.encode.field_table(headers))[1]
        await q.delete(if_empty=False)
        assert got.headers == expected


# Field-table encoding by hand: every field type RabbitMQ's table parser knows (3.x).
def _ss(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">B", len(b)) + b


def _ls(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _table(items: list[tuple[str, bytes]]) -> bytes:
    return _ls(b"".join(_ss(k) + v for k, v in items))


ALL_FIELD_VALUES = [
    ("t", b"t\x01"),
    ("b", b"b" + struct.pack(">b", -5)),
    ("B", b"B" + struct.pack(">B", 250)),
    ("s", b"s" + struct.pack(">h", -300)),
    ("u", b"u" + struct.pack(">H", 65000)),
    ("I", b"I" + struct.pack(">i", -70000)),
    ("i", b"i" + struct.pack(">I", 4_000_000_000)),
    ("l", b"l" + struct.pack(">q", -(2**62))),
    ("L", b"L" + struct.pack(">Q", 2**63 + 5)),
    ("f", b"f" + struct.pack(">f", 1.5)),
    ("d", b"d" + struct.pack(">d", 3.141592653589793)),
    ("D", b"D" + struct.pack(">Bi", 2, 12345)),
    ("S", b"S" + _ls("héllo".encode())),
    ("S-binary", b"S" + _ls(b"\xff\xfe\x00not utf8")),
    ("T", b"T" + struct.pack(">Q", 1_700_000_000)),
    ("V", b"V"),
    ("x", b"x" + _ls(b"\x00\xff\x01")),
    ("A", b"A" + _ls(b"I" + struct.pack(">i", 1) + b"S" + _ls(b"two") + b"A" + _ls(b"t\x00"))),
    ("F", b"F" + _table([("inner", b"F" + _table([("deep", b"l" + struct.pack(">q", 2**40))]))])),
    ("long-key-" + "k" * 100, b"S" + _ls(b"v")),
]


def raw_properties(user: str) -> bytes:
    """Every basic property set (flags 0xFFF8, no cluster-id), in wire order."""
    flags = 0
    for bit in range(15, 2, -1):
        flags |= 1 << bit
    return b"".join([
        struct.pack(">H", flags),
        _ss("application/octet-stream"),      # content-type
        _ss("identity"),                      # content-encoding
        _table(ALL_FIELD_VALUES),             # headers
        struct.pack(">B", 2),                 # delivery-mode
        struct.pack(">B", 3),                 # priority
        _ss("corr"),                          # correlation-id
        _ss("reply"),                         # reply-to
        _ss("315360000000"),                  # expiration
        _ss("mid-1"),                         # message-id
        struct.pack(">Q", 1_700_000_123),     # timestamp
        _ss("kind"),                          # type
        _ss(user),                            # user-id
        _ss("app"),                           # app-id
    ])


@pytest.mark.parametrize("via", ["get", "consume"])
def test_properties_are_byte_exact_through_the_broker(raw, queue, amqp_url, via):
    q = queue()
    props = raw_properties(url_user(amqp_url))
    raw.open_channel(1)
    raw.publish(1, "", q, b"exact", props_raw=props)
    if via == "get":
        raw.send(1, commands.Basic.Get(queue=q, no_ack=True))
        raw.expect(1, commands.Basic.GetOk)
    else:
        raw.send(1, commands.Basic.Consume(queue=q, consumer_tag="c", no_ack=True))
        raw.expect(1, commands.Basic.ConsumeOk)
        raw.expect(1, commands.Basic.Deliver)
    got_props, body = raw.read_content(1)
    assert body == b"exact"
    assert got_props == props


def test_headers_byte_exact_to_pika_consumer(raw, queue, conn):
    """A pika consumer decodes the hand-encoded table the way it was written."""
    q = queue()
    raw.open_channel(1)
    props = struct.pack(">H", 1 << 13) + _table([
        ("b", b"b" + struct.pack(">b", -5)),
        ("s", b"s" + struct.pack(">h", -300)),
        ("I", b"I" + struct.pack(">i", -70000)),
        ("l", b"l" + struct.pack(">q", -(2**62))),
        ("t", b"t\x01"),
        ("S", b"S" + _ls(b"str")),
    ])
    raw.publish(1, "", q, b"x", props_raw=props)
    ch = conn.channel()
    assert wait_ready(ch, q, 1) == 1
    _m, p, _b = ch.basic_get(q, auto_ack=True)
    assert p.headers == {"b": -5, "s": -300, "I": -70000, "l": -(2**62), "t": True, "S": "str"}


def test_user_id_matching_login_is_accepted(conn, queue, amqp_url):
    q = queue()
    user = url_user(amqp_url)
    ch = conn.channel()
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id=user))
    _m, p, _b = ch.basic_get(q, auto_ack=True)
    assert p.user_id == user


def test_wrong_user_id_is_rejected(conn, queue, amqp_url):
    q = queue()
    user = url_user(amqp_url)
    ch = conn.channel()
    ch.basic_publish("", q, b"x", pika.BasicProperties(user_id="mallory"))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == \
        f"PRECONDITION_FAILED - user_id property set to 'mallory' but authenticated user was '{user}'"
    assert ready_count(conn.channel(), q) == 0


@pytest.mark.parametrize("expiration", ["0", "86400000", "4294967296", "315360000000"])
def test_valid_expiration_round_trips(conn, queue, expiration):
    q = queue()
    ch = conn.channel()
    ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=expiration))
    ch.basic_publish("", q, b"y")
    if expiration == "0":
        # expires at once unless delivered immediately: gone from an idle queue
        _m, p, b = ch.basic_get(q, auto_ack=True)
        assert b == b"y"
        return
    _m, p, b = ch.basic_get(q, auto_ack=True)
    assert (b, p.expiration) == (b"x", expiration)


@pytest.mark.parametrize("expiration,detail", [
    ("315360000001", "{value_too_large,315360000001}"),
    ("-1", "{value_negative,-1}"),
    ("abc", "no_integer"),
    ("", "no_integer"),
])
def test_invalid_expiration_is_rejected(conn, queue, expiration, detail):
    q = queue()
    ch = conn.channel()
    ch.basic_publish("", q, b"x", pika.BasicProperties(expiration=expiration))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == f"PRECONDITION_FAILED - invalid expiration '{expiration}': {detail}"


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
