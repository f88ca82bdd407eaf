"""Connection-level behaviour: handshake, authentication, vhosts, channels, heartbeats, framing.

Every expectation here was recorded against a real RabbitMQ 3.10 (run with AMQP_REFERENCE_URL set).
Frame-level checks use the raw client in amqp_raw.py; client-level checks use pika/kombu/aio-pika.
"""
from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import pika
import pika.exceptions
import pytest
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat

from amqp_raw import AMQP_091_HEADER, DEFAULT_CAPABILITIES, PeerClosed, RawConnection, parse_url

pytestmark = pytest.mark.timeout(30)

CAPABILITIES = (
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
)


@pytest.fixture
def raw(amqp_url):
    """Factory for RawConnection objects, all closed at teardown.

    raw() -> connected, opened (connection.open-ok received); raw(handshake=False) -> bare socket.
    Other keyword arguments go to RawConnection.handshake.
    """
    made: list[RawConnection] = []

    def make(handshake: bool = True, timeout: float = 5.0, **kw) -> RawConnection:
        if handshake:
            conn = RawConnection.connect(amqp_url, timeout=timeout, **kw)
        else:
            conn = RawConnection.from_url(amqp_url, timeout=timeout)
        made.append(conn)
        return conn

    yield make
    for conn in made:
        conn.close()


def _pika(amqp_url, **kw) -> pika.BlockingConnection:
    params = pika.URLParameters(amqp_url)
    params.socket_timeout = 5
    params.blocked_connection_timeout = 10
    for k, v in kw.items():
        setattr(params, k, v)
    return pika.BlockingConnection(params)


def _url_with(amqp_url, user=None, password=None, vhost=None) -> str:
    p = parse_url(amqp_url)
    from urllib.parse import quote

    return "amqp://{}:{}@{}:{}/{}".format(
        quote(user or p["user"], safe=""),
        quote(password or p["password"], safe=""),
        p["host"],
        p["port"],
        quote(vhost if vhost is not None else p["vhost"], safe=""),
    )


# --------------------------------------------------------------------------- protocol header
@pytest.mark.parametrize(
    "header_bytes",
    [
        b"AMQP\x00\x00\x09\x00",  # 0-9-0 with the 0-9-1 layout
        b"AMQP\x00\x00\x09\x02",
        b"AMQP\x00\x00\x08\x00",
        b"AMQP\x00\x01\x00\x00",  # AMQP 1.0 style
        b"HTTP/1.1 GET /\r\n\r\n",  # garbage
    ],
    ids=["0-9-0", "0-9-2", "0-8-0-new-layout", "1-0-0", "http"],
)
def test_wrong_protocol_header_gets_091_header_and_close(raw, header_bytes):
    conn = raw(handshake=False)
    conn.send_bytes(header_bytes)
    assert conn.recv_exact(8) == AMQP_091_HEADER
    assert conn.wait_closed(5), "server must close the socket after sending its protocol header"


def test_legacy_0_9_header_is_accepted_as_0_9_1(raw):
    """RabbitMQ treats the old 0-9 header `AMQP 1 1 0 9` as 0-9-1 (rabbit_reader:handshake/1)."""
    conn = raw(handshake=False)
    conn.send_bytes(b"AMQP\x01\x01\x00\x09")
    ch, start = conn.recv_frame()
    assert ch == 0 and isinstance(start, C.Connection.Start)
    assert (start.version_major, start.version_minor) == (0, 9)


def test_correct_header_gets_connection_start(raw):
    conn = raw(handshake=False)
    conn.send_bytes(AMQP_091_HEADER)
    ch, start = conn.recv_frame()
    assert ch == 0
    assert isinstance(start, C.Connection.Start)


