"""Publisher confirms (confirm.select, basic.ack / basic.nack from the broker), checked against RabbitMQ.

The exact frames (delivery tags, the `multiple` flag, basic.return before basic.ack) are observed
with pika's SelectConnection callbacks, which run in wire order; aiormq / aio-pika / pika's
BlockingConnection show what applications see.
"""
from __future__ import annotations

import asyncio
import time

import aio_pika
import aio_pika.exceptions
import aiormq
import aiormq.exceptions
import pika
import pika.exceptions
import pytest

from helpers.pika_client import conn, queue  # noqa: F401 - pytest fixtures
from helpers.pika_client import message_count
from helpers.wait import HANG_GUARD

pytestmark = pytest.mark.timeout(60)


class SelectRun:
    """Run a scenario on a pika SelectConnection, bounded in time, recording events in wire order."""

    def __init__(self, url: str):
        self.url = url
        self.events: list[tuple] = []
        self.conn: pika.SelectConnection | None = None
        self.error: BaseException | None = None

    def record_confirm(self, frame) -> None:
        m = frame.method
        self.events.append((type(m).__name__, m.delivery_tag, m.multiple))

    def record_return(self, _ch, method, props, body) -> None:
        self.events.append(("Return", method.reply_code, method.reply_text, method.exchange,
                            method.routing_key, body))

    def finish(self) -> None:
        if self.conn.is_open:
            self.conn.close()
        elif self.conn.is_closed:
            self.conn.ioloop.stop()

    def run(self, on_channel, channels: int = 1, timeout: float = 5.0) -> list[tuple]:
        opened = []

        def on_channel_open(ch):
            opened.append(ch)
            if len(opened) == channels:
                self._start(on_channel, opened)

        def on_open(c):
            for _ in range(channels):
                c.channel(on_open_callback=on_channel_open)

        def on_open_error(c, err):
            self.error = err
            c.ioloop.stop()

        self.conn = pika.SelectConnection(
            pika.URLParameters(self.url), on_open_callback=on_open,
            on_open_error_callback=on_open_error, on_close_callback=lambda c, r: c.ioloop.stop())
        self.conn.ioloop.call_later(timeout, self.finish)
        self.conn.ioloop.start()
        if self.error:
            raise self.error
        return self.events

    def _start(self, on_channel, opened):
        try:
            on_channel(*opened)
        except BaseException as exc:  # surface assertion errors from callbacks
            self.error = exc
            self.finish()


def expand_confirms(events, kinds=("Ack", "Nack")) -> dict[int, str]:
    """Expand basic.ack/nack frames (honouring `multiple`) into {tag: 'Ack'|'Nack'}; check sanity."""
    settled: dict[int, str] = {}
    for ev in events:
        if ev[0] not in kinds:
            continue
        kind, tag, multiple = ev
        assert tag >= 1
        assert tag not in settled, f"tag {tag} confirmed twice"
        if multiple:
            covered = [t for t in range(1, tag + 1) if t not in settled]
            assert len(covered) >= 1
        else:
            covered = [tag]
        for t in covered:
            settled[t] = kind
    return settled


# --------------------------------------------------------------------------------------------
# delivery tags, multiple flag
# --------------------------------------------------------------------------------------------

def test_first_confirm_has_delivery_tag_one(amqp_url, queue):
    q = queue()
    run = SelectRun(amqp_url)

    def on_channel(ch):
        def on_ack(frame):
            run.record_confirm(frame)
            run.finish()

        ch.confirm_delivery(ack_nack_callback=on_ack,
                            callback=lambda _ok: ch.basic_publish("", q, b"one"))

    assert run.run(on_channel) == [("Ack", 1, False)]


