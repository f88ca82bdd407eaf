"""Unit tests for amqp_broker.codec (sans-IO): the hand-written hot-path encoders and content
frames checked byte for byte against pamqp, the validate()-free generic encoder (encode / build),
and the typed field tables used by RabbitMQ's equivalence checks.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import struct
from decimal import Decimal

import pytest
from pamqp import body as pbody
from pamqp import commands as C
from pamqp import decode as pdecode
from pamqp import encode as pencode
from pamqp import frame as pframe
from pamqp import header as pheader

from amqp_broker import args, codec
from helpers.codec import (
    CHANNELS,
    CONSUMER_TAGS,
    EXCHANGES,
    ROUTING_KEYS,
    TAGS,
    method_payload,
    pamqp_unmarshal,
    s64,
)
from helpers.raw import raw_frame

# --------------------------------------------------------------------------- hot encoders vs pamqp


def test_deliver_frame_matches_pamqp():
    n = 0
    for channel, tag, redelivered in itertools.product([1, 2047, 65535], TAGS, (False, True)):
        for ctag, exchange, rk in zip(itertools.cycle(CONSUMER_TAGS), EXCHANGES, ROUTING_KEYS):
            expected = pframe.marshal(C.Basic.Deliver(ctag, s64(tag), redelivered, exchange, rk), channel)
            got = codec.deliver_frame(channel, codec.shortstr(ctag), tag, redelivered,
                                      codec.exchange_routing_key(exchange, rk))
            assert got == expected, (channel, tag, redelivered, ctag, exchange, rk)
            n += 1
    assert n > 400


def test_deliver_frame_all_name_combinations():
    for ctag, exchange, rk in itertools.product(CONSUMER_TAGS, EXCHANGES, ROUTING_KEYS):
        expected = pframe.marshal(C.Basic.Deliver(ctag, 42, True, exchange, rk), 1)
        got = codec.deliver_frame(1, codec.shortstr(ctag), 42, True, codec.exchange_routing_key(exchange, rk))
        assert got == expected


def test_get_ok_frame_matches_pamqp():
    for channel, tag, redelivered in itertools.product([1, 65535], TAGS, (False, True)):
        for exchange, rk in zip(EXCHANGES, ROUTING_KEYS):
            for count in (0, 1, 2**31, 2**32 - 1):
                expected = pframe.marshal(C.Basic.GetOk(s64(tag), redelivered, exchange, rk, count), channel)
                got = codec.get_ok_frame(channel, tag, redelivered, codec.exchange_routing_key(exchange, rk),
                                         count)
                assert got == expected


def test_return_frame_matches_pamqp():
    texts = ["NO_ROUTE", "NO_CONSUMERS", "", "t" * 255]
    for channel, code, text in itertools.product([1, 65535], [312, 313, 311], texts):
        for exchange, rk in itertools.product(EXCHANGES, ROUTING_KEYS):
            expected = pframe.marshal(C.Basic.Return(code, text, exchange, rk), channel)
            got = codec.return_frame(channel, code, text, codec.exchange_routing_key(exchange, rk))
            assert got == expected


@pytest.mark.parametrize("channel", CHANNELS)
def test_ack_frame_matches_pamqp(channel):
    for tag, multiple in itertools.product(TAGS, (False, True)):
        expected = pframe.marshal(C.Basic.Ack(s64(tag), multiple), channel)
        assert codec.ack_frame(channel, tag, multiple) == expected
        # and our decoder reads our encoder
        assert codec.decode_ack(codec.ack_frame(channel, tag, multiple)[7:-1]) == (tag, multiple)


@pytest.mark.parametrize("channel", CHANNELS)
def test_nack_frame_matches_pamqp(channel):
    """Publisher nacks carry requeue=false (the field is meaningless server->client)."""
    for tag, multiple in itertools.product(TAGS, (False, True)):
        expected = pframe.marshal(C.Basic.Nack(s64(tag), multiple, requeue=False), channel)
        assert codec.nack_frame(channel, tag, multiple) == expected
        _ch, obj = pamqp_unmarshal(codec.nack_frame(channel, tag, multiple))
        assert (obj.delivery_tag % 2**64, obj.multiple) == (tag, multiple)


def test_hot_encoders_with_names_pamqp_refuses():
    """Names RabbitMQ accepts but pamqp's validate() refuses still encode, and pamqp's
    (non-validating) decoder reads them back."""
    names = ["é*名", "a" * 255, "amq.gen-😀", "sp ace*#"]
    for name in names:
        with pytest.raises(ValueError):
            C.Basic.Deliver("c", 1, False, name, "rk")
        xrk = codec.exchange_routing_key(name, name)
        _ch, obj = pamqp_unmarshal(codec.deliver_frame(9, codec.shortstr(name), 2**64 - 1, True, xrk))
        assert (obj.consumer_tag, obj.delivery_tag % 2**64, obj.redelivered, obj.exchange,
                obj.routing_key) == (name, 2**64 - 1, True, name, name)
        _ch, obj = pamqp_unmarshal(codec.get_ok_frame(9, 7, False, xrk, 3))
        assert (obj.delivery_tag, obj.redelivered, obj.exchange, obj.routing_key, obj.message_count) == (
            7, False, name, name, 3)
        _ch, obj = pamqp_unmarshal(codec.return_frame(9, 312, "NO_ROUTE", xrk))
        assert (obj.reply_code, obj.reply_text, obj.exchange, obj.routing_key) == (312, "NO_ROUTE", name, name)
        # the generic (validate-free) encoder agrees with the hot one
        # (pamqp's longlong encoder is signed, hence a tag below 2**63 here)
        assert codec.encode(9, C.Basic.Deliver, consumer_tag=name, delivery_tag=2**63 - 1, redelivered=True,
                            exchange=name, routing_key=name) == codec.deliver_frame(
            9, codec.shortstr(name), 2**63 - 1, True, xrk)


def test_shortstr_limits():
    assert codec.shortstr("") == b"\x00"
    assert codec.shortstr("é") == b"\x02\xc3\xa9"
    assert codec.shortstr("x" * 255) == b"\xff" + b"x" * 255
    with pytest.raises(ValueError):
        codec.shortstr("x" * 256)
    with pytest.raises(ValueError):
        codec.shortstr("é" * 128)  # 256 bytes
    with pytest.raises(ValueError):
        codec.exchange_routing_key("", "k" * 256)


# --------------------------------------------------------------------------- content frames


def _pamqp_content(channel, header_obj, body, frame_max):
    out = [pframe.marshal(header_obj, channel)]
    chunk = frame_max - 8
    for start in range(0, len(body), chunk):
        out.append(pframe.marshal(pbody.ContentBody(body[start : start + chunk]), channel))
    return b"".join(out)


@pytest.mark.parametrize("frame_max", [4096, 8192, 131072])
def test_content_frames_match_pamqp(frame_max):
    chunk = frame_max - 8
    props = C.Basic.Properties(content_type="application/json", headers={"k": "v", "n": 2**40},
                               delivery_mode=2, priority=3, message_id="m1", app_id="app")
    rng = random.Random(frame_max)
    for size in (0, 1, 2, chunk - 1, chunk, chunk + 1, 2 * chunk, 2 * chunk + 1, 3 * chunk + 17):
        body = rng.randbytes(size)
        header_obj = pheader.ContentHeader(0, size, props)
        raw_header = header_obj.marshal()
        for channel in (1, 65535):
            got = codec.content_frames(channel, raw_header, body, frame_max)
            assert got == _pamqp_content(channel, header_obj, body, frame_max), (size, channel)


def test_content_frames_empty_body_is_header_only():
    header = pheader.ContentHeader(0, 0, C.Basic.Properties()).marshal()
    got = codec.content_frames(1, header, b"", 4096)
    assert got == raw_frame(2, 1, header)
    frames, offset = codec.parse_frames(got, 0, 4096)
    assert [f[0] for f in frames] == [2] and offset == len(got)


def test_content_frames_respect_frame_max_and_reassemble():
    header = pheader.ContentHeader(0, 0, C.Basic.Properties()).marshal()
    rng = random.Random(7)
    for frame_max in (4096, 5000, 131072):
        for size in (1, 4087, 4088, 4089, 10_000, 300_001):
            body = rng.randbytes(size)
            data = codec.content_frames(3, header, body, frame_max)
            frames, offset = codec.parse_frames(data, 0, frame_max)  # would raise if too large
            assert offset == len(data)
            assert frames[0] == (2, 3, header)
            assert all(t == 3 and ch == 3 for t, ch, _p in frames[1:])
            assert all(len(p) + 8 <= frame_max for _t, _c, p in frames)
            assert all(len(p) == frame_max - 8 for _t, _c, p in frames[1:-1])
            assert b"".join(p for _t, _c, p in frames[1:]) == body
            assert len(frames) - 1 == -(-size // (frame_max - 8))


def test_content_frames_frame_max_zero_means_unlimited():
    """frame_max 0 is AMQP's "no limit" (parse_frames treats it so, and Broker(frame_max=0) is
    accepted): the body must go out whole, not vanish."""
    header = pheader.ContentHeader(0, 10_000, C.Basic.Properties()).marshal()
    body = b"b" * 10_000
    assert codec.content_frames(1, header, body, 0) == raw_frame(2, 1, header) + raw_frame(3, 1, body)


def test_content_frames_header_forwarded_byte_for_byte():
    # a header pamqp could never produce (cluster-id set, empty content-type present)
    header = b"\x00\x3c\x00\x00" + struct.pack(">Q", 3) + b"\x80\x04" + b"\x00" + b"\x02id"
    data = codec.content_frames(1, header, b"abc", 4096)
    assert data == raw_frame(2, 1, header) + raw_frame(3, 1, b"abc")


# --------------------------------------------------------------------------- encode / build


# arguments for the methods pamqp cannot marshal with its defaults alone
SAMPLE_KWARGS = {
    C.Connection.Secure: dict(challenge="chal"),
    C.Connection.SecureOk: dict(response="resp"),
    C.Connection.Close: dict(reply_code=320, reply_text="CONNECTION_FORCED - bye", class_id=0, method_id=0),
    C.Connection.UpdateSecret: dict(new_secret="s", reason="r"),
    C.Channel.Flow: dict(active=True),
    C.Channel.FlowOk: dict(active=False),
    C.Channel.Close: dict(reply_code=406, reply_text="PRECONDITION_FAILED - x", class_id=50, method_id=10),
    C.Queue.DeclareOk: dict(queue="q", message_count=2**32 - 1, consumer_count=7),
    C.Queue.PurgeOk: dict(message_count=12),
    C.Queue.DeleteOk: dict(message_count=0),
    C.Basic.ConsumeOk: dict(consumer_tag="amq.ctag-1"),
    C.Basic.Cancel: dict(consumer_tag="ct", nowait=True),
    C.Basic.CancelOk: dict(consumer_tag="ct"),
    C.Basic.Return: dict(reply_code=312, reply_text="NO_ROUTE", exchange="e", routing_key="rk"),
    C.Basic.Deliver: dict(consumer_tag="ct", delivery_tag=2**63 - 1, redelivered=True, exchange="e",
                          routing_key="rk"),
    C.Basic.GetOk: dict(delivery_tag=9, redelivered=True, exchange="", routing_key="q", message_count=3),
    C.Basic.Reject: dict(delivery_tag=2**63 - 1, requeue=False),
}

EXTRA_CASES = [
    (C.Connection.Start, dict(version_major=0, version_minor=9,
                              server_properties={"product": "RabbitMQ", "version": "3.10.0",
                                                 "capabilities": {"publisher_confirms": True,
                                                                  "basic.nack": True}},
                              mechanisms="PLAIN AMQPLAIN", locales="en_US")),
    (C.Connection.Tune, dict(channel_max=2047, frame_max=131072, heartbeat=60)),
    (C.Connection.OpenOk, dict()),
    (C.Connection.Blocked, dict(reason="low on memory")),
    (C.Basic.Nack, dict(delivery_tag=5, multiple=True, requeue=True)),
    (C.Basic.Nack, dict(delivery_tag=5, multiple=False, requeue=True)),
    (C.Basic.Nack, dict(delivery_tag=5, multiple=True, requeue=False)),
    (C.Exchange.Declare, dict(exchange="e", exchange_type="headers", passive=True, durable=True,
                              auto_delete=True, internal=True, nowait=True,
                              arguments={"alternate-exchange": "ae"})),
    (C.Queue.Declare, dict(queue="q", passive=False, durable=True, exclusive=False, auto_delete=True,
                           nowait=True, arguments={"x-message-ttl": 1000})),
    (C.Basic.Consume, dict(queue="q", consumer_tag="c", no_local=True, no_ack=False, exclusive=True,
                           nowait=True, arguments={})),
    (C.Basic.Qos, dict(prefetch_size=0, prefetch_count=65535, global_=True)),
    (C.Basic.GetEmpty, dict()),
    (C.Basic.Recover, dict(requeue=True)),
    (C.Channel.OpenOk, dict()),
    (C.Confirm.SelectOk, dict()),
]


def _all_cases():
    for cls in C.INDEX_MAPPING.values():
        yield cls, SAMPLE_KWARGS.get(cls, {})
    yield from EXTRA_CASES


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Basic.RecoverAsync
@pytest.mark.parametrize("cls,kwargs", list(_all_cases()), ids=lambda v: getattr(v, "name", ""))
def test_encode_matches_pamqp_for_every_method(cls, kwargs):
    expected = pframe.marshal(cls(**kwargs), 5)
    assert codec.encode(5, cls, **kwargs) == expected


def test_encode_queue_declare_ok_with_names_pamqp_refuses():
    for name in ("é*名", "a*", "amq.gen-ü", "sp ace*"):
        with pytest.raises(ValueError):
            C.Queue.DeclareOk(name, 0, 0)
    for name in ("é*名", "a*", "amq.gen-ü", "q" * 200, "é" * 100, "x" * 255):
        data = codec.encode(1, C.Queue.DeclareOk, queue=name, message_count=5, consumer_count=2)
        channel, obj = pamqp_unmarshal(data)
        assert channel == 1
        assert (obj.queue, obj.message_count, obj.consumer_count) == (name, 5, 2)
        assert data[7:11] == b"\x00\x32\x00\x0b"
    with pytest.raises(ValueError):
        codec.encode(1, C.Queue.DeclareOk, queue="q" * 256, message_count=0, consumer_count=0)


def test_encode_other_unvalidated_names():
    data = codec.encode(2, C.Basic.ConsumeOk, consumer_tag="tag*é")
    assert pamqp_unmarshal(data)[1].consumer_tag == "tag*é"
    data = codec.encode(2, C.Basic.Return, reply_code=312, reply_text="NO_ROUTE", exchange="e*x",
                        routing_key="é")
    obj = pamqp_unmarshal(data)[1]
    assert (obj.exchange, obj.routing_key) == ("e*x", "é")


def test_build_uses_pamqp_defaults_and_skips_validate():
    obj = codec.build(C.Basic.Nack, delivery_tag=3)
    assert (obj.delivery_tag, obj.multiple, obj.requeue) == (3, False, True)
    obj = codec.build(C.Queue.DeclareOk, queue="é*", message_count=1, consumer_count=0)
    assert obj.queue == "é*"
    obj = codec.build(C.Exchange.Declare, exchange="bad name*")
    assert (obj.exchange, obj.exchange_type, obj.ticket) == ("bad name*", "direct", 0)
    assert not any((obj.passive, obj.durable, obj.auto_delete, obj.internal, obj.nowait))


def test_method_frame():
    assert codec.method_frame(7, b"\x00\x14\x00\x0b") == raw_frame(1, 7, b"\x00\x14\x00\x0b")


# --------------------------------------------------------------------------- typed tables


def _typed_table_bytes(items) -> bytes:
    """Hand-encode a field table from (key, letter, raw value bytes) so any type letter can be
    used, including those pamqp's encoder never picks ('I' for a small int, 'l', 'd', 'x')."""
    body = b"".join(bytes([len(k.encode())]) + k.encode() + letter + raw for k, letter, raw in items)
    return struct.pack(">I", len(body)) + body


