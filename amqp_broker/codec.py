"""AMQP 0-9-1 frame codec, sans-IO.

pamqp's method classes describe every method, and pamqp encodes the rare ones. The few that sit
on the per-message hot path (basic.publish and basic.ack in; basic.deliver, basic.ack, content
frames out) are encoded and decoded here by hand with precompiled structs, because pamqp's
generic codec would cost most of a core at RabbitMQ's rates. tests/test_codec_unit.py checks both
paths agree byte for byte.

Incoming methods are decoded here too (decode_method), never by pamqp's unmarshal, because
RabbitMQ's rules are stricter and its tables more permissive than pamqp's: the fields must parse
exactly (no bytes missing, none left over: 501 "cannot decode <<...>>" naming the method), short
strings must be UTF-8 (except basic.publish's), and field tables go through amqp_broker.tables
(linear, any depth, keys that are not UTF-8, timestamps beyond datetime).

Outgoing frames never go through pamqp's `validate()`: it enforces a stricter name syntax than
RabbitMQ (docs/protocol-notes.md, "Name validation on built frames") and would crash on names RabbitMQ accepts.
"""
from __future__ import annotations

import inspect
import struct

from pamqp import commands
from pamqp import encode as pencode

from . import errors, tables
from .errors import AMQPError
from .args import Arguments
from .erlang_terms import erl_binary, erl_octets

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
# RabbitMQ also takes the old 0-9 header as 0-9-1 (rabbit_reader:handshake/2)
ACCEPTED_HEADERS = (PROTOCOL_HEADER, b"AMQP\x01\x01\x00\x09")

FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"
FRAME_OVERHEAD = 8  # 7-byte header + frame-end

_FRAME_HDR = struct.Struct(">BHI")
_CLASS_METHOD = struct.Struct(">HH")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_HEADER_START = struct.Struct(">HHQ")  # class-id, weight, body-size

HEARTBEAT_FRAME = _FRAME_HDR.pack(FRAME_HEARTBEAT, 0, 0) + FRAME_END_BYTE

# class/method ids as one 32-bit number (pamqp's `index`): the methods the frame loop
# recognises before decoding them
BASIC_PUBLISH = 0x003C0028
BASIC_ACK = 0x003C0050
QUEUE_DECLARE = 0x0032000A
EXCHANGE_DECLARE = 0x0028000A
CONNECTION_CLOSE = 0x000A0032
CONNECTION_CLOSE_OK = 0x000A0033
CHANNEL_OPEN = 0x0014000A
CHANNEL_CLOSE = 0x00140028
CHANNEL_CLOSE_OK = 0x00140029
CLASS_BASIC = 60
PUBLISH_IDS = (BASIC_PUBLISH >> 16, BASIC_PUBLISH & 0xFFFF)  # class/method ids in error replies
_DECLARES = (QUEUE_DECLARE, EXCHANGE_DECLARE)


class FrameError(Exception):
    """Malformed framing: always a hard 501 (or 505) error."""

    def __init__(self, code: int, explanation: str):
        super().__init__(explanation)
        self.code = code
        self.explanation = explanation


# ---------------------------------------------------------------------------------------------
# Incoming frames


def parse_frames(data, offset: int, frame_max: int):
    """Split whole frames out of `data` starting at `offset`.

    Returns (frames, new_offset) where frames is a list of (type, channel, payload) and payload
    is a `bytes`. A frame is returned only when all of it, frame-end byte included, is present
    (pamqp would accept a truncated heartbeat: docs/protocol-notes.md, "Incomplete heartbeat
    accepted").
    """
    frames = []
    n = len(data)
    unpack = _FRAME_HDR.unpack_from
    limit = frame_max - FRAME_OVERHEAD if frame_max else 0
    while n - offset >= 7:
        ftype, channel, size = unpack(data, offset)
        if limit and size > limit + FRAME_OVERHEAD:  # rabbit_reader's ?FRAME_SIZE_FUDGE
            raise FrameError(
                errors.FRAME_ERROR,
                f"type {ftype}, all octets = <<>>: {{frame_too_large,{size},{limit}}}",
            )
        end = offset + 7 + size
        if end >= n:
            break
        payload = bytes(data[offset + 7 : end])
        if data[end] != FRAME_END:
            raise FrameError(
                errors.FRAME_ERROR,
                f"type {ftype}, {payload_snippet(payload)}: {{invalid_frame_end_marker,{data[end]}}}",
            )
        frames.append((ftype, channel, payload))
        offset = end + 1
    return frames, offset


