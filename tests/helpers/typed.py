"""Type-preserving decoding of AMQP field tables, for asserting x-death & co. type by type.

Client libraries turn field tables into dicts and lose the wire type letters ('l' vs 'I', 'T'
vs 'l', 'S' vs 'x') and the key order. This module decodes the raw content-header bytes itself:

    from helpers.typed import raw_get

    msg = raw_get(amqp_url, "dlq-x")          # basic.get over a raw socket, auto-ack
    msg.headers                               # [(key, (type_letter, value)), ...] in wire order
    msg.props["expiration"]                   # other properties, decoded plainly

A decoded field value is a tuple `(letter, value)`; tables are lists of `(key, (letter, value))`
pairs (order kept), arrays are lists of `(letter, value)`.
"""
from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pamqp import commands
from pamqp import frame as pframe

from helpers.raw import PeerClosed, RawConnection, raw_frame

__all__ = [
    "RawClient",
    "RawMessage",
    "as_plain",
    "decode_content_header",
    "decode_table",
    "encode_content_header",
    "encode_table",
    "raw_get",
]

# Property flag bits of basic's content header, highest bit first (AMQP 0-9-1 §4.2.6.1).
_PROPS = [
    ("content_type", "shortstr"),
    ("content_encoding", "shortstr"),
    ("headers", "table"),
    ("delivery_mode", "octet"),
    ("priority", "octet"),
    ("correlation_id", "shortstr"),
    ("reply_to", "shortstr"),
    ("expiration", "shortstr"),
    ("message_id", "shortstr"),
    ("timestamp", "timestamp"),
    ("type", "shortstr"),
    ("user_id", "shortstr"),
    ("app_id", "shortstr"),
    ("cluster_id", "shortstr"),
]


class _Reader:
    def __init__(self, data: bytes, pos: int = 0):
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError(f"truncated field data at {self.pos} (+{n} > {len(self.data)})")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))

    def shortstr(self) -> str:
        (n,) = self.unpack(">B")
        return self.take(n).decode("utf-8")

    def longstr_bytes(self) -> bytes:
        (n,) = self.unpack(">I")
        return self.take(n)


def _value(r: _Reader) -> tuple[str, Any]:
    letter = chr(r.take(1)[0])
    if letter == "t":
        return letter, r.take(1)[0] != 0
    if letter == "b":
        return letter, r.unpack(">b")[0]
    if letter == "B":
        return letter, r.unpack(">B")[0]
    if letter == "s":
        return letter, r.unpack(">h")[0]
    if letter == "u":
        return letter, r.unpack(">H")[0]
    if letter == "I":
        return letter, r.unpack(">i")[0]
    if letter == "i":
        return letter, r.unpack(">I")[0]
    if letter == "l":
        return letter, r.unpack(">q")[0]
    if letter == "L":
        return letter, r.unpack(">Q")[0]
    if letter == "f":
        return letter, r.unpack(">f")[0]
    if letter == "d":
        return letter, r.unpack(">d")[0]
    if letter == "D":
        scale, raw = r.unpack(">Bi")
        return letter, Decimal(raw).scaleb(-scale)
    if letter == "S":
        b = r.longstr_bytes()
        try:
            return letter, b.decode("utf-8")
        except UnicodeDecodeError:
            return letter, b
    if letter == "x":
        return letter, r.longstr_bytes()
    if letter == "T":
        return letter, r.unpack(">Q")[0]
    if letter == "V":
        return letter, None
    if letter == "F":
        return letter, _table(r)
    if letter == "A":
        (n,) = r.unpack(">I")
        end = r.pos + n
        items = []
        while r.pos < end:
            items.append(_value(r))
        if r.pos != end:
            raise ValueError("array overran its length")
        return letter, items
    raise ValueError(f"unknown field type {letter!r} at {r.pos - 1}")


def _table(r: _Reader) -> list[tuple[str, tuple[str, Any]]]:
    (n,) = r.unpack(">I")
    end = r.pos + n
    out = []
    while r.pos < end:
        key = r.shortstr()
        out.append((key, _value(r)))
    if r.pos != end:
        raise ValueError("table overran its length")
    return out


