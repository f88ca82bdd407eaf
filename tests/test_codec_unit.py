"""Unit tests for amqp_broker.codec (sans-IO): frame splitting, the hand-written hot-path
decoders/encoders checked byte for byte against pamqp, the validate()-free generic encoder,
and the typed field tables used by RabbitMQ's equivalence checks.

This file: constants, frame splitting, the hot-path decoders and strict method decoding; the
encoders, content frames and typed tables are in test_codec_unit_encoders.py.
"""

from __future__ import annotations

import itertools
import random
import struct

import pytest
from pamqp import commands as C
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat

from amqp_broker import codec
from amqp_broker.args import Arguments
from amqp_broker.codec import FrameError
from helpers.codec import EXCHANGES, ROUTING_KEYS, TAGS, method_payload, s64
from helpers.raw import raw_frame

# --------------------------------------------------------------------------- constants


def test_heartbeat_frame_matches_pamqp():
    assert codec.HEARTBEAT_FRAME == pheartbeat.Heartbeat().marshal()
    assert codec.HEARTBEAT_FRAME == b"\x08\x00\x00\x00\x00\x00\x00\xce"


def test_protocol_header():
    assert codec.PROTOCOL_HEADER == pheader.ProtocolHeader().marshal() == b"AMQP\x00\x00\x09\x01"


def test_hot_indexes_match_pamqp():
    assert codec.BASIC_PUBLISH == C.Basic.Publish.index
    assert codec.BASIC_ACK == C.Basic.Ack.index


# --------------------------------------------------------------------------- parse_frames

FRAME_MAX = 131072


def _stream():
    """A realistic inbound stream: heartbeat, publish + header + 2 bodies, ack, heartbeat."""
    frames = [
        (8, 0, b""),
        (1, 1, method_payload(C.Basic.Publish(exchange="amq.direct", routing_key="rk", mandatory=True))),
        (2, 1, pheader.ContentHeader(0, 10, C.Basic.Properties(delivery_mode=2)).marshal()),
        (3, 1, b"hello"),
        (3, 1, b"world"),
        (1, 3, method_payload(C.Basic.Ack(s64(2**64 - 1), True))),
        (8, 0, b""),
    ]
    data = b"".join(raw_frame(t, c, p) for t, c, p in frames)
    return frames, data


def test_parse_frames_whole_stream():
    frames, data = _stream()
    got, offset = codec.parse_frames(data, 0, FRAME_MAX)
    assert got == frames
    assert offset == len(data)
    for _t, _c, payload in got:
        assert type(payload) is bytes


def test_parse_frames_every_cut_point_returns_only_whole_frames():
    frames, data = _stream()
    ends = list(itertools.accumulate(8 + len(p) for _t, _c, p in frames))
    for cut in range(len(data) + 1):
        got, offset = codec.parse_frames(data[:cut], 0, FRAME_MAX)
        complete = [e for e in ends if e <= cut]
        assert got == frames[: len(complete)], cut
        assert offset == (complete[-1] if complete else 0), cut


def test_parse_frames_byte_by_byte_feeding_reassembles_stream():
    frames, data = _stream()
    buf = b""
    seen = []
    for i in range(len(data)):
        buf += data[i : i + 1]
        got, offset = codec.parse_frames(buf, 0, FRAME_MAX)
        seen.extend(got)
        buf = buf[offset:]
    assert seen == frames
    assert buf == b""


def test_parse_frames_truncated_heartbeat_not_returned():
    # pamqp would "consume" a 7-byte heartbeat (pamqp-notes.md trap 3); we must wait for 0xCE
    for cut in range(8):
        got, offset = codec.parse_frames(codec.HEARTBEAT_FRAME[:cut], 0, FRAME_MAX)
        assert (got, offset) == ([], 0)
    got, offset = codec.parse_frames(codec.HEARTBEAT_FRAME, 0, FRAME_MAX)
    assert (got, offset) == ([(8, 0, b"")], 8)


