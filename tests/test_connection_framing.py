"""Connection-level behaviour: framing errors (oversized, bad frame-end, unknown types, truncated
or unknown methods, content frames out of order or on the wrong channel) and what they close.

Every expectation here was recorded against a real RabbitMQ 3.10 (run with AMQP_REFERENCE_URL set),
through the raw client in helpers/raw.py.
"""

from __future__ import annotations

import struct

import pytest
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat

from helpers.raw import PeerClosed
from helpers.pika_client import connect
from helpers.connection import raw  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.timeout(30)


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
    bystander = connect(amqp_url)
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
