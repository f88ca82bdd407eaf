"""Hostile input the other framing tests (test_connection_framing.py, test_connection.py,
test_robustness_*.py) leave out: unknown classes, content frames on channels that are not
open, frames on a channel we are closing, garbage instead of the protocol header, connections
that never finish the handshake, and a client that floods requests without reading replies.

Every expectation was recorded against a real RabbitMQ 3.10 (run with AMQP_REFERENCE_URL set)
through the raw client in helpers/raw.py; where we deliberately differ it says so.
"""
from __future__ import annotations

import socket
import struct

import pytest
from pamqp import commands as C

from helpers.broker import REFERENCE
from helpers.connection import raw  # noqa: F401 - pytest fixture
from helpers.fuzz import MAX_MESSAGE_SIZE, body, content_header, method, publish
from helpers.raw import AMQP_091_HEADER, PeerClosed, RawConnection, raw_frame
from helpers.robust import broker_log  # noqa: F401 - pytest fixture
from helpers.robust import (
    Bystander,
    assert_broker_healthy,
    broker_conn_for,
    broker_log_errors,
    hard_close,
)
from helpers.wait import HANG_GUARD, wait_until

pytestmark = pytest.mark.timeout(60)

HANDSHAKE_TIMEOUT = 10  # seconds, RabbitMQ's handshake_timeout default (and ours)


def _close_or_drop(conn) -> tuple:
    """The connection.close the broker sends (replying close-ok), or ("dropped",)."""
    try:
        return conn.expect_close()
    except PeerClosed:
        return ("dropped",)


# --------------------------------------------------------------------------- unknown class
@pytest.mark.parametrize("channel, ids, expected_ids", [
    (1, (99, 10), (99, 10)),
    (1, (90, 99), (90, 99)),
    (0, (99, 10), (0, 0)),
], ids=["unknown class", "unknown tx method", "unknown class on channel 0"])
def test_unknown_class_or_method_closes_the_connection(raw, channel, ids, expected_ids):
    """RabbitMQ drops the socket without a word on an unknown class/method id; we answer
    503 COMMAND_INVALID first (a deliberate difference: the client learns why)."""
    conn = raw()
    conn.open_channel(1)
    conn.send_bytes(raw_frame(1, channel, struct.pack(">HH", *ids) + b"args"))
    expected = ("dropped",) if REFERENCE else (
        503, f"COMMAND_INVALID - unknown method {ids[0]}/{ids[1]}", *expected_ids)
    assert _close_or_drop(conn) == expected
    assert conn.wait_closed(5)


# --------------------------------------------------------------------------- channels not open
_METHOD_EXPECTED = (505, "UNEXPECTED_FRAME - expected method frame, got non method frame instead", 0, 0)


@pytest.mark.parametrize("data", [
    content_header(5, 3), content_header(5, 0), body(5, b"x"),
], ids=["header", "empty header", "body"])
def test_content_on_a_channel_never_opened(raw, data):
    conn = raw()
    conn.send_bytes(data)
    assert conn.expect_close() == _METHOD_EXPECTED


def test_content_header_on_a_channel_after_its_close_ok(raw):
    conn = raw()
    conn.open_channel(3)
    conn.close_channel(3)
    conn.send_bytes(content_header(3, 1))
    assert conn.expect_close() == _METHOD_EXPECTED


def test_publish_on_a_channel_never_opened(raw):
    conn = raw()
    conn.send_bytes(publish(5, b"x", routing_key="x"))
    assert conn.expect_close() == (504, "CHANNEL_ERROR - expected 'channel.open'", 60, 40)


# --------------------------------------------------------------------------- a closing channel
# Between our channel.close and the client's close-ok RabbitMQ's channel drops every command,
# but its reader still assembles them: a frame out of sequence is a connection error, and so is
# a second channel.open.
_PUB = method(1, C.Basic.Publish, routing_key="x")
_HEADER_EXPECTED = (505, "UNEXPECTED_FRAME - expected content header for class 60, "
                         "got non content header frame instead", 60, 40)
_BODY_EXPECTED = (505, "UNEXPECTED_FRAME - expected content body, "
                       "got non content body frame instead", 60, 40)