def decode_table(data: bytes) -> list[tuple[str, tuple[str, Any]]]:
    """Decode a field table (with its 4-byte length prefix)."""
    return _table(_Reader(data))


def decode_content_header(payload: bytes) -> tuple[int, int, dict[str, Any]]:
    """(class_id, body_size, properties) of a content-header frame payload.

    `properties["headers"]` is the typed list form; other properties are plain values.
    """
    r = _Reader(payload)
    class_id, _weight, body_size = r.unpack(">HHQ")
    flags: list[int] = []
    while True:
        (word,) = r.unpack(">H")
        flags.append(word)
        if not word & 1:
            break
    bits = []
    for word in flags:
        bits.extend(bool(word & (1 << (15 - i))) for i in range(15))
    props: dict[str, Any] = {}
    for (name, kind), present in zip(_PROPS, bits):
        if not present:
            continue
        if kind == "shortstr":
            props[name] = r.shortstr()
        elif kind == "octet":
            props[name] = r.unpack(">B")[0]
        elif kind == "timestamp":
            props[name] = r.unpack(">Q")[0]
        elif kind == "table":
            props[name] = _table(r)
    return class_id, body_size, props


def as_plain(value: tuple[str, Any]) -> Any:
    """Strip the type letters from a decoded (letter, value) recursively."""
    letter, v = value
    if letter == "F":
        return {k: as_plain(x) for k, x in v}
    if letter == "A":
        return [as_plain(x) for x in v]
    return v


@dataclass
class RawMessage:
    method: Any  # commands.Basic.GetOk / Basic.Deliver
    props: dict[str, Any]
    body: bytes
    header_payload: bytes
    headers: list[tuple[str, tuple[str, Any]]] = field(default_factory=list)

    def header(self, key: str) -> tuple[str, Any]:
        for k, v in self.headers:
            if k == key:
                return v
        raise KeyError(key)

    def header_keys(self) -> list[str]:
        return [k for k, _ in self.headers]


def _read_message(conn: RawConnection, channel: int, deadline: float) -> RawMessage | None:
    """Read method (+ header + bodies) on `channel`; None for basic.get-empty."""
    method = _read_method(conn, deadline)
    if isinstance(method, commands.Basic.GetEmpty):
        return None
    while True:
        ftype, ch, payload = conn.recv_raw_frame(deadline)
        if ftype == 8:
            continue
        assert ftype == 2 and ch == channel, (ftype, ch)
        break
    _cls, body_size, props = decode_content_header(payload)
    body = b""
    while len(body) < body_size:
        ftype, ch, chunk = conn.recv_raw_frame(deadline)
        if ftype == 8:
            continue
        assert ftype == 3 and ch == channel, (ftype, ch)
        body += chunk
    return RawMessage(method, props, body, payload, props.get("headers", []))


def _enc_value(letter: str, v: Any) -> bytes:
    out = letter.encode()
    if letter == "t":
        return out + bytes([1 if v else 0])
    if letter in "bBsuIilLfdT":
        fmt = {"b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i", "i": ">I", "l": ">q",
               "L": ">Q", "f": ">f", "d": ">d", "T": ">Q"}[letter]
        return out + struct.pack(fmt, v)
    if letter == "D":
        scale, raw = v
        return out + struct.pack(">Bi", scale, raw)
    if letter in "Sx":
        b = v.encode() if isinstance(v, str) else bytes(v)
        return out + struct.pack(">I", len(b)) + b
    if letter == "V":
        return out
    if letter == "F":
        return out + encode_table(v)
    if letter == "A":
        inner = b"".join(_enc_value(lt, x) for lt, x in v)
        return out + struct.pack(">I", len(inner)) + inner
    raise ValueError(letter)


def encode_table(items: list[tuple[str, tuple[str, Any]]]) -> bytes:
    """Encode a typed table (the decode_table format) with its length prefix."""
    inner = b""
    for key, (letter, v) in items:
        k = key.encode()
        inner += bytes([len(k)]) + k + _enc_value(letter, v)
    return struct.pack(">I", len(inner)) + inner