TYPED_ITEMS = [
    ("bool-t", b"t", b"\x01", ("t", True)),
    ("bool-f", b"t", b"\x00", ("t", False)),
    ("byte", b"b", b"\xff", ("b", -1)),
    ("ubyte", b"B", b"\xff", ("B", 255)),
    ("short", b"s", struct.pack(">h", -2), ("s", -2)),
    ("ushort", b"u", struct.pack(">H", 65535), ("u", 65535)),
    ("signedint", b"I", struct.pack(">i", 5), ("I", 5)),
    ("signedint-neg", b"I", struct.pack(">i", -(2**31)), ("I", -(2**31))),
    ("unsignedint", b"i", struct.pack(">I", 2**32 - 1), ("i", 2**32 - 1)),
    ("long", b"l", struct.pack(">q", 5), ("l", 5)),
    ("long-big", b"l", struct.pack(">q", -(2**63)), ("l", -(2**63))),
    ("float", b"f", struct.pack(">f", 1.5), ("f", 1.5)),
    ("double", b"d", struct.pack(">d", 0.1), ("d", 0.1)),
    ("decimal", b"D", b"\x02" + struct.pack(">I", 12345), ("D", Decimal("123.45"))),
    ("longstr", b"S", struct.pack(">I", 3) + b"abc", ("S", "abc")),
    ("longstr-utf8", b"S", struct.pack(">I", 2) + "é".encode(), ("S", "é")),
    ("timestamp", b"T", struct.pack(">Q", 1_700_000_000),
     ("T", dt.datetime.fromtimestamp(1_700_000_000, tz=dt.timezone.utc))),
    ("table", b"F", pencode.field_table({"a": "b"}), ("F", {"a": "b"})),
    ("array", b"A", pencode.field_array(["x", 1]), ("A", ["x", 1])),
    ("void", b"V", b"", ("V", None)),
    ("binary", b"x", struct.pack(">I", 2) + b"\x00\xff", ("x", bytearray(b"\x00\xff"))),
]