# --------------------------------------------------------------------------- start / tune
def test_connection_start_contents(raw):
    conn = raw()
    start = conn.start
    assert (start.version_major, start.version_minor) == (0, 9)
    assert set(start.mechanisms.split()) >= {"PLAIN", "AMQPLAIN"}
    assert start.mechanisms.split()[:2] == ["PLAIN", "AMQPLAIN"]
    assert start.locales.split() == ["en_US"]
    props = start.server_properties
    for key in ("product", "version", "platform", "copyright", "information", "capabilities"):
        assert key in props, key
    for key in ("product", "version", "platform", "copyright", "information"):
        assert isinstance(props[key], str) and props[key], key
    caps = props["capabilities"]
    assert isinstance(caps, dict)
    for cap in CAPABILITIES:
        assert caps.get(cap) is True, cap


def test_connection_tune_values(raw):
    conn = raw()
    assert conn.tune.channel_max == 2047
    assert conn.tune.frame_max == 131072
    assert conn.tune.heartbeat == 60


def test_pika_sees_server_properties(amqp_url):
    conn = _pika(amqp_url)
    try:
        props = conn._impl.server_properties  # decoded by pika from connection.start
        assert props["capabilities"]["publisher_confirms"] is True
        assert conn._impl.params.channel_max == 2047
        assert conn._impl.params.frame_max == 131072
    finally:
        conn.close()


def test_handshake_sent_byte_by_byte(raw):
    conn = raw(handshake=False)
    for b in AMQP_091_HEADER:
        conn.send_bytes(bytes([b]))
    conn.expect(C.Connection.Start, 0)
    from pamqp import frame as pframe

    data = pframe.marshal(
        C.Connection.StartOk(
            client_properties={"capabilities": DEFAULT_CAPABILITIES},
            mechanism="PLAIN",
            response="\x00guest\x00guest",
        ),
        0,
    )
    for i in range(len(data)):
        conn.send_bytes(data[i : i + 1])
    tune = conn.expect(C.Connection.Tune, 0)
    assert tune.frame_max == 131072


# --------------------------------------------------------------------------- authentication
def test_pika_wrong_password_is_auth_error(amqp_url):
    with pytest.raises(
        (pika.exceptions.ProbableAuthenticationError, pika.exceptions.AuthenticationError)
    ) as info:
        _pika(_url_with(amqp_url, password="definitely-wrong"))
    assert "ACCESS_REFUSED" in str(info.value)


def test_raw_wrong_password_with_capability_gets_403_close(raw):
    conn = raw(handshake=False)
    conn.send_protocol_header()
    conn.expect(C.Connection.Start, 0)
    conn.send_frame(
        C.Connection.StartOk(
            client_properties={"capabilities": {"authentication_failure_close": True}},
            mechanism="PLAIN",
            response="\x00guest\x00wrong",
        ),
        0,
    )
    code, text, class_id, method_id = conn.expect_close()
    assert code == 403
    assert text == (
        "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. "
        "For details see the broker logfile."
    )
    assert (class_id, method_id) == (0, 0)
    assert conn.wait_closed(8)


def test_raw_wrong_password_without_capability_closes_silently(raw):
    """Without authentication_failure_close RabbitMQ just drops the socket (after ~3 s)."""
    conn = raw(handshake=False, timeout=10)
    conn.send_protocol_header()
    conn.expect(C.Connection.Start, 0)
    conn.send_frame(
        C.Connection.StartOk(
            client_properties={"capabilities": {}}, mechanism="PLAIN", response="\x00guest\x00bad"
        ),
        0,
    )
    frames = []
    with pytest.raises(PeerClosed):
        while True:
            frames.append(conn.recv_frame(10)[1])
    assert frames == [], f"no frame expected before the close, got {frames}"


def test_unknown_mechanism_closes_without_tune(raw):
    conn = raw(handshake=False, timeout=10)
    conn.send_protocol_header()
    conn.expect(C.Connection.Start, 0)
    conn.send_frame(
        C.Connection.StartOk(
            client_properties={"capabilities": DEFAULT_CAPABILITIES},
            mechanism="NOPE-MECH",
            response="x",
        ),
        0,
    )
    frames = []
    with pytest.raises(PeerClosed):
        while True:
            frames.append(conn.recv_frame(10)[1])
    assert not any(isinstance(f, C.Connection.Tune) for f in frames)