CLOSING_ERRORS = [
    ("header", content_header(1, 3), _METHOD_EXPECTED),
    ("body", body(1, b"x"), _METHOD_EXPECTED),
    ("publish, then a method", _PUB + method(1, C.Basic.Qos, prefetch_count=1), _HEADER_EXPECTED),
    ("publish, then a body", _PUB + body(1, b"abc"), _HEADER_EXPECTED),
    ("publish, header of class 50", _PUB + content_header(1, 3, class_id=50),
     (505, "UNEXPECTED_FRAME - expected content header for class 60, got one for class 50 instead",
      60, 40)),
    ("publish, header, header", _PUB + content_header(1, 3) + content_header(1, 3), _BODY_EXPECTED),
    # RabbitMQ fails on the frame after the long body (we at once, see
    # test_content_body_larger_than_announced): the method makes the answers the same
    ("publish, header, body too long",
     _PUB + content_header(1, 3) + body(1, b"abcd") + method(1, C.Basic.Qos, prefetch_count=1),
     _BODY_EXPECTED),
    ("publish, short body, method",
     _PUB + content_header(1, 3) + body(1, b"ab") + method(1, C.Basic.Qos, prefetch_count=1),
     _BODY_EXPECTED),
    ("channel.open", method(1, C.Channel.Open), (504, "CHANNEL_ERROR - second 'channel.open' seen", 20, 10)),
    ("truncated basic.qos", raw_frame(1, 1, struct.pack(">HH", 60, 10) + b"\x00"),
     (501, "FRAME_ERROR - cannot decode <<0>>", 60, 10)),
    ("heartbeat on the channel", raw_frame(8, 1, b""), (505, "UNEXPECTED_FRAME - type 8, all octets = <<>>", 0, 0)),
    ("queue name not UTF-8", method(1, C.Queue.Declare, queue=b"\xff"),
     (501, "FRAME_ERROR - Malformed UTF-8 in shortstr", 0, 0)),
]


def _fail(uid: str) -> bytes:
    """A passive declare of a missing queue: the broker closes channel 1 with 404."""
    return method(1, C.Queue.Declare, queue=f"hostile-missing-{uid}", passive=True)


@pytest.mark.parametrize("data, expected", [c[1:] for c in CLOSING_ERRORS], ids=[c[0] for c in CLOSING_ERRORS])
def test_frames_out_of_sequence_on_a_closing_channel(raw, uid, data, expected):
    conn = raw()
    conn.open_channel(1)
    conn.send_bytes(_fail(uid) + data)
    assert conn.expect(C.Channel.Close, 1).reply_code == 404
    assert conn.expect_close() == expected


CLOSING_IGNORED = [
    ("a whole publish", publish(1, b"abc", routing_key="x")),
    ("a publish with an empty body", _PUB + content_header(1, 0)),
    ("a publish in two body frames", _PUB + content_header(1, 4) + body(1, b"ab") + body(1, b"cd")),
    ("methods", method(1, C.Basic.Qos, prefetch_count=1) + method(1, C.Queue.Declare, queue="x")),
    ("a connection method", method(1, C.Connection.Open, virtual_host="/")),
]


@pytest.mark.parametrize("data", [c[1] for c in CLOSING_IGNORED], ids=[c[0] for c in CLOSING_IGNORED])
def test_well_formed_frames_on_a_closing_channel_are_dropped(raw, uid, data):
    conn = raw()
    conn.open_channel(1)
    conn.send_bytes(_fail(uid) + data)
    assert conn.expect(C.Channel.Close, 1).reply_code == 404
    conn.send_frame(C.Channel.CloseOk(), 1)
    conn.open_channel(1)
    conn.rpc(C.Basic.Qos(prefetch_count=2), 1, C.Basic.QosOk)