def test_parse_frames_from_offset_and_bytearray_and_memoryview():
    frames, data = _stream()
    junk = b"\x00" * 13
    for container in (bytes, bytearray):
        got, offset = codec.parse_frames(container(junk + data), len(junk), FRAME_MAX)
        assert got == frames
        assert offset == len(junk) + len(data)
    got, offset = codec.parse_frames(memoryview(data), 0, FRAME_MAX)
    assert got == frames
    assert all(type(p) is bytes for _t, _c, p in got)


def test_parse_frames_empty_input():
    assert codec.parse_frames(b"", 0, FRAME_MAX) == ([], 0)
    assert codec.parse_frames(b"abc", 3, FRAME_MAX) == ([], 3)


@pytest.mark.parametrize("bad_end", [0x00, 0xCD, 0xCF, 0xFF, ord("A")])
def test_parse_frames_wrong_frame_end(bad_end):
    data = raw_frame(1, 1, b"\x00\x14\x00\x0a\x00\x00", end=bad_end)
    with pytest.raises(FrameError) as info:
        codec.parse_frames(data, 0, FRAME_MAX)
    assert info.value.code == 501
    assert info.value.explanation == (
        f"type 1, all octets = <<0,20,0,10,0,0>>: {{invalid_frame_end_marker,{bad_end}}}")


def test_parse_frames_wrong_frame_end_after_good_frames():
    data = codec.HEARTBEAT_FRAME + raw_frame(3, 1, b"body", end=0)
    with pytest.raises(FrameError) as info:
        codec.parse_frames(data, 0, FRAME_MAX)
    assert info.value.code == 501
    assert info.value.explanation == 'type 3, all octets = <<"body">>: {invalid_frame_end_marker,0}'


def test_parse_frames_wrong_frame_end_of_heartbeat():
    with pytest.raises(FrameError) as info:
        codec.parse_frames(b"\x08\x00\x00\x00\x00\x00\x00\x00", 0, FRAME_MAX)
    assert info.value.code == 501
    assert info.value.explanation == "type 8, all octets = <<>>: {invalid_frame_end_marker,0}"


@pytest.mark.parametrize("size", [16, 17, 100, 4000])
def test_parse_frames_wrong_frame_end_long_payload_shows_first_16_octets(size):
    """rabbit_reader:payload_snippet/1: a payload of at most 16 bytes is printed whole
    ("all octets = ..."), a longer one as "first 16 octets = <<its first 16 bytes>>"."""
    payload = bytes(range(size)) if size < 256 else bytes(i % 256 for i in range(size))
    with pytest.raises(FrameError) as info:
        codec.parse_frames(raw_frame(3, 1, payload, end=0x41), 0, FRAME_MAX)
    if size <= 16:
        octets = "all octets = <<" + ",".join(str(b) for b in payload) + ">>"
    else:
        octets = "first 16 octets = <<" + ",".join(str(b) for b in payload[:16]) + ">>"
    assert info.value.explanation == f"type 3, {octets}: {{invalid_frame_end_marker,65}}"


@pytest.mark.parametrize("frame_max", [4096, 8192, 131072])
def test_parse_frames_size_limit(frame_max):
    limit = frame_max - 8
    ok = raw_frame(3, 1, b"x" * limit)
    got, offset = codec.parse_frames(ok, 0, frame_max)
    assert got == [(3, 1, b"x" * limit)] and offset == len(ok)


@pytest.mark.parametrize("frame_max", [4096, 131072])
@pytest.mark.parametrize("ftype", [1, 2, 3])
def test_parse_frames_too_large_rejected_from_header_alone(frame_max, ftype):
    """Oversized frames are refused as soon as the 7-byte header is in: no need to buffer
    (up to 4 GiB of) payload first. RabbitMQ's text: {frame_too_large,Size,FrameMax-8}."""
    size = frame_max + 1
    header = struct.pack(">BHI", ftype, 1, size)
    with pytest.raises(FrameError) as info:
        codec.parse_frames(header, 0, frame_max)
    assert info.value.code == 501
    assert info.value.explanation == (
        f"type {ftype}, all octets = <<>>: {{frame_too_large,{size},{frame_max - 8}}}"
    )
    huge = struct.pack(">BHI", ftype, 1, 2**32 - 1)
    with pytest.raises(FrameError):
        codec.parse_frames(huge, 0, frame_max)