def test_all_published_messages_confirmed_exactly_once(amqp_url, queue):
    q = queue()
    n = 500
    run = SelectRun(amqp_url)
    settled: set[int] = set()

    def on_channel(ch):
        def on_confirm(frame):
            run.record_confirm(frame)
            m = frame.method
            if m.multiple:
                settled.update(range(1, m.delivery_tag + 1))
            else:
                settled.add(m.delivery_tag)
            if len(settled) >= n:
                run.finish()

        def publish_all(_ok):
            for i in range(n):
                ch.basic_publish("", q, str(i).encode())

        ch.confirm_delivery(ack_nack_callback=on_confirm, callback=publish_all)

    events = run.run(on_channel, timeout=10)
    result = expand_confirms(events)
    assert result == {t: "Ack" for t in range(1, n + 1)}
    assert message_count(amqp_url, q) == n


def test_confirm_sequence_numbers_are_per_channel(amqp_url, queue):
    q = queue()
    run = SelectRun(amqp_url)
    per_channel: dict[int, list] = {}

    def on_channels(ch1, ch2):
        def make_cb(ch):
            def cb(frame):
                per_channel.setdefault(ch.channel_number, []).append(
                    (frame.method.delivery_tag, frame.method.multiple))
                if sum(len(v) for v in per_channel.values()) == 2:
                    run.finish()
            return cb

        for ch in (ch1, ch2):
            ch.confirm_delivery(ack_nack_callback=make_cb(ch),
                                callback=lambda _ok, ch=ch: ch.basic_publish("", q, b"x"))

    run.run(on_channels, channels=2)
    assert sorted(per_channel.values()) == [[(1, False)], [(1, False)]]


def test_unroutable_messages_use_sequence_numbers_too(amqp_url, queue, uid):
    q = queue()
    run = SelectRun(amqp_url)

    def on_channel(ch):
        def on_confirm(frame):
            run.record_confirm(frame)
            if frame.method.delivery_tag == 3:
                run.finish()

        def go(_ok):
            ch.basic_publish("", q, b"routed-1")
            ch.basic_publish("", f"nowhere-{uid}", b"unroutable-2")
            ch.basic_publish("", q, b"routed-3")

        ch.confirm_delivery(ack_nack_callback=on_confirm, callback=go)

    events = run.run(on_channel)
    assert expand_confirms(events) == {1: "Ack", 2: "Ack", 3: "Ack"}


def test_multiple_flag_used_when_acks_are_coalesced(amqp_url, queue):
    """RabbitMQ coalesces confirms: a burst of publishes gets fewer ack frames than messages."""
    q = queue()
    n = 2000
    run = SelectRun(amqp_url)

    def on_channel(ch):
        def on_confirm(frame):
            run.record_confirm(frame)
            if frame.method.delivery_tag == n:
                run.finish()

        def publish_all(_ok):
            for i in range(n):
                ch.basic_publish("", q, b"m")

        ch.confirm_delivery(ack_nack_callback=on_confirm, callback=publish_all)

    events = run.run(on_channel, timeout=15)
    assert expand_confirms(events) == {t: "Ack" for t in range(1, n + 1)}
    assert any(multiple for _, _, multiple in events)
    assert len(events) < n


# --------------------------------------------------------------------------------------------
# unroutable messages: basic.return before basic.ack
# --------------------------------------------------------------------------------------------

def test_mandatory_unroutable_return_arrives_before_ack(amqp_url, uid):
    run = SelectRun(amqp_url)

    def on_channel(ch):
        ch.add_on_return_callback(run.record_return)

        def on_confirm(frame):
            run.record_confirm(frame)
            run.finish()

        ch.confirm_delivery(ack_nack_callback=on_confirm, callback=lambda _ok: ch.basic_publish(
            "", f"nowhere-{uid}", b"lost", mandatory=True))

    events = run.run(on_channel)
    assert events == [
        ("Return", 312, "NO_ROUTE", "", f"nowhere-{uid}", b"lost"),
        ("Ack", 1, False),
    ]