def test_typed_table_keeps_type_letters():
    data = _typed_table_bytes([(k, letter, raw) for k, letter, raw, _e in TYPED_ITEMS])
    table, end = args.typed_table(b"junk" + data + b"trailer", 4)
    assert end == 4 + len(data)
    assert table == {k: expected for k, _l, _r, expected in TYPED_ITEMS}
    # the plain values agree with pamqp's decoder
    plain = pdecode.field_table(data)[1]
    assert {k: v for k, (_letter, v) in table.items()} == plain


def test_typed_table_empty_and_unknown_letter():
    assert args.typed_table(b"\x00\x00\x00\x00", 0) == ({}, 4)
    with pytest.raises(ValueError):
        args.typed_table(_typed_table_bytes([("k", b"Q", b"\x00")]), 0)


def _queue_declare_payload(queue: str, table: bytes, bits: int = 0) -> bytes:
    return (struct.pack(">HHH", 50, 10, 0) + codec.shortstr(queue) + bytes([bits]) + table)


def _exchange_declare_payload(exchange: str, type_name: str, table: bytes, bits: int = 0) -> bytes:
    return (struct.pack(">HHH", 40, 10, 0) + codec.shortstr(exchange) + codec.shortstr(type_name)
            + bytes([bits]) + table)


def test_declare_arguments_pika_style_letters():
    """pika sends every int as 'I' (signedint) or 'l' (long); the letter must survive so the
    equivalence error can say "of type 'signedint'"."""
    table = _typed_table_bytes([
        ("x-max-length", b"I", struct.pack(">i", 10)),
        ("x-message-ttl", b"l", struct.pack(">q", 60000)),
        ("x-dead-letter-exchange", b"S", struct.pack(">I", 3) + b"dlx"),
        ("x-single-active-consumer", b"t", b"\x01"),
    ])
    for queue in ("q", "", "é*名", "q" * 255):
        typed = _declare_arguments(_queue_declare_payload(queue, table, bits=0b11111))
        assert typed == {
            "x-max-length": ("I", 10),
            "x-message-ttl": ("l", 60000),
            "x-dead-letter-exchange": ("S", "dlx"),
            "x-single-active-consumer": ("t", True),
        }
    table = _typed_table_bytes([("alternate-exchange", b"S", struct.pack(">I", 2) + b"ae")])
    for name, type_name in (("e", "direct"), ("é*", "x-custom-type"), ("", "topic")):
        assert _declare_arguments(_exchange_declare_payload(name, type_name, table)) == {
            "alternate-exchange": ("S", "ae")}


