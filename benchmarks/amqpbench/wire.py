"""AMQP 0-9-1 wire helpers for the hot paths: plain struct, no pamqp."""
from __future__ import annotations

import struct


FRAME_END = b"\xce"
_FH = struct.Struct(">BHI")          # frame type, channel, payload size
_FH_unpack = _FH.unpack_from
_U32_unpack = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q")
_U64_unpack = _U64.unpack_from
_U64_pack = _U64.pack
_ACK = struct.Struct(">BHIHHQB")     # method frame basic.ack: type, ch, size, class, method, tag, bits

M_DELIVER = (60 << 16) | 60
M_ACK = (60 << 16) | 80
M_NACK = (60 << 16) | 120

# basic properties flags
P_CONTENT_TYPE, P_CONTENT_ENCODING, P_HEADERS, P_DELIVERY_MODE = 1 << 15, 1 << 14, 1 << 13, 1 << 12
P_PRIORITY, P_CORRELATION_ID, P_REPLY_TO, P_EXPIRATION = 1 << 11, 1 << 10, 1 << 9, 1 << 8

DEFAULT_FRAME_MAX = 131072


def _shortstr(s: bytes) -> bytes:
    if len(s) > 255:
        raise ValueError(f"shortstr too long: {s[:40]!r}...")
    return bytes((len(s),)) + s


def method_publish(ch: int, exchange: bytes, routing_key: bytes) -> bytes:
    payload = struct.pack(">HHH", 60, 40, 0) + _shortstr(exchange) + _shortstr(routing_key) + b"\x00"
    return _FH.pack(1, ch, len(payload)) + payload + FRAME_END


def content_frames(ch: int, flags: int, props: bytes, body: bytes, frame_max: int) -> bytes:
    hp = struct.pack(">HHQH", 60, 0, len(body), flags) + props
    out = [_FH.pack(2, ch, len(hp)), hp, FRAME_END]
    step = frame_max - 8
    for i in range(0, len(body), step):
        chunk = body[i:i + step]
        out += [_FH.pack(3, ch, len(chunk)), chunk, FRAME_END]
    return b"".join(out)


def ack_frame(ch: int, tag: int, multiple: bool = True) -> bytes:
    return _ACK.pack(1, ch, 13, 60, 80, tag, 1 if multiple else 0) + FRAME_END


def parse_rpc_props(buf, p: int) -> tuple[bytes | None, bytes | None]:
    """(correlation_id, reply_to) from a content-header payload starting at p (class id)."""
    flags = (buf[p + 12] << 8) | buf[p + 13]
    i = p + 14
    if flags & P_CONTENT_TYPE:
        i += 1 + buf[i]
    if flags & P_CONTENT_ENCODING:
        i += 1 + buf[i]
    if flags & P_HEADERS:
        i += 4 + _U32_unpack(buf, i)[0]
    if flags & P_DELIVERY_MODE:
        i += 1
    if flags & P_PRIORITY:
        i += 1
    corr = reply_to = None
    if flags & P_CORRELATION_ID:
        n = buf[i]
        corr = bytes(buf[i + 1:i + 1 + n])
        i += 1 + n
    if flags & P_REPLY_TO:
        n = buf[i]
        reply_to = bytes(buf[i + 1:i + 1 + n])
    return corr, reply_to