def payload_snippet(payload: bytes) -> str:
    """rabbit_reader:payload_snippet/1: the whole payload up to 16 bytes, else its first 16."""
    if len(payload) <= 16:
        return f"all octets = {erl_binary(payload)}"
    return f"first 16 octets = {erl_binary(payload[:16])}"


def method_index(payload: bytes) -> int:
    return _U32.unpack_from(payload, 0)[0]


def unknown_frame(ftype: int, payload: bytes) -> FrameError:
    """RabbitMQ's text for a frame it cannot make sense of (bad type, truncated method)."""
    return FrameError(errors.FRAME_ERROR, f"type {ftype}, {payload_snippet(payload)}: unknown_frame")


def cannot_decode(index: int, fields: bytes) -> AMQPError:
    """rabbit_misc:frame_error/2: a method whose fields do not parse (truncated, trailing
    bytes, a table that overruns): 501 naming the method."""
    return AMQPError(errors.FRAME_ERROR, f"cannot decode {erl_octets(fields)}", index >> 16, index & 0xFFFF)


class MalformedUtf8(Exception):
    """A method's short string is not UTF-8 (RabbitMQ checks every one but basic.publish's)."""


MALFORMED_UTF8 = "Malformed UTF-8 in shortstr"


def decode_publish(payload: bytes):
    """basic.publish -> (exchange, routing_key, mandatory, immediate).

    The names are not checked for UTF-8 (RabbitMQ does not either: a non-UTF-8 exchange name
    gets its 404); any other deviation (short, trailing bytes) is `cannot decode`.
    """
    n = len(payload)
    if n >= 9:  # 4 id + 2 ticket + 1 + 1 + 1: the shortest possible
        off = 7 + payload[6]
        if off < n:
            end = off + 1 + payload[off]
            if end + 1 == n:
                bits = payload[end]
                return (
                    payload[7:off].decode("utf-8", "surrogateescape"),
                    payload[off + 1 : end].decode("utf-8", "surrogateescape"),
                    bool(bits & 1),
                    bool(bits & 2),
                )
    raise cannot_decode(BASIC_PUBLISH, payload[4:])


def decode_ack(payload: bytes):
    """basic.ack -> (delivery_tag, multiple)."""
    if len(payload) != 13:
        raise cannot_decode(BASIC_ACK, payload[4:])
    return _U64.unpack_from(payload, 4)[0], bool(payload[12] & 1)


_FIXED_FIELDS = {"octet": (1, _U8), "short": (2, _U16), "long": (4, _U32), "longlong": (8, _U64),
                 "timestamp": (8, _U64)}


def _plan(cls) -> list:
    """The fields of a method in wire order: (kind, name), bits grouped 8 to an octet."""
    plan = []
    group = None
    for name in cls.__slots__:
        kind = cls.amqp_type(name)
        if kind == "bit":
            if group is None or len(group) == 8:
                group = []
                plan.append(("bits", group))
            group.append(name)
            continue
        group = None
        plan.append((kind, name))
    return plan


# every method's field plan, computed once at import (pamqp's method classes never change)
_PLANS = {cls: _plan(cls) for cls in commands.INDEX_MAPPING.values()}