def test_declare_arguments_on_pamqp_marshalled_frames():
    # pamqp picks the smallest integer type: 10 -> 'b', 1000 -> 's', 40000 -> 'u', 2**31 -> 'i'
    obj = C.Queue.Declare(queue="q", durable=True, arguments={
        "a": 10, "b": 1000, "c": 40000, "d": 2**31, "e": 2**40, "f": "s", "g": True, "h": 1.5})
    typed = _declare_arguments(method_payload(obj))
    assert typed == {"a": ("b", 10), "b": ("s", 1000), "c": ("u", 40000), "d": ("i", 2**31),
                     "e": ("l", 2**40), "f": ("S", "s"), "g": ("t", True), "h": ("f", 1.5)}
    obj = C.Exchange.Declare(exchange="e", exchange_type="fanout", arguments={"alternate-exchange": "ae"})
    assert _declare_arguments(method_payload(obj)) == {"alternate-exchange": ("S", "ae")}
    obj = C.Queue.Declare(queue="q")
    assert _declare_arguments(method_payload(obj)) == {}


def test_only_declare_arguments_are_typed():
    obj = codec.decode_method(method_payload(C.Queue.Bind(queue="q", exchange="e", arguments={"k": 1})))
    assert obj.arguments == {"k": 1} and not isinstance(obj.arguments, args.Arguments)


@pytest.mark.parametrize("value,letter", [
    (True, "t"), (False, "t"),
    (0, "I"), (-1, "I"), (2**31 - 1, "I"), (-(2**31), "I"),
    (2**31, "l"), (-(2**31) - 1, "l"), (2**62, "l"),
    (1.5, "d"), (Decimal("1.5"), "D"),
    ("s", "S"), (b"b", "S"),
    ({"a": 1}, "F"), ([1, 2], "A"),
    (dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), "T"),
    (None, "V"),
])
def test_guess_typed(value, letter):
    assert args.guess_typed({"k": value}) == {"k": (letter, value)}


def test_guess_typed_empty():
    assert args.guess_typed({}) == {}
    assert args.guess_typed(None) == {}


def _declare_arguments(payload: bytes) -> dict:
    """The typed arguments of a declare method, as the codec decodes them."""
    return codec.decode_method(payload).arguments.typed
