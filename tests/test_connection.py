"""Connection-level behaviour: protocol header, connection.start / tune, authentication, vhosts,
tune-ok negotiation.

Every expectation here was recorded against a real RabbitMQ 3.10 (run with AMQP_REFERENCE_URL set).
Frame-level checks use the raw client in helpers/raw.py; client-level checks use pika/kombu/aio-pika.
The other parts: test_connection_channels.py (channels, channel.flow, update-secret,
heartbeats), test_connection_framing.py (framing errors).
"""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import header as pheader

from helpers.raw import AMQP_091_HEADER, DEFAULT_CAPABILITIES, PeerClosed
from helpers.connection import CAPABILITIES, url_with
from helpers.pika_client import connect
from helpers.connection import raw  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.timeout(30)


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
    conn = connect(amqp_url)
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
        connect(url_with(amqp_url, password="definitely-wrong"))
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
    from helpers.raw import amqplain_response

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
        connect(url_with(amqp_url, vhost="nope"))
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