def test_parse_frames_size_fudge_like_rabbitmq():
    """RabbitMQ's rabbit_reader tolerates payloads up to frame_max (FRAME_SIZE_FUDGE = 8:
    'We allow clients to exceed the frame size a little bit since quite a few get it wrong -
    off-by 1 or 8 (empty frame size) are typical'); only PayloadSize > FrameMax - 8 + 8 is a
    frame_too_large error, whose text still names FrameMax - 8."""
    frame_max = 4096
    for size in (frame_max - 7, frame_max - 1, frame_max):
        data = raw_frame(3, 1, b"y" * size)
        got, offset = codec.parse_frames(data, 0, frame_max)
        assert got == [(3, 1, b"y" * size)] and offset == len(data), size
    with pytest.raises(FrameError) as info:
        codec.parse_frames(raw_frame(3, 1, b"y" * (frame_max + 1)), 0, frame_max)
    assert info.value.explanation.endswith(f"{{frame_too_large,{frame_max + 1},{frame_max - 8}}}")


def test_parse_frames_frame_max_zero_means_no_limit():
    data = raw_frame(3, 1, b"z" * 300_000)
    got, offset = codec.parse_frames(data, 0, 0)
    assert got == [(3, 1, b"z" * 300_000)] and offset == len(data)


def test_parse_frames_random_streams():
    rng = random.Random(1234)
    for _ in range(200):
        frames = []
        for _ in range(rng.randint(0, 12)):
            ftype = rng.choice([1, 2, 3, 8])
            payload = b"" if ftype == 8 else rng.randbytes(rng.randint(0, 300))
            frames.append((ftype, rng.randint(0, 65535), payload))
        data = b"".join(raw_frame(*f) for f in frames)
        # split at random points and feed
        buf, seen = b"", []
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 64)
            buf += data[pos : pos + step]
            pos += step
            got, offset = codec.parse_frames(buf, 0, 4096)
            seen.extend(got)
            buf = buf[offset:]
        assert seen == frames and buf == b""


# --------------------------------------------------------------------------- hot decoders


def test_method_index():
    for cls in (C.Basic.Publish, C.Basic.Ack, C.Queue.Declare, C.Connection.StartOk):
        assert codec.method_index(method_payload(cls())) == cls.index


def _publish_cases():
    for exchange, rk in itertools.product(EXCHANGES, ROUTING_KEYS):
        for mandatory, immediate in itertools.product((False, True), repeat=2):
            yield exchange, rk, mandatory, immediate


def test_decode_publish_matches_pamqp():
    n = 0
    for exchange, rk, mandatory, immediate in _publish_cases():
        obj = C.Basic.Publish(exchange=exchange, routing_key=rk, mandatory=mandatory, immediate=immediate)
        payload = method_payload(obj)
        assert codec.decode_publish(payload) == (exchange, rk, mandatory, immediate)
        n += 1
    assert n == len(EXCHANGES) * len(ROUTING_KEYS) * 4


def test_decode_publish_ticket_ignored_and_names_unvalidated():
    # non-zero ticket, UTF-8 and RabbitMQ-legal-but-pamqp-illegal names (built without validate)
    for exchange in ("é*名", "x" * 255, "a b*c"):
        payload = codec.encode(1, C.Basic.Publish, ticket=7, exchange=exchange, routing_key="ключ",
                               mandatory=True)[7:-1]
        assert codec.decode_publish(payload) == (exchange, "ключ", True, False)