def decode_method(payload: bytes):
    """Any method, as a pamqp method object (built without pamqp's decoder or validate()).

    Raises KeyError for an unknown class/method, AMQPError `cannot decode` (501, naming the
    method) when the fields do not parse exactly, MalformedUtf8 when they do but a short string
    is not UTF-8 (such strings are kept with surrogate escapes otherwise). Tables are decoded
    with amqp_broker.tables (linear, any depth).
    """
    index = _U32.unpack_from(payload, 0)[0]
    cls = commands.INDEX_MAPPING[index]
    plan = _PLANS[cls]
    obj = cls.__new__(cls)
    pos = 4
    n = len(payload)
    bad_utf8 = False
    try:
        for kind, name in plan:
            if kind == "shortstr":
                end = pos + 1 + payload[pos]
                if end > n:
                    raise IndexError
                raw = payload[pos + 1 : end]
                try:
                    value = raw.decode("utf-8")
                except UnicodeDecodeError:
                    bad_utf8 = True
                    value = raw.decode("utf-8", "surrogateescape")
                pos = end
            elif kind == "bits":
                bits = payload[pos]
                pos += 1
                for bit, bit_name in enumerate(name):
                    setattr(obj, bit_name, bool(bits & (1 << bit)))
                continue
            elif kind == "table":
                if index in _DECLARES:  # declare arguments keep their AMQP types
                    typed, pos = tables.decode_table(payload, pos, typed=True)
                    value = Arguments(typed)
                else:
                    value, pos = tables.decode_table(payload, pos)
            elif kind == "longstr":
                end = pos + 4 + _U32.unpack_from(payload, pos)[0]
                if end > n:
                    raise IndexError
                raw = payload[pos + 4 : end]
                try:
                    value = raw.decode("utf-8")
                except UnicodeDecodeError:
                    value = raw
                pos = end
            else:
                size, unpacker = _FIXED_FIELDS[kind]
                value = unpacker.unpack_from(payload, pos)[0]
                pos += size
            setattr(obj, name, value)
        if pos != n:
            raise IndexError
    except (IndexError, struct.error, tables.TableError):
        raise cannot_decode(index, payload[4:]) from None
    if bad_utf8:
        raise MalformedUtf8(MALFORMED_UTF8)
    return obj


def decode_content_header(payload: bytes):
    """-> (class_id, body_size). The whole payload is kept raw and forwarded as is."""
    class_id, _weight, body_size = _HEADER_START.unpack_from(payload, 0)
    return class_id, body_size


content_header_fields = _HEADER_START.unpack_from  # (payload, 0) -> (class_id, weight, body_size)


# ---------------------------------------------------------------------------------------------
# Outgoing frames


