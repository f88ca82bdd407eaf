"""Connection-level behaviour: channels (open / close / errors / limits), channel.flow,
update-secret, heartbeats.

Every expectation here was recorded against a real RabbitMQ 3.10 (run with AMQP_REFERENCE_URL set).
Frame-level checks use the raw client in helpers/raw.py; client-level checks use pika/aio-pika.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pika
import pika.exceptions
import pytest
from pamqp import commands as C
from pamqp import heartbeat as pheartbeat

from helpers.raw import PeerClosed
from helpers.pika_client import connect
from helpers.wait import HANG_GUARD
from helpers.connection import raw  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.timeout(30)


# --------------------------------------------------------------------------- channels
def test_many_channels_on_one_connection_pika(amqp_url, uid):
    conn = connect(amqp_url)
    try:
        channels = [conn.channel() for _ in range(100)]
        assert len({ch.channel_number for ch in channels}) == 100
        for i, ch in enumerate(channels):
            ch.queue_declare(f"mc-{uid}-{i}", exclusive=True)
        for i, ch in enumerate(channels):
            ch.basic_publish("", f"mc-{uid}-{i}", f"m{i}".encode())
        for i, ch in enumerate(channels):
            for _ in range(100):
                method, _props, body = ch.basic_get(f"mc-{uid}-{i}", auto_ack=True)
                if method is not None:
                    break
                time.sleep(0.01)
            assert body == f"m{i}".encode()
        assert all(ch.is_open for ch in channels)
    finally:
        conn.close()


async def test_many_channels_concurrently_aio_pika(amqp_url, uid):
    import aio_pika

    conn = await asyncio.wait_for(aio_pika.connect(amqp_url), 10)
    try:

        async def work(i: int) -> bytes:
            ch = await conn.channel()
            q = await ch.declare_queue(f"amc-{uid}-{i}", exclusive=True)
            await ch.default_exchange.publish(aio_pika.Message(f"m{i}".encode()), q.name)
            for _ in range(100):
                msg = await q.get(no_ack=True, fail=False)
                if msg is not None:
                    await ch.close()
                    return msg.body
                await asyncio.sleep(0.01)
            raise AssertionError(f"no message on channel {i}")

        bodies = await asyncio.wait_for(asyncio.gather(*(work(i) for i in range(100))), 20)
        assert bodies == [f"m{i}".encode() for i in range(100)]
    finally:
        await conn.close()


def test_many_channels_pipelined_raw(raw):
    conn = raw()
    conn.send_frames([(C.Channel.Open(), n) for n in range(1, 101)])
    opened = set()
    for _ in range(100):
        ch, obj = conn.recv_method()
        assert isinstance(obj, C.Channel.OpenOk)
        opened.add(ch)
    assert opened == set(range(1, 101))


def test_channel_error_closes_only_that_channel_pika(amqp_url, uid):
    conn = connect(amqp_url)
    other = connect(amqp_url)
    try:
        ch1 = conn.channel()
        ch2 = conn.channel()
        ch_other = other.channel()
        ch2.queue_declare(f"keep-{uid}", exclusive=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch1.queue_declare(f"missing-{uid}", passive=True)
        assert info.value.reply_code == 404
        assert info.value.reply_text == f"NOT_FOUND - no queue 'missing-{uid}' in vhost '/'"
        assert ch1.is_closed
        assert ch2.is_open and conn.is_open
        ch2.basic_publish("", f"keep-{uid}", b"still works")
        for _ in range(100):
            method, _p, body = ch2.basic_get(f"keep-{uid}", auto_ack=True)
            if method:
                break
            time.sleep(0.01)
        assert body == b"still works"
        ch_other.queue_declare("", exclusive=True)
        # a new channel on the same connection works too
        conn.channel().queue_declare("", exclusive=True)
    finally:
        conn.close()
        other.close()


def test_channel_error_raw_other_channel_unaffected(raw, uid):
    conn = raw()
    conn.open_channel(1)
    conn.open_channel(2)
    conn.send_frame(C.Queue.Declare(queue=f"missing-{uid}", passive=True), 1)
    code, text, class_id, method_id = conn.expect_channel_close(1)
    assert (code, class_id, method_id) == (404, 50, 10)
    ok = conn.rpc(C.Queue.Declare(queue="", exclusive=True), 2, C.Queue.DeclareOk)
    assert ok.queue.startswith("amq.gen-")
    # the closed channel number can be reused after close-ok
    conn.open_channel(1)
    conn.rpc(C.Queue.Declare(queue="", exclusive=True), 1, C.Queue.DeclareOk)


def test_frames_after_server_channel_close_are_ignored(raw, uid):
    """Between the server's channel.close and the client's close-ok, the server discards frames."""
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(C.Queue.Declare(queue=f"missing-{uid}", passive=True), 1)
    conn.expect(C.Channel.Close, 1)
    conn.send_frame(C.Queue.Declare(queue=f"missing-{uid}", passive=True), 1)
    conn.publish(1, b"ignored", routing_key="whatever")
    with pytest.raises((socket.timeout, TimeoutError)):
        conn.recv_method(timeout=0.7)
    conn.send_frame(C.Channel.CloseOk(), 1)
    conn.open_channel(1)
    conn.rpc(C.Queue.Declare(queue="", exclusive=True), 1, C.Queue.DeclareOk)


def test_client_channel_close_gets_close_ok_and_can_reopen(raw):
    conn = raw()
    conn.open_channel(5)
    conn.close_channel(5)
    conn.open_channel(5)
    conn.rpc(C.Queue.Declare(queue="", exclusive=True), 5, C.Queue.DeclareOk)


def test_method_after_channel_close_ok_needs_open(raw):
    conn = raw()
    conn.open_channel(1)
    conn.close_channel(1)
    conn.send_frame(C.Queue.Declare(queue="x", passive=True), 1)
    code, text, class_id, method_id = conn.expect_close()
    assert (code, text, class_id, method_id) == (
        504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10
    )


def test_client_connection_close_gets_close_ok(raw):
    conn = raw()
    conn.open_channel(1)
    conn.open_channel(2)
    conn.send_frame(C.Basic.Consume(queue="amq.rabbitmq.reply-to", no_ack=True), 2)
    conn.expect(C.Basic.ConsumeOk, 2)
    conn.send_frame(
        C.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0), 0
    )
    conn.expect(C.Connection.CloseOk, 0)


def test_pika_connection_close_is_clean(amqp_url):
    conn = connect(amqp_url)
    conn.channel()
    conn.close()
    assert conn.is_closed


def test_channel_number_is_not_limited_by_channel_max_value(raw):
    """RabbitMQ enforces channel_max as a *count* of open channels, not as a channel number."""
    conn = raw()
    conn.open_channel(2048)
    conn.open_channel(65535)
    conn.rpc(C.Queue.Declare(queue="", exclusive=True), 65535, C.Queue.DeclareOk)


def test_channel_count_above_negotiated_channel_max(raw):
    conn = raw(channel_max=4)
    for n in range(1, 5):
        conn.open_channel(n)
    conn.send_frame(C.Channel.Open(), 5)
    code, text, class_id, method_id = conn.expect_close()
    assert code == 530
    assert text == (
        "NOT_ALLOWED - number of channels opened (4) has reached the negotiated channel_max (4)"
    )
    assert (class_id, method_id) == (0, 0)


def test_channel_open_twice(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(C.Channel.Open(), 1)
    assert conn.expect_close() == (504, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10)


def test_method_on_never_opened_channel(raw):
    conn = raw()
    conn.send_frame(C.Queue.Declare(queue="x", passive=True), 3)
    assert conn.expect_close() == (504, "CHANNEL_ERROR - expected 'channel.open'", 50, 10)
    assert conn.wait_closed(5)


def test_channel_method_on_channel_zero(raw):
    conn = raw()
    conn.send_frame(C.Queue.Declare(queue="x", passive=True), 0)
    assert conn.expect_close() == (
        504, "CHANNEL_ERROR - unexpected method in connection state running", 50, 10
    )


def test_channel_open_on_channel_zero(raw):
    conn = raw()
    conn.send_frame(C.Channel.Open(), 0)
    assert conn.expect_close() == (
        504, "CHANNEL_ERROR - unexpected method in connection state running", 20, 10
    )


def test_connection_open_twice(raw):
    conn = raw()
    conn.send_frame(C.Connection.Open(virtual_host="/"), 0)
    assert conn.expect_close() == (
        504, "CHANNEL_ERROR - unexpected method in connection state running", 10, 40
    )


def test_connection_method_on_nonzero_channel(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(C.Connection.Open(virtual_host="/"), 1)
    assert conn.expect_close() == (503, "COMMAND_INVALID - unimplemented method", 10, 40)


def test_unsolicited_channel_close_ok(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(C.Channel.CloseOk(), 1)
    assert conn.expect_close() == (503, "COMMAND_INVALID - unimplemented method", 20, 41)


# --------------------------------------------------------------------------- channel.flow, update-secret
def test_channel_flow_active_true(raw):
    conn = raw()
    conn.open_channel(1)
    ok = conn.rpc(C.Channel.Flow(active=True), 1, C.Channel.FlowOk)
    assert ok.active is True


def test_channel_flow_active_false_is_not_implemented(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(C.Channel.Flow(active=False), 1)
    assert conn.expect_close() == (540, "NOT_IMPLEMENTED - active=false", 20, 20)


def test_update_secret(raw):
    conn = raw()
    conn.send_frame(C.Connection.UpdateSecret(new_secret="guest", reason="rotation"), 0)
    conn.expect(C.Connection.UpdateSecretOk, 0)
    conn.open_channel(1)  # connection still usable


# --------------------------------------------------------------------------- heartbeats
def test_heartbeat_timeout_closes_silent_client(raw):
    conn = raw(heartbeat=1, timeout=HANG_GUARD)
    t0 = time.monotonic()
    frames = []
    with pytest.raises(PeerClosed):  # the loop ending without it: never dropped (a hang guard)
        while time.monotonic() - t0 < HANG_GUARD:
            frames.append(conn.recv_frame(HANG_GUARD))
    elapsed = time.monotonic() - t0
    assert elapsed >= 1.5, elapsed  # not dropped before two heartbeat intervals of silence
    assert frames, "server should have sent heartbeats while waiting"
    for ch, obj in frames:
        assert ch == 0 and isinstance(obj, pheartbeat.Heartbeat), obj


def test_client_heartbeats_keep_connection_alive(raw):
    conn = raw(heartbeat=1)
    conn.open_channel(1)
    # alive for 4 s (twice the 2 s a silent client gets), and the server's heartbeats seen:
    # waiting for both, not counting what fits in a fixed time
    started = time.monotonic()
    seen = 0
    while (time.monotonic() - started < 4 or seen < 2) and time.monotonic() - started < HANG_GUARD:
        conn.send_heartbeat()
        try:
            ch, obj = conn.recv_frame(0.4)
            assert isinstance(obj, pheartbeat.Heartbeat) and ch == 0
            seen += 1
        except (socket.timeout, TimeoutError):
            pass
    assert seen >= 2
    conn.rpc(C.Queue.Declare(queue="", exclusive=True), 1, C.Queue.DeclareOk)


def test_heartbeat_zero_disables_heartbeats(raw):
    conn = raw(heartbeat=0)
    with pytest.raises((socket.timeout, TimeoutError)):
        conn.recv_frame(2)


def test_pika_heartbeat_one_second_stays_alive(amqp_url):
    conn = connect(amqp_url, heartbeat=1)
    try:
        ch = conn.channel()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.5)
        assert conn.is_open
        ch.queue_declare("", exclusive=True)
    finally:
        conn.close()