def encode_content_header(body_size: int, headers=None, **props: Any) -> bytes:
    """Content-header payload for basic with typed `headers` and plain other properties."""
    values = dict(props)
    if headers is not None:
        values["headers"] = headers
    unknown = set(values) - {name for name, _ in _PROPS}
    if unknown:
        raise ValueError(f"unknown properties {unknown}")
    flags = 0
    data = b""
    for i, (name, kind) in enumerate(_PROPS):
        if name not in values:
            continue
        flags |= 1 << (15 - i)
        v = values[name]
        if kind == "shortstr":
            b = v.encode()
            data += bytes([len(b)]) + b
        elif kind == "octet":
            data += bytes([v])
        elif kind == "timestamp":
            data += struct.pack(">Q", v)
        elif kind == "table":
            data += encode_table(v)
    return struct.pack(">HHQH", 60, 0, body_size, flags) + data


class RawClient:
    """A raw connection with one channel (1) for typed get / ack / reject / publish."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.conn = RawConnection.connect(url, timeout=timeout)
        self.timeout = timeout
        self.conn.open_channel(1)
        self.confirming = False
        self.next_seq = 1

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.conn.close_connection()
        except (PeerClosed, OSError, socket.timeout, AssertionError):
            pass
        self.conn.close()

    def confirm_select(self) -> None:
        self.conn.rpc(commands.Confirm.Select(), 1, commands.Confirm.SelectOk)
        self.confirming = True

    def publish(self, exchange: str, routing_key: str, body: bytes, header_payload: bytes) -> Any:
        """Publish with a hand-built content header; under confirms, wait for ack/nack."""
        method = frame_marshal_method(commands.Basic.Publish(exchange=exchange, routing_key=routing_key))
        out = method + raw_frame(2, 1, header_payload)
        if body:
            out += raw_frame(3, 1, body)
        self.conn.send_bytes(out)
        if self.confirming:
            seq = self.next_seq
            self.next_seq += 1
            deadline = time.monotonic() + self.timeout
            while True:
                msg = _read_method(self.conn, deadline)
                if isinstance(msg, (commands.Basic.Ack, commands.Basic.Nack)):
                    assert msg.delivery_tag == seq, (msg.delivery_tag, seq)
                    return msg
        return None

    def get(self, queue: str, no_ack: bool = False) -> RawMessage | None:
        self.conn.send_frame(commands.Basic.Get(queue=queue, no_ack=no_ack), 1)
        return _read_message(self.conn, 1, time.monotonic() + self.timeout)

    def ack(self, tag: int, multiple: bool = False) -> None:
        self.conn.send_frame(commands.Basic.Ack(delivery_tag=tag, multiple=multiple), 1)

    def reject(self, tag: int, requeue: bool = False) -> None:
        self.conn.send_frame(commands.Basic.Reject(delivery_tag=tag, requeue=requeue), 1)

    def nack(self, tag: int, multiple: bool = False, requeue: bool = False) -> None:
        self.conn.send_frame(
            commands.Basic.Nack(delivery_tag=tag, multiple=multiple, requeue=requeue), 1
        )

    def sync(self) -> None:
        """A round trip on channel 1 (basic.qos), so earlier async methods were processed."""
        self.conn.rpc(commands.Basic.Qos(), 1, commands.Basic.QosOk)


def frame_marshal_method(method) -> bytes:
    return pframe.marshal(method, 1)


def _read_method(conn: RawConnection, deadline: float):
    while True:
        ftype, ch, payload = conn.recv_raw_frame(deadline)
        if ftype == 8:
            continue
        if ftype != 1:
            raise AssertionError(f"expected a method frame, got type {ftype}")
        _c, _ch, obj = pframe.unmarshal(raw_frame(1, ch, payload))
        if isinstance(obj, (commands.Channel.Close, commands.Connection.Close)):
            raise AssertionError(f"closed: {obj.reply_code} {obj.reply_text}")
        return obj


def raw_get(url: str, queue: str, timeout: float = 5.0, wait: float = 0.0) -> RawMessage | None:
    """basic.get (no_ack) over a fresh raw connection; polls for up to `wait` seconds."""
    deadline_wait = time.monotonic() + wait
    with RawClient(url, timeout=timeout) as client:
        while True:
            msg = client.get(queue, no_ack=True)
            if msg is not None or time.monotonic() >= deadline_wait:
                return msg
            time.sleep(0.05)