def shortstr(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        raise ValueError("short string longer than 255 bytes")
    return _U8.pack(len(raw)) + raw


def method_frame(channel: int, payload: bytes) -> bytes:
    return _FRAME_HDR.pack(FRAME_METHOD, channel, len(payload)) + payload + FRAME_END_BYTE


def _marshal_args(obj) -> bytes:
    """pamqp's Frame.marshal without validate() (docs/protocol-notes.md, "Name validation on
    built frames")."""
    byte, offset, output, in_bits = 0, 0, [], False
    for argument in obj.__slots__:
        data_type = obj.amqp_type(argument)
        value = getattr(obj, argument, 0)
        if data_type == "bit":
            if not in_bits:
                byte, offset, in_bits = 0, 0, True
            if value:
                byte |= 1 << offset
            offset += 1
            if offset == 8:
                output.append(_U8.pack(byte))
                in_bits = False
            continue
        if in_bits:
            output.append(_U8.pack(byte))
            in_bits = False
        if data_type == "shortstr":
            output.append(shortstr(value or ""))
        else:
            output.append(pencode.by_type(value, data_type))
    if in_bits:
        output.append(_U8.pack(byte))
    return b"".join(output)


def encode_method(channel: int, obj) -> bytes:
    """A whole method frame for a pamqp method object, without pamqp's name validation."""
    payload = _U32.pack(obj.index) + _marshal_args(obj)
    return method_frame(channel, payload)


def build(cls, **kwargs):
    """Instantiate a pamqp method without running its validate()."""
    obj = cls.__new__(cls)
    defaults = _DEFAULTS[cls]
    for name in cls.__slots__:
        setattr(obj, name, kwargs.get(name, defaults.get(name)))
    return obj


def _defaults_of(cls) -> dict:
    return {
        p.name: p.default
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.default is not inspect.Parameter.empty
    }


# every method's default field values, computed once at import
_DEFAULTS = {cls: _defaults_of(cls) for cls in commands.INDEX_MAPPING.values()}


def encode(channel: int, cls, **kwargs) -> bytes:
    return encode_method(channel, build(cls, **kwargs))


# Hot-path encoders -----------------------------------------------------------------------------

_DELIVER_ID = _CLASS_METHOD.pack(60, 60)
_GETOK_ID = _CLASS_METHOD.pack(60, 71)
_RETURN_ID = _CLASS_METHOD.pack(60, 50)
_ACK_ID = _CLASS_METHOD.pack(60, 80)
_NACK_ID = _CLASS_METHOD.pack(60, 120)
_DELIVER_TAIL = struct.Struct(">QB")


def exchange_routing_key(exchange: str, routing_key: str) -> bytes:
    """The `exchange routing-key` pair as it ends deliver/get-ok/return; cached per message."""
    return shortstr(exchange) + shortstr(routing_key)


def deliver_frame(channel: int, ctag: bytes, delivery_tag: int, redelivered: bool, xrk: bytes) -> bytes:
    """basic.deliver; `ctag` is the consumer tag already encoded as a shortstr."""
    payload = b"".join((_DELIVER_ID, ctag, _DELIVER_TAIL.pack(delivery_tag, redelivered), xrk))
    return _FRAME_HDR.pack(FRAME_METHOD, channel, len(payload)) + payload + FRAME_END_BYTE


def get_ok_frame(channel: int, delivery_tag: int, redelivered: bool, xrk: bytes, message_count: int) -> bytes:
    payload = b"".join(
        (_GETOK_ID, _DELIVER_TAIL.pack(delivery_tag, redelivered), xrk, _U32.pack(message_count))
    )
    return _FRAME_HDR.pack(FRAME_METHOD, channel, len(payload)) + payload + FRAME_END_BYTE


def return_frame(channel: int, reply_code: int, reply_text: str, xrk: bytes) -> bytes:
    payload = b"".join((_RETURN_ID, _U16.pack(reply_code), shortstr(reply_text), xrk))
    return _FRAME_HDR.pack(FRAME_METHOD, channel, len(payload)) + payload + FRAME_END_BYTE


def ack_frame(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    payload = _ACK_ID + _DELIVER_TAIL.pack(delivery_tag, 1 if multiple else 0)
    return _FRAME_HDR.pack(FRAME_METHOD, channel, 13) + payload + FRAME_END_BYTE


def nack_frame(channel: int, delivery_tag: int, multiple: bool) -> bytes:
    payload = _NACK_ID + _DELIVER_TAIL.pack(delivery_tag, 1 if multiple else 0)
    return _FRAME_HDR.pack(FRAME_METHOD, channel, 13) + payload + FRAME_END_BYTE


def content_frames(channel: int, header: bytes, body: bytes, frame_max: int) -> bytes:
    """The content header (forwarded byte for byte) and the body cut to frame_max."""
    pack = _FRAME_HDR.pack
    parts = [pack(FRAME_HEADER, channel, len(header)), header, FRAME_END_BYTE]
    size = len(body)
    if size:
        chunk = frame_max - FRAME_OVERHEAD if frame_max else size  # 0: no limit
        if size <= chunk:
            parts += (pack(FRAME_BODY, channel, size), body, FRAME_END_BYTE)
        else:
            view = memoryview(body)
            for start in range(0, size, chunk):
                piece = view[start : start + chunk]
                parts += (pack(FRAME_BODY, channel, len(piece)), piece, FRAME_END_BYTE)
    return b"".join(parts)