def test_content_after_a_publish_refused_at_its_header_is_dropped(raw):
    """We refuse a body above the maximum message size at its content header (RabbitMQ only
    once the whole body arrived: it buffers up to 128 MB first); the body frames of that
    publish still on their way are dropped, not taken for frames out of sequence."""
    conn = raw()
    conn.open_channel(1)
    conn.send_bytes(_PUB + content_header(1, MAX_MESSAGE_SIZE + 1) + body(1, b"x" * 100))
    if REFERENCE:  # still waiting for the body: the next method is out of sequence
        conn.send_bytes(method(1, C.Basic.Qos, prefetch_count=1))
        assert conn.expect_close() == _BODY_EXPECTED
        return
    code, text, _c, _m = conn.expect_channel_close(1, send_close_ok=False)
    assert (code, text) == (406, f"PRECONDITION_FAILED - message size {MAX_MESSAGE_SIZE + 1} "
                                 f"is larger than configured max size {MAX_MESSAGE_SIZE}")
    conn.send_bytes(body(1, b"y" * 100) + method(1, C.Channel.CloseOk))
    conn.open_channel(1)
    conn.rpc(C.Basic.Qos(prefetch_count=2), 1, C.Basic.QosOk)


# --------------------------------------------------------------------------- before the handshake
@pytest.mark.parametrize("data", [
    b"xyz" + AMQP_091_HEADER,
    b"GET / HTTP/1.1\r\n\r\n" + AMQP_091_HEADER,
    b"\x00" * 8,
    raw_frame(1, 0, struct.pack(">HH", 10, 11)),
], ids=["3 bytes", "http request", "zeros", "a frame"])
def test_garbage_before_the_protocol_header(raw, data):
    """Whatever the first 8 bytes are, if they are not a protocol header we accept, the answer
    is our header and the socket closes."""
    conn = raw(handshake=False)
    conn.send_bytes(data)
    assert conn.recv_exact(8) == AMQP_091_HEADER
    assert conn.wait_closed(5)


def test_half_open_connections_are_closed_after_the_handshake_timeout(raw):
    """A TCP connection that sends nothing, and one that stops after connection.start, are
    closed by the broker once the handshake timeout (10 s) has passed, without a word."""
    silent = raw(handshake=False, timeout=HANDSHAKE_TIMEOUT + HANG_GUARD)
    started = raw(handshake=False, timeout=HANDSHAKE_TIMEOUT + HANG_GUARD)
    started.send_protocol_header()
    started.expect(C.Connection.Start, 0)
    assert silent.wait_closed(HANDSHAKE_TIMEOUT + HANG_GUARD)
    assert started.wait_closed(HANDSHAKE_TIMEOUT + HANG_GUARD)
    assert not silent.buf and not started.buf


# --------------------------------------------------------------------------- a client that never reads
def test_client_flooding_requests_without_reading_does_not_disturb_others(own_broker, uid, broker_log):
    """Write-side slowloris: a client sends 60,000 requests (basic.qos, each answered with
    qos-ok) and never reads a reply. Like RabbitMQ (whose writer process queues what its
    socket does not take), we keep the replies until the client reads or goes away; meanwhile
    a well-behaved client on another connection is served, and when the flooder is reset
    its connection and everything it held is gone. Counted, never timed."""
    url = own_broker.url
    baseline = len(own_broker.broker.connections)
    with Bystander(url, f"{uid}-flood") as bystander:
        flooder = RawConnection.connect(url)
        flooder.open_channel(1)
        flooder.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        server_side = broker_conn_for(own_broker, flooder)
        batch = method(1, C.Basic.Qos, prefetch_count=1) * 1000
        for _ in range(60):
            flooder.sock.sendall(batch)
        flooder.sock.sendall(method(1, C.Basic.Qos, prefetch_count=4321))
        # the broker read and handled everything (the replies wait in kernel and user buffers)
        assert wait_until(lambda: server_side.session.channels[1].prefetch == 4321)
        assert bystander.wait_round_trips(bystander.received + 10), bystander.errors
        hard_close(flooder)
        assert wait_until(lambda: len(own_broker.broker.connections) <= baseline + 1)
    bystander.check(min_round_trips=10)
    assert wait_until(lambda: len(own_broker.broker.connections) <= baseline)
    assert not broker_log_errors(broker_log.records)
    assert_broker_healthy(own_broker, uid)