def test_mandatory_unroutable_via_exchange_without_bindings(amqp_url, queue, uid):
    q = queue()
    run = SelectRun(amqp_url)

    def on_channel(ch):
        ch.add_on_return_callback(run.record_return)

        def on_confirm(frame):
            run.record_confirm(frame)
            if frame.method.delivery_tag >= 3:
                run.finish()

        def go(_ok):
            ch.basic_publish("", q, b"routed", mandatory=True)
            ch.basic_publish("amq.direct", f"nobody-{uid}", b"returned", mandatory=True)
            ch.basic_publish("", q, b"routed-too", mandatory=True)

        ch.confirm_delivery(ack_nack_callback=on_confirm, callback=go)

    events = run.run(on_channel)
    returns = [e for e in events if e[0] == "Return"]
    assert returns == [("Return", 312, "NO_ROUTE", "amq.direct", f"nobody-{uid}", b"returned")]
    assert expand_confirms(events) == {1: "Ack", 2: "Ack", 3: "Ack"}
    # the return precedes whichever ack frame covers tag 2
    ret_idx = events.index(returns[0])
    ack_idx = next(i for i, e in enumerate(events)
                   if e[0] == "Ack" and (e[1] == 2 or (e[2] and e[1] >= 2)))
    assert ret_idx < ack_idx


def test_non_mandatory_unroutable_is_acked_without_return(amqp_url, uid):
    run = SelectRun(amqp_url)

    def on_channel(ch):
        ch.add_on_return_callback(run.record_return)

        def on_confirm(frame):
            run.record_confirm(frame)
            run.conn.ioloop.call_later(0.2, run.finish)  # give a stray return time to show up

        ch.confirm_delivery(ack_nack_callback=on_confirm, callback=lambda _ok: ch.basic_publish(
            "", f"nowhere-{uid}", b"dropped"))

    assert run.run(on_channel) == [("Ack", 1, False)]


def test_blocking_pika_confirm_and_unroutable_error(conn, queue, uid):
    q = queue()
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("", q, b"ok")  # raises on nack
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("", f"nowhere-{uid}", b"x", mandatory=True)
    ch.basic_publish("", f"nowhere-{uid}", b"x")  # not mandatory: simply acked
    assert ch.queue_declare(q, passive=True).method.message_count == 1


# --------------------------------------------------------------------------------------------
# nacks
# --------------------------------------------------------------------------------------------