def test_amqplain_login_raw(raw):
    conn = raw(mechanism="AMQPLAIN")
    conn.open_channel(1)
    ok = conn.rpc(C.Queue.Declare(queue="", exclusive=True), 1, C.Queue.DeclareOk)
    assert ok.queue.startswith("amq.gen-")
    conn.close_connection()


def test_amqplain_wrong_password_gets_403_close(raw):
    conn = raw(handshake=False)
    conn.send_protocol_header()
    conn.expect(C.Connection.Start, 0)
    from amqp_raw import amqplain_response

    conn.send_frame(
        C.Connection.StartOk(
            client_properties={"capabilities": DEFAULT_CAPABILITIES},
            mechanism="AMQPLAIN",
            response=amqplain_response("guest", "wrong"),
        ),
        0,
    )
    code, text, _, _ = conn.expect_close()
    assert code == 403
    assert text == (
        "ACCESS_REFUSED - Login was refused using authentication mechanism AMQPLAIN. "
        "For details see the broker logfile."
    )


@pytest.mark.parametrize("login_method", [None, "AMQPLAIN", "PLAIN"])
def test_kombu_pyamqp_login(amqp_url, uid, login_method):
    """kombu's amqp:// transport is py-amqp, which prefers AMQPLAIN when the server offers it."""
    import kombu

    kw = {} if login_method is None else {"login_method": login_method}
    with kombu.Connection(amqp_url, connect_timeout=5, **kw) as conn:
        conn.connect()
        assert b"AMQPLAIN" in conn.connection.mechanisms
        qname = f"kombu-login-{uid}"
        with conn.channel() as ch:
            ch.queue_declare(queue=qname, auto_delete=False)
            try:
                ch.basic_publish(ch.prepare_message(b"hi"), exchange="", routing_key=qname)
                msg = None
                for _ in range(50):
                    msg = ch.basic_get(qname, no_ack=True)
                    if msg is not None:
                        break
                    time.sleep(0.02)
                assert msg is not None and msg.body == b"hi"
            finally:
                ch.queue_delete(qname)


# --------------------------------------------------------------------------- vhosts
def test_unknown_vhost_raw(raw, uid):
    conn = raw(open=False)
    vhost = f"nope-{uid}"
    conn.send_frame(C.Connection.Open(virtual_host=vhost), 0)
    code, text, class_id, method_id = conn.expect_close()
    assert code == 530
    assert text == f"NOT_ALLOWED - vhost {vhost} not found"
    assert (class_id, method_id) == (10, 40)


def test_unknown_vhost_pika(amqp_url):
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as info:
        _pika(_url_with(amqp_url, vhost="nope"))
    assert "NOT_ALLOWED - vhost nope not found" in str(info.value)
    assert "530" in str(info.value)


# --------------------------------------------------------------------------- tune-ok negotiation
def test_tune_ok_above_server_limits_closes_silently(raw):
    """channel_max/frame_max above the server's proposal (or frame_max < 4096) is refused: RabbitMQ
    closes the socket (after its ~3 s silent-close delay) without a connection.close."""
    bad = [
        {"channel_max": 3000},
        {"channel_max": 0},  # 0 = unlimited, more than the server's 2047
        {"frame_max": 200000},
        {"frame_max": 0},
        {"frame_max": 1000},  # below the 4096 minimum
    ]
    conns = []
    for kw in bad:
        conn = raw(open=False, timeout=10, **kw)
        conn.send_frame(C.Connection.Open(virtual_host="/"), 0)
        conns.append(conn)
    for kw, conn in zip(bad, conns):
        frames = []
        with pytest.raises(PeerClosed):
            while True:
                frames.append(conn.recv_frame(10)[1])
        assert not any(isinstance(f, C.Connection.OpenOk) for f in frames), kw