def test_decode_publish_non_utf8_names_survive_surrogateescape():
    payload = C.Basic.Publish.index.to_bytes(4, "big") + b"\x00\x00" + b"\x02\xff\xfe" + b"\x01\x80" + b"\x03"
    exchange, rk, mandatory, immediate = codec.decode_publish(payload)
    assert exchange.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    assert rk.encode("utf-8", "surrogateescape") == b"\x80"
    assert (mandatory, immediate) == (True, True)
    # and it re-encodes to the same bytes in outgoing frames
    assert codec.exchange_routing_key(exchange, rk) == b"\x02\xff\xfe\x01\x80"


@pytest.mark.parametrize("tag", TAGS)
@pytest.mark.parametrize("multiple", [False, True])
def test_decode_ack_matches_pamqp(tag, multiple):
    payload = method_payload(C.Basic.Ack(delivery_tag=s64(tag), multiple=multiple))
    assert codec.decode_ack(payload) == (tag, multiple)


@pytest.mark.parametrize("body_size", [0, 1, 4088, 131072, 2**32, 2**63, 2**64 - 1])
def test_decode_content_header_matches_pamqp(body_size):
    for props in (C.Basic.Properties(), C.Basic.Properties(content_type="text/plain", delivery_mode=2,
                                                            headers={"a": 1}, priority=5)):
        payload = pheader.ContentHeader(0, body_size, props).marshal()
        assert codec.decode_content_header(payload) == (60, body_size)


def test_decode_method_round_trips_pamqp_methods():
    objs = [
        C.Queue.Declare(queue="q", durable=True, arguments={"x-max-length": 10, "x-queue-type": "classic"}),
        C.Queue.Declare(queue="", exclusive=True, auto_delete=True, nowait=True),
        C.Exchange.Declare(exchange="e", exchange_type="topic", durable=True, internal=True),
        C.Queue.Bind(queue="q", exchange="e", routing_key="a.*", arguments={"x-match": "any"}),
        C.Basic.Consume(queue="q", consumer_tag="ct", no_ack=True, exclusive=True,
                        arguments={"x-priority": 5}),
        C.Basic.Qos(prefetch_count=100, global_=True),
        C.Basic.Nack(delivery_tag=2**63 - 1, multiple=True, requeue=False),
        C.Basic.Reject(delivery_tag=5, requeue=False),
        C.Channel.Open(),
        C.Channel.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0),
        C.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=60),
        C.Connection.Open(virtual_host="/"),
        C.Confirm.Select(nowait=False),
        C.Tx.Select(),
        C.Basic.Get(queue="q", no_ack=True),
        C.Queue.Delete(queue="q", if_unused=True, if_empty=True),
    ]
    for obj in objs:
        got = codec.decode_method(method_payload(obj))
        assert type(got) is type(obj)
        for slot in obj.__slots__:
            value = getattr(got, slot)
            if isinstance(value, Arguments):  # declare arguments keep their AMQP types
                value = value.plain
            assert value == getattr(obj, slot), (obj.name, slot)


def test_decode_method_unknown_index_is_keyerror():
    with pytest.raises(KeyError):
        codec.decode_method(b"\x00\x3c\x03\xe7")  # basic/999
    with pytest.raises(KeyError):
        codec.decode_method(b"\x12\x34\x00\x0a")


# --------------------------------------------------------------------------- strict method decoding
# (every expectation below was checked against RabbitMQ 3.10: 501 "cannot decode <<fields>>"
# naming the method for fields that do not parse exactly; "Malformed UTF-8 in shortstr" for a
# short string that is not UTF-8, except in basic.publish)


def _cannot_decode(payload: bytes):
    with pytest.raises(codec.AMQPError) as info:
        codec.decode_method(payload)
    return info.value


