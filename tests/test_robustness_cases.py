"""Robustness: bad input never crashes the broker, never hangs, never touches anyone else.

The project guide's rule under test: "Bad input always gets a clear error — the AMQP reply code
and text RabbitMQ would send — and never loses or corrupts stored data, never crashes the
broker, never affects other connections."

These tests are about OUR broker (they look at its thread, its log and its internals), so they
use `own_broker` and never the reference server. (Shared machinery: fuzz_frames.py,
helpers/robust.py; the other parts: test_robustness_fuzz.py, test_robustness_clients.py,
test_robustness_cases.py.)

5. Malformed frames and content get RabbitMQ's exact answer. Every expectation there was
  recorded against the reference RabbitMQ (../shared/tools/reference-rabbitmq) with `answer()`.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest
from pamqp import commands as C

from helpers.raw import PeerClosed, RawConnection
from helpers.fuzz import (
    PROBE_CHANNEL,
    longstr,
    nested_table,
    body,
    content_header,
    method,
    publish,
)
from helpers.pika_client import connect, message_count
from helpers.raw import raw_frame
from helpers.robust import broker_log  # noqa: F401 - pytest fixture
from helpers.robust import broker_log_errors, describe_record, recv_frame

pytestmark = pytest.mark.timeout(120)


# =============================================================================================
# 5. Malformed frames and content get RabbitMQ's answer (each expectation below was recorded
#    against the reference RabbitMQ, ../shared/tools/reference-rabbitmq)


def answer(url: str, setup: list[bytes], data: bytes, grace: float = 0.0) -> list[tuple]:
    """Sends `data` after a handshake + channel.open 1 (+ setup frames, one reply each), then
    basic.qos on channel 1 and channel.open on another channel as probes. Returns the closes
    received, in order: ("channel.close", code, text, class, method) /
    ("connection.close", code, text, class, method), or ("dropped",) / ("no answer",)."""
    conn = RawConnection.connect(url, timeout=5)
    out: list[tuple] = []
    try:
        conn.open_channel(1)
        for f in setup:
            conn.send_bytes(f)
            _ch, obj = conn.recv_method()
            assert not isinstance(obj, (C.Channel.Close, C.Connection.Close)), obj.reply_text
        conn.send_bytes(data + method(1, C.Basic.Qos, prefetch_count=7)
                        + method(PROBE_CHANNEL, C.Channel.Open))
        ch1 = probe = False
        deadline = time.monotonic() + 5
        while True:
            if ch1 and probe and grace is not None:
                deadline = min(deadline, time.monotonic() + grace)
                grace = None
            try:
                _t, ch, obj = recv_frame(conn, max(0.001, deadline - time.monotonic()))
            except (socket.timeout, TimeoutError):
                if not (ch1 and probe):
                    out.append(("no answer",))
                return out
            except PeerClosed:
                out.append(("dropped",))
                return out
            if isinstance(obj, C.Connection.Close):
                out.append(("connection.close", obj.reply_code, obj.reply_text, obj.class_id, obj.method_id))
                conn.send_frame(C.Connection.CloseOk(), 0)
                return out
            if isinstance(obj, C.Channel.Close):
                out.append(("channel.close", obj.reply_code, obj.reply_text, obj.class_id, obj.method_id))
                conn.send_frame(C.Channel.CloseOk(), ch)
                ch1 = ch1 or ch == 1
            elif isinstance(obj, C.Basic.QosOk) and ch == 1:
                ch1 = True
            elif isinstance(obj, C.Channel.OpenOk) and ch == PROBE_CHANNEL:
                probe = True
    finally:
        conn.close()


def _idx(cls) -> bytes:
    return struct.pack(">I", cls.index)


def _props(flags: int, rest: bytes = b"") -> bytes:
    return struct.pack(">H", flags) + rest


def _headers(table_body: bytes, length: int | None = None) -> bytes:
    """A property list holding only `headers`, whose table content is `table_body`."""
    n = len(table_body) if length is None else length
    return _props(0x2000, struct.pack(">I", n) + table_body)


_PUB = method(1, C.Basic.Publish, routing_key="robust-nowhere")

FRAME_CASES = [
    ("short method frame on a closing channel",
     method(1, C.Basic.Ack, delivery_tag=99) + raw_frame(1, 1, b"\x00\x14\x00"),
     [("channel.close", 406, "PRECONDITION_FAILED - unknown delivery tag 99", 60, 80),
      ("connection.close", 501, "FRAME_ERROR - type 1, all octets = <<0,20,0>>: unknown_frame", 0, 0)]),
    ("short method frame",
     raw_frame(1, 1, b"\x00\x3c"),
     [("connection.close", 501, "FRAME_ERROR - type 1, all octets = <<0,60>>: unknown_frame", 0, 0)]),
    ("truncated basic.ack",
     raw_frame(1, 1, _idx(C.Basic.Ack) + b"\x00\x00\x00"),
     [("connection.close", 501, "FRAME_ERROR - cannot decode <<0,0,0>>", 60, 80)]),
    ("truncated basic.publish",
     raw_frame(1, 1, _idx(C.Basic.Publish) + b"\x00\x00\x05ab"),
     [("connection.close", 501, "FRAME_ERROR - cannot decode <<0,0,5,97,98>>", 60, 40)]),
    ("truncated queue.declare",
     raw_frame(1, 1, _idx(C.Queue.Declare) + b"\x00\x00"),
     [("connection.close", 501, "FRAME_ERROR - cannot decode <<0,0>>", 50, 10)]),
    ("queue.declare with trailing bytes",
     raw_frame(1, 1, _idx(C.Queue.Declare) + b"\x00" * 9 + b"junk"),
     [("connection.close", 501,
       "FRAME_ERROR - cannot decode <<0,0,0,0,0,0,0,0,0,106,117,110,107>>", 50, 10)]),
    ("method frame instead of a content header",
     _PUB + method(1, C.Basic.Qos, prefetch_count=1),
     [("connection.close", 505, "UNEXPECTED_FRAME - expected content header for class 60, "
       "got non content header frame instead", 60, 40)]),
    ("method frame instead of a content body",
     _PUB + content_header(1, 10) + body(1, b"abcd") + method(1, C.Basic.Qos, prefetch_count=1),
     [("connection.close", 505,
       "UNEXPECTED_FRAME - expected content body, got non content body frame instead", 60, 40)]),
    ("content header for another class",
     _PUB + content_header(1, 1, class_id=50) + body(1, b"x"),
     [("connection.close", 505, "UNEXPECTED_FRAME - expected content header for class 60, "
       "got one for class 50 instead", 60, 40)]),
    ("content header with a non-zero weight",
     _PUB + content_header(1, 1, weight=1) + body(1, b"x"),
     [("connection.close", 505, "UNEXPECTED_FRAME - expected content header for class 60, "
       "got non content header frame instead", 60, 40)]),
    ("content header frame of 11 bytes",
     _PUB + raw_frame(2, 1, struct.pack(">HHQ", 60, 0, 0)[:11]),
     [("connection.close", 501,
       "FRAME_ERROR - type 2, all octets = <<0,60,0,0,0,0,0,0,0,0,0>>: unknown_frame", 0, 0)]),
    ("heartbeat frame with a payload",
     raw_frame(8, 0, b"abc"),
     [("connection.close", 501, 'FRAME_ERROR - type 8, all octets = <<"abc">>: unknown_frame', 0, 0)]),
    ("body frame on channel 0",
     raw_frame(3, 0, b"abc"),
     [("connection.close", 505, 'UNEXPECTED_FRAME - type 3, all octets = <<"abc">>', 0, 0)]),
    ("frame of type 4",
     raw_frame(4, 1, b"abc"),
     [("connection.close", 501, 'FRAME_ERROR - type 4, all octets = <<"abc">>: unknown_frame', 0, 0)]),
    ("basic.ack on channel 0",
     raw_frame(1, 0, _idx(C.Basic.Ack) + struct.pack(">QB", 1, 0)),
     [("connection.close", 504, "CHANNEL_ERROR - unexpected method in connection state running", 60, 80)]),
    ("queue.declare with arguments nested 3000 deep (accepted)",
     method(1, C.Queue.Declare, queue="robust-nested-args", arguments=nested_table(3000))
     + method(1, C.Queue.Delete, queue="robust-nested-args"),
     []),
    ("basic.publish to an exchange whose name is not UTF-8",
     publish(1, b"x", b"\xff\xfe", ""),
     [("channel.close", 404, "NOT_FOUND - no exchange '\udcff\udcfe' in vhost '/'", 60, 40)]),
    ("queue.declare of a name that is not UTF-8",
     method(1, C.Queue.Declare, queue=b"\xff\xfe"),
     [("connection.close", 501, "FRAME_ERROR - Malformed UTF-8 in shortstr", 0, 0)]),
    ("connection.start-ok on channel 1",
     method(1, C.Connection.StartOk, mechanism="PLAIN"),
     [("connection.close", 503, "COMMAND_INVALID - unimplemented method", 10, 11)]),
]


@pytest.mark.parametrize("data, expected", [c[1:] for c in FRAME_CASES], ids=[c[0] for c in FRAME_CASES])
def test_malformed_frame_gets_rabbitmq_answer(own_broker, broker_log, data, expected):
    assert answer(own_broker.url, [], data) == expected
    errors = broker_log_errors(broker_log.records)
    assert not errors, describe_record(errors[0])
    assert own_broker.is_alive()


_INTERNAL = [("connection.close", 541, "INTERNAL_ERROR", 0, 0)]

# Property lists RabbitMQ cannot decode: its channel process crashes on them, the publisher gets
# connection.close 541 "INTERNAL_ERROR" (no explanation, class/method 0), and the message is
# never stored. Storing one instead hands every consumer a content header its client library
# cannot decode (pika/pamqp raise on it): one bad publisher would break other connections.
PROPERTY_CASES = [
    ("short string overruns the header", "", _props(0x8000, b"\x09ab"), _INTERNAL),
    ("flag set, value missing", "", _props(0x8000), _INTERNAL),
    ("bytes after the last property", "", _props(0x0000, b"junk"), _INTERNAL),
    ("property flags continue in a second word", "", _props(0x0001, b"\x00\x00"), _INTERNAL),
    ("no property flags at all", "", b"", _INTERNAL),
    ("headers: unknown field type", "", _headers(b"\x01kZ\x00"), _INTERNAL),
    ("headers: entry overruns the table", "", _headers(b"\x01kS\x00\x00\x00\x01a", length=3), _INTERNAL),
    ("headers: unknown field type, via amq.headers", "amq.headers", _headers(b"\x01kZ\x00"), _INTERNAL),
    ("delivery-mode 9", "", _props(0x1000, b"\x09"),
     [("channel.close", 406, "PRECONDITION_FAILED - invalid message: {delivery_mode_unknown,9}", 60, 40)]),
]


@pytest.mark.parametrize("exchange, props, expected", [c[1:] for c in PROPERTY_CASES],
                         ids=[c[0] for c in PROPERTY_CASES])
def test_undecodable_property_list_is_refused_and_never_stored(own_broker, uid, broker_log,
                                                                exchange, props, expected):
    q = f"robust-props-{uid}"
    setup = [method(1, C.Queue.Declare, queue=q)]
    if exchange:
        setup.append(method(1, C.Queue.Bind, queue=q, exchange=exchange, arguments={}))
    try:
        got = answer(own_broker.url, setup, publish(1, b"poison?", exchange, q, props))
        assert message_count(own_broker.url, q) == 0, "the malformed message was stored"
        assert got == expected
        errors = broker_log_errors(broker_log.records)
        assert not errors, describe_record(errors[0])
    finally:
        conn = connect(own_broker.url)
        conn.channel().queue_delete(q)
        conn.close()


# Header tables that are well-formed on the wire but whose values Python's decoders choke on:
# RabbitMQ routes such messages (through a headers exchange, or with CC) and stores them.
_ODD_TABLES = [
    ("key that is not UTF-8", b"\x02\xff\xfeV"),
    ("timestamp 2^64-1", b"\x01kT" + b"\xff" * 8),
    ("timestamp 2^63-1", b"\x01kT\x7f" + b"\xff" * 7),
    ("tables nested 400 deep", nested_table(400)[4:]),
    ("tables nested 3000 deep", nested_table(3000)[4:]),
]
ODD_HEADER_CASES = [
    (f"{name}, {route}", route, table)
    for name, table in _ODD_TABLES
    for route in ("headers exchange", "CC header")
]


@pytest.mark.parametrize("route, table", [c[1:] for c in ODD_HEADER_CASES],
                         ids=[c[0] for c in ODD_HEADER_CASES])
def test_odd_but_well_formed_headers_are_routed_and_kept_intact(own_broker, uid, broker_log,
                                                                 route, table):
    q = f"robust-odd-{uid}"
    x = f"robust-odd-x-{uid}"
    setup = [method(1, C.Queue.Declare, queue=q),
             method(1, C.Exchange.Declare, exchange=x, exchange_type="headers"),
             method(1, C.Queue.Bind, queue=q, exchange=x, arguments={})]
    if route == "CC header":  # routed by its CC key to q, the routing key goes nowhere
        table = b"\x02CCA" + struct.pack(">I", len(q) + 5) + b"S" + longstr(q) + table
        data = publish(1, b"odd", "", "robust-nowhere", _headers(table))
    else:
        data = publish(1, b"odd", x, "", _headers(table))
    try:
        assert answer(own_broker.url, setup, data) == []
        errors = broker_log_errors(broker_log.records)
        assert not errors, describe_record(errors[0])
        # stored, and delivered with the content header byte for byte as published
        conn = RawConnection.connect(own_broker.url)
        try:
            conn.open_channel(1)
            conn.send_frame(C.Basic.Get(queue=q, no_ack=True), 1)
            _t, _ch, get_ok = recv_frame(conn, 5)
            assert isinstance(get_ok, bytes) and get_ok[:4] == _idx(C.Basic.GetOk), get_ok
            _t, _ch, header_payload = recv_frame(conn, 5)
            assert header_payload == struct.pack(">HHQ", 60, 0, 3) + _headers(table)
        finally:
            conn.close()
    finally:
        conn = connect(own_broker.url)
        ch = conn.channel()
        ch.queue_delete(q)
        ch.exchange_delete(x)
        conn.close()