def test_smaller_frame_max_is_honoured_for_deliveries(raw, uid):
    conn = raw(frame_max=4096)
    conn.open_channel(1)
    q = f"fm-{uid}"
    conn.rpc(C.Queue.Declare(queue=q, exclusive=True), 1, C.Queue.DeclareOk)
    payload = bytes(range(256)) * 40  # 10240 bytes
    conn.publish(1, payload, routing_key=q)
    conn.send_frame(C.Basic.Get(queue=q, no_ack=True), 1)
    conn.expect(C.Basic.GetOk, 1)
    ch, hdr = conn.recv_frame()
    assert isinstance(hdr, pheader.ContentHeader) and hdr.body_size == len(payload)
    got = b""
    sizes = []
    while len(got) < len(payload):
        ch, part = conn.recv_frame()
        assert isinstance(part, pbody.ContentBody)
        sizes.append(len(part.value))
        got += part.value
    assert got == payload
    assert sizes == [4088, 4088, 2064]  # frame_max - 8 bytes of frame overhead


def test_empty_body_has_no_body_frame(raw, uid):
    conn = raw()
    conn.open_channel(1)
    q = f"empty-{uid}"
    conn.rpc(C.Queue.Declare(queue=q, exclusive=True), 1, C.Queue.DeclareOk)
    conn.publish(1, b"", routing_key=q)
    conn.send_frame(C.Basic.Get(queue=q, no_ack=True), 1)
    conn.expect(C.Basic.GetOk, 1)
    ch, hdr = conn.recv_frame()
    assert isinstance(hdr, pheader.ContentHeader) and hdr.body_size == 0
    # the next frame must be the reply to our next method, not an empty body frame
    conn.send_frame(C.Basic.Get(queue=q, no_ack=True), 1)
    ch, nxt = conn.recv_method()
    assert isinstance(nxt, C.Basic.GetEmpty)


# --------------------------------------------------------------------------- channels
def test_many_channels_on_one_connection_pika(amqp_url, uid):
    conn = _pika(amqp_url)
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
    conn = _pika(amqp_url)
    other = _pika(amqp_url)
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
    conn = _pika(amqp_url)
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
    conn = raw(heartbeat=1, timeout=12)
    t0 = time.monotonic()
    frames = []
    with pytest.raises(PeerClosed):
        while True:
            frames.append(conn.recv_frame(12))
    elapsed = time.monotonic() - t0
    assert 1.5 <= elapsed <= 10, elapsed
    assert frames, "server should have sent heartbeats while waiting"
    for ch, obj in frames:
        assert ch == 0 and isinstance(obj, pheartbeat.Heartbeat), obj


def test_client_heartbeats_keep_connection_alive(raw):
    conn = raw(heartbeat=1)
    conn.open_channel(1)
    deadline = time.monotonic() + 4
    seen = 0
    while time.monotonic() < deadline:
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
    conn = _pika(amqp_url, heartbeat=1)
    try:
        ch = conn.channel()
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            conn.process_data_events(time_limit=0.5)
        assert conn.is_open
        ch.queue_declare("", exclusive=True)
    finally:
        conn.close()