def test_decode_method_truncated_and_trailing_bytes_cannot_decode():
    declare = method_payload(C.Queue.Declare(queue="q", arguments={"x-max-length": 5}))
    for cut in range(4, len(declare)):
        exc = _cannot_decode(declare[:cut])
        assert (exc.code, exc.class_id, exc.method_id) == (501, 50, 10)
        assert exc.explanation == "cannot decode <<" + ",".join(map(str, declare[4:cut])) + ">>"
    exc = _cannot_decode(declare + b"junk")
    assert exc.explanation.endswith(",106,117,110,107>>")
    exc = _cannot_decode(C.Tx.Select.index.to_bytes(4, "big") + b"abc")
    assert (exc.explanation, exc.class_id, exc.method_id) == ("cannot decode <<97,98,99>>", 90, 10)


def test_decode_method_tables_that_do_not_parse_cannot_decode():
    for table in (b"\x00\x00\x00\x04\x01kZ\x00", b"\x00\x00\x00\x0a\x01kV",
                  b"\x00\x00\x00\x0b\x01kd" + struct.pack(">d", float("nan"))):
        payload = struct.pack(">HHH", 50, 10, 0) + b"\x01q\x00" + table
        assert _cannot_decode(payload).class_id == 50


def test_decode_method_non_utf8_shortstr():
    payload = struct.pack(">HHH", 50, 10, 0) + b"\x02\xff\xfe\x00" + b"\x00\x00\x00\x00"
    with pytest.raises(codec.MalformedUtf8):
        codec.decode_method(payload)
    # structure is checked first: a bad name with trailing bytes is `cannot decode`
    assert _cannot_decode(payload + b"z").class_id == 50


def test_decode_method_odd_but_valid_tables():
    """Arguments RabbitMQ accepts and pamqp cannot decode: non-UTF-8 keys, timestamps beyond
    datetime, nesting thousands deep."""
    inner = b"\x00\x00\x00\x00"
    for _ in range(3000):
        body = b"\x01nF" + inner
        inner = struct.pack(">I", len(body)) + body
    body = b"\x02\xff\xfeV" + b"\x01tT" + b"\xff" * 8 + b"\x01nF" + inner
    payload = struct.pack(">HHH", 50, 10, 0) + b"\x01q\x00" + struct.pack(">I", len(body)) + body
    obj = codec.decode_method(payload)
    assert obj.queue == "q" and obj.arguments["t"] == 2**64 - 1
    assert "\udcff\udcfe" in obj.arguments
    typed = obj.arguments.typed
    assert typed["t"] == ("T", 2**64 - 1) and typed["\udcff\udcfe"] == ("V", None)


def test_decode_method_longlong_is_unsigned():
    payload = C.Basic.Nack.index.to_bytes(4, "big") + struct.pack(">QB", 2**64 - 1, 3)
    obj = codec.decode_method(payload)
    assert (obj.delivery_tag, obj.multiple, obj.requeue) == (2**64 - 1, True, True)


@pytest.mark.parametrize("payload", [
    b"\x00\x3c\x00\x28",  # nothing after the ids
    b"\x00\x3c\x00\x28\x00\x00",  # ticket only
    b"\x00\x3c\x00\x28\x00\x00\x05ab",  # exchange overruns
    b"\x00\x3c\x00\x28\x00\x00\x00\x00",  # no bits
    b"\x00\x3c\x00\x28\x00\x00\x00\x00\x00zz",  # trailing bytes
    b"\x00\x3c\x00\x28\x00\x00\x00\x09",  # routing key overruns
])
def test_decode_publish_cannot_decode(payload):
    with pytest.raises(codec.AMQPError) as info:
        codec.decode_publish(payload)
    assert (info.value.code, info.value.class_id, info.value.method_id) == (501, 60, 40)
    assert info.value.explanation == "cannot decode <<" + ",".join(map(str, payload[4:])) + ">>"


@pytest.mark.parametrize("size", [4, 5, 12, 14, 20])
def test_decode_ack_must_be_13_bytes(size):
    payload = (C.Basic.Ack.index.to_bytes(4, "big") + b"\x00" * 16)[:size]
    with pytest.raises(codec.AMQPError) as info:
        codec.decode_ack(payload)
    assert (info.value.code, info.value.class_id, info.value.method_id) == (501, 60, 80)