def test_reject_publish_overflow_nacks(amqp_url, queue):
    q = queue(arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    run = SelectRun(amqp_url)

    def on_channel(ch):
        settled: set[int] = set()

        def on_confirm(frame):
            run.record_confirm(frame)
            m = frame.method
            settled.update(range(1, m.delivery_tag + 1) if m.multiple else [m.delivery_tag])
            if len(settled) == 3:
                run.finish()

        def go(_ok):
            for i in range(3):
                ch.basic_publish("", q, str(i).encode())

        ch.confirm_delivery(ack_nack_callback=on_confirm, callback=go)

    events = run.run(on_channel)
    assert expand_confirms(events) == {1: "Ack", 2: "Nack", 3: "Nack"}
    assert message_count(amqp_url, q) == 1


def test_blocking_pika_nack_raises(conn, queue):
    q = queue(arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    ch = conn.channel()
    ch.confirm_delivery()
    ch.basic_publish("", q, b"fits")
    with pytest.raises(pika.exceptions.NackError):
        ch.basic_publish("", q, b"overflow")


# --------------------------------------------------------------------------------------------
# mode switching
# --------------------------------------------------------------------------------------------

def test_confirm_select_on_tx_channel_fails(conn):
    ch = conn.channel()
    ch.tx_select()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.confirm_delivery()
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - cannot switch from tx to confirm mode"
    assert conn.is_open


def test_tx_select_on_confirm_channel_fails(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.tx_select()
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - cannot switch from confirm to tx mode"
    assert conn.is_open


async def test_confirm_select_twice_is_fine(amqp_url):
    conn = await aiormq.connect(amqp_url)
    try:
        ch = await conn.channel(publisher_confirms=False)
        ok1 = await ch.confirm_delivery()
        ok2 = await ch.confirm_delivery()
        assert isinstance(ok1, aiormq.spec.Confirm.SelectOk)
        assert isinstance(ok2, aiormq.spec.Confirm.SelectOk)
    finally:
        await conn.close()


async def test_confirm_select_nowait(amqp_url, uid):
    conn = await aiormq.connect(amqp_url)
    try:
        ch = await conn.channel(publisher_confirms=False)
        await ch.confirm_delivery(nowait=True)
        q = (await ch.queue_declare(f"test-confirms-nowait-{uid}", auto_delete=True)).queue
        # the channel is still fine and in confirm mode: tx.select must now fail
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as ei:
            await ch.tx_select()
        assert "cannot switch from confirm to tx mode" in str(ei.value)
        ch2 = await conn.channel()
        await ch2.queue_delete(q)
    finally:
        await conn.close()


# --------------------------------------------------------------------------------------------
# through the client libraries
# --------------------------------------------------------------------------------------------

async def test_aiormq_confirmations(amqp_url, uid):
    conn = await aiormq.connect(amqp_url)
    try:
        ch = await conn.channel()  # publisher confirms on by default
        q = (await ch.queue_declare(f"test-confirms-aiormq-{uid}", auto_delete=False)).queue
        results = await asyncio.gather(*[
            ch.basic_publish(str(i).encode(), routing_key=q) for i in range(50)])
        assert all(isinstance(r, aiormq.spec.Basic.Ack) for r in results)
        # each future resolves with the frame that confirmed it (possibly a multiple ack)
        for i, r in enumerate(results, start=1):
            assert r.delivery_tag == i or (r.multiple and r.delivery_tag >= i)
        declared = await ch.queue_declare(q, passive=True)
        assert declared.message_count == 50
        await ch.queue_delete(q)
    finally:
        await conn.close()


async def test_aiormq_mandatory_unroutable_raises(amqp_url, uid):
    conn = await aiormq.connect(amqp_url)
    try:
        ch = await conn.channel(on_return_raises=True)
        with pytest.raises(aiormq.exceptions.PublishError):
            await ch.basic_publish(b"x", routing_key=f"nowhere-{uid}", mandatory=True)
        ok = await ch.basic_publish(b"x", routing_key=f"nowhere-{uid}")
        assert isinstance(ok, aiormq.spec.Basic.Ack)
    finally:
        await conn.close()


async def test_aio_pika_publisher_confirms(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=True, on_return_raises=True)
        q = await ch.declare_queue(f"test-confirms-aio-{uid}", auto_delete=False)
        ok = await ch.default_exchange.publish(aio_pika.Message(b"hi"), routing_key=q.name)
        assert isinstance(ok, aiormq.spec.Basic.Ack)
        with pytest.raises(aio_pika.exceptions.PublishError):
            await ch.default_exchange.publish(aio_pika.Message(b"lost"), routing_key=f"nowhere-{uid}",
                                              mandatory=True)
        await q.delete(if_empty=False)


def test_persistent_message_to_durable_queue_is_confirmed(conn, queue):
    q = queue(durable=True)
    ch = conn.channel()
    ch.confirm_delivery()
    for i in range(20):
        ch.basic_publish("", q, str(i).encode(), pika.BasicProperties(delivery_mode=2))
    assert ch.queue_declare(q, passive=True).method.message_count == 20


def test_publish_to_missing_exchange_in_confirm_mode_closes_channel(conn, uid):
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.basic_publish(f"missing-{uid}", "rk", b"x")
    assert ei.value.reply_code == 404
    assert ei.value.reply_text == f"NOT_FOUND - no exchange 'missing-{uid}' in vhost '/'"
    assert conn.is_open


def test_confirms_and_consumer_on_same_channel(conn, queue):
    """Deliveries and confirms share the channel; their tag spaces are independent."""
    q = queue()
    ch = conn.channel()
    ch.confirm_delivery()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag))
    for _ in range(3):
        ch.basic_publish("", q, b"x")
    deadline = time.monotonic() + HANG_GUARD
    while len(got) < 3 and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.02)
    assert got == [1, 2, 3]
    ch.basic_ack(3, multiple=True)