# --------------------------------------------------------------------------- framing errors
def test_frame_larger_than_frame_max(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_bytes(struct.pack(">BHI", 3, 1, 200000) + b"x" * 200000 + b"\xce")
    assert conn.expect_close() == (
        501,
        "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,200000,131064}",
        0,
        0,
    )


def test_frame_larger_than_negotiated_frame_max(raw):
    conn = raw(frame_max=4096)
    conn.open_channel(1)
    conn.send_bytes(struct.pack(">BHI", 3, 1, 4097) + b"x" * 4097 + b"\xce")
    assert conn.expect_close() == (
        501,
        "FRAME_ERROR - type 3, all octets = <<>>: {frame_too_large,4097,4088}",
        0,
        0,
    )


def test_bad_frame_end_byte(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_bytes(struct.pack(">BHI", 1, 1, 4) + b"\x00\x32\x00\x0a" + b"\x00")
    assert conn.expect_close() == (
        501,
        "FRAME_ERROR - type 1, all octets = <<0,50,0,10>>: {invalid_frame_end_marker,0}",
        0,
        0,
    )


def test_unknown_frame_type(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_bytes(struct.pack(">BHI", 9, 1, 1) + b"x" + b"\xce")
    assert conn.expect_close() == (
        501,
        'FRAME_ERROR - type 9, all octets = <<"x">>: unknown_frame',
        0,
        0,
    )


def test_truncated_method_frame(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_bytes(struct.pack(">BHI", 1, 1, 2) + b"\x00\x32" + b"\xce")
    assert conn.expect_close() == (
        501,
        "FRAME_ERROR - type 1, all octets = <<0,50>>: unknown_frame",
        0,
        0,
    )


def test_unknown_method_closes_connection(raw):
    """RabbitMQ drops the connection on an unknown class/method id (no usable reply)."""
    conn = raw()
    conn.open_channel(1)
    conn.send_bytes(struct.pack(">BHI", 1, 1, 4) + b"\x00\x32\x00\x63" + b"\xce")
    frames = []
    with pytest.raises(PeerClosed):
        while True:
            _ch, obj = conn.recv_frame(5)
            frames.append(obj)
            if isinstance(obj, C.Connection.Close):
                conn.send_frame(C.Connection.CloseOk(), 0)
    assert all(isinstance(f, (C.Connection.Close, pheartbeat.Heartbeat)) for f in frames)


def test_heartbeat_on_nonzero_channel(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_bytes(struct.pack(">BHI", 8, 1, 0) + b"\xce")
    assert conn.expect_close() == (505, "UNEXPECTED_FRAME - type 8, all octets = <<>>", 0, 0)


def test_content_header_without_publish(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(pheader.ContentHeader(0, 5, C.Basic.Properties()), 1)
    assert conn.expect_close() == (
        505,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
        0,
        0,
    )


def test_content_body_without_publish(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(pbody.ContentBody(b"abc"), 1)
    assert conn.expect_close() == (
        505,
        "UNEXPECTED_FRAME - expected method frame, got non method frame instead",
        0,
        0,
    )


def test_method_instead_of_content_header(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(C.Basic.Publish(exchange="", routing_key="x"), 1)
    conn.send_frame(C.Basic.Publish(exchange="", routing_key="x"), 1)
    assert conn.expect_close() == (
        505,
        "UNEXPECTED_FRAME - expected content header for class 60, "
        "got non content header frame instead",
        60,
        40,
    )


def test_method_instead_of_content_body(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(C.Basic.Publish(exchange="", routing_key="x"), 1)
    conn.send_frame(pheader.ContentHeader(0, 2, C.Basic.Properties()), 1)
    conn.send_frame(pbody.ContentBody(b"a"), 1)  # one byte of the two announced
    conn.send_frame(C.Basic.Qos(prefetch_count=1), 1)
    assert conn.expect_close() == (
        505,
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead",
        60,
        40,
    )


def test_content_header_instead_of_content_body(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(C.Basic.Publish(exchange="", routing_key="x"), 1)
    conn.send_frame(pheader.ContentHeader(0, 2, C.Basic.Properties()), 1)
    conn.send_frame(pheader.ContentHeader(0, 2, C.Basic.Properties()), 1)
    assert conn.expect_close() == (
        505,
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead",
        60,
        40,
    )


def test_content_body_larger_than_announced(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(C.Basic.Publish(exchange="", routing_key="x"), 1)
    conn.send_frame(pheader.ContentHeader(0, 2, C.Basic.Properties()), 1)
    conn.send_frame(pbody.ContentBody(b"abc"), 1)
    # RabbitMQ keeps waiting for body frames (its remaining size went negative) and fails on
    # the next other frame; we fail at once, with the same answer
    conn.send_frame(C.Basic.Qos(prefetch_count=1), 1)
    assert conn.expect_close() == (
        505,
        "UNEXPECTED_FRAME - expected content body, got non content body frame instead",
        60,
        40,
    )


def test_content_body_instead_of_content_header(raw):
    conn = raw()
    conn.open_channel(1)
    conn.send_frame(C.Basic.Publish(exchange="", routing_key="x"), 1)
    conn.send_frame(pbody.ContentBody(b"abc"), 1)
    assert conn.expect_close() == (
        505,
        "UNEXPECTED_FRAME - expected content header for class 60, "
        "got non content header frame instead",
        60,
        40,
    )


@pytest.mark.parametrize("data, expected", [
    (struct.pack(">BHI", 3, 5, 1) + b"x" + b"\xce",
     (505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead", 0, 0)),
    (struct.pack(">BHI", 1, 5, 2) + b"\x00\x14" + b"\xce",
     (501, "FRAME_ERROR - type 1, all octets = <<0,20>>: unknown_frame", 0, 0)),
    (struct.pack(">BHI", 8, 5, 2) + b"ab" + b"\xce",
     (501, 'FRAME_ERROR - type 8, all octets = <<"ab">>: unknown_frame', 0, 0)),
    (struct.pack(">BHI", 1, 5, 7) + b"\x00\x14\x00\x0a\x00zz" + b"\xce",
     (501, "FRAME_ERROR - cannot decode <<0,122,122>>", 20, 10)),
    (struct.pack(">BHI", 1, 5, 6) + b"\x00\x14\x00\x0a\x01\xff" + b"\xce",
     (501, "FRAME_ERROR - Malformed UTF-8 in shortstr", 0, 0)),
], ids=["body", "short method", "heartbeat with payload", "channel.open trailing bytes",
        "channel.open not utf-8"])
def test_malformed_frames_on_an_unopened_channel(raw, data, expected):
    conn = raw()
    conn.send_bytes(data)
    assert conn.expect_close() == expected


def test_content_frame_on_channel_zero(raw):
    conn = raw()
    conn.send_bytes(struct.pack(">BHI", 2, 0, 12) + b"\x00" * 12 + b"\xce")
    assert conn.expect_close() == (
        505, "UNEXPECTED_FRAME - type 2, all octets = <<0,0,0,0,0,0,0,0,0,0,0,0>>", 0, 0)


def test_connection_close_with_reply_text_not_utf8(raw):
    conn = raw()
    conn.send_bytes(struct.pack(">BHI", 1, 0, 12) + b"\x00\x0a\x00\x32\x00\xc8\x01\xff\x00\x00\x00\x00"
                    + b"\xce")
    assert conn.expect_close() == (501, "FRAME_ERROR - Malformed UTF-8 in shortstr", 10, 50)


def test_frame_on_a_channel_before_connection_open(raw):
    conn = raw(open=False)
    conn.send_bytes(struct.pack(">BHI", 3, 1, 1) + b"x" + b"\xce")
    assert conn.expect_close() == (505, 'UNEXPECTED_FRAME - type 3, all octets = <<"x">>', 0, 0)


def test_server_closes_socket_after_close_ok_on_hard_error(raw):
    conn = raw()
    conn.send_frame(C.Queue.Declare(queue="x"), 7)
    conn.expect_close()  # replies close-ok
    assert conn.wait_closed(5)


def test_other_connections_survive_a_hard_error(amqp_url, raw, uid):
    bystander = _pika(amqp_url)
    try:
        ch = bystander.channel()
        ch.queue_declare(f"bystander-{uid}", exclusive=True)
        conn = raw()
        conn.send_frame(C.Queue.Declare(queue="x"), 9)
        assert conn.expect_close()[0] == 504
        ch.queue_declare(f"bystander-{uid}", passive=True)
        assert bystander.is_open
    finally:
        bystander.close()
