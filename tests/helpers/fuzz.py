"""Raw AMQP wire encoding and the seeded fuzz-input generator used by the robustness tests.

No pamqp validation here: the point is to send what pamqp would refuse to build. A failing fuzz
case is reported with its seed and case number: `_replay(seed, n)` rebuilds exactly the same
bytes (and `helpers.robust.drive(url, data)` sends them again).
"""

from __future__ import annotations

import random
import struct

from pamqp import commands as C
from pamqp import encode as pencode

from helpers.raw import raw_frame

FRAME_MAX = 131072  # what our broker proposes in connection.tune
PROBE_CHANNEL = 2047  # the fuzz never opens it, so channel.open on it must get open-ok
MAX_MESSAGE_SIZE = 134217728

REPLY_NAMES = {
    311: "CONTENT_TOO_LARGE", 312: "NO_ROUTE", 313: "NO_CONSUMERS", 320: "CONNECTION_FORCED",
    402: "INVALID_PATH", 403: "ACCESS_REFUSED", 404: "NOT_FOUND", 405: "RESOURCE_LOCKED",
    406: "PRECONDITION_FAILED", 501: "FRAME_ERROR", 502: "SYNTAX_ERROR", 503: "COMMAND_INVALID",
    504: "CHANNEL_ERROR", 505: "UNEXPECTED_FRAME", 506: "RESOURCE_ERROR", 530: "NOT_ALLOWED",
    540: "NOT_IMPLEMENTED", 541: "INTERNAL_ERROR",
}
# What may close a channel (soft errors) or a connection (hard errors) in answer to bad input.
# 541 INTERNAL_ERROR is deliberately absent: it means the broker itself failed.
CHANNEL_CLOSE_CODES = {311, 312, 313, 403, 404, 405, 406}
CONNECTION_CLOSE_CODES = {501, 502, 503, 504, 505, 506, 530, 540}


# =============================================================================================
# Wire encoding (no pamqp validation: we want to send what pamqp would refuse to build)


def shortstr(value) -> bytes:
    value = value if value is not None else b""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    raw = raw[:255]
    return bytes((len(raw),)) + raw


def longstr(value) -> bytes:
    value = value if value is not None else b""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return struct.pack(">I", len(raw)) + raw


def _table(value) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)  # already a wire table (possibly a corrupt one, on purpose)
    return pencode.field_table(value or {})


_ENCODERS = {
    "shortstr": shortstr,
    "longstr": longstr,
    "octet": lambda v: struct.pack(">B", (v or 0) & 0xFF),
    "short": lambda v: struct.pack(">H", (v or 0) & 0xFFFF),
    "long": lambda v: struct.pack(">I", (v or 0) & 0xFFFFFFFF),
    "longlong": lambda v: struct.pack(">Q", (v or 0) & 0xFFFFFFFFFFFFFFFF),
    "timestamp": lambda v: struct.pack(">Q", (v or 0) & 0xFFFFFFFFFFFFFFFF),
    "table": _table,
}


def method_parts(cls, values: dict) -> list[tuple[str, bytes]]:
    """The method payload as (amqp type, wire bytes) parts, class/method id first; bits are
    packed into octets as the spec says."""
    parts: list[tuple[str, bytes]] = [("index", struct.pack(">I", cls.index))]
    bits, nbits = None, 0
    for name in cls.__slots__:
        kind = cls.amqp_type(name)
        value = values.get(name)
        if kind == "bit":
            if bits is None:
                bits, nbits = 0, 0
            if value:
                bits |= 1 << nbits
            nbits += 1
            if nbits == 8:
                parts.append(("bits", bytes((bits,))))
                bits = None
            continue
        if bits is not None:
            parts.append(("bits", bytes((bits,))))
            bits = None
        parts.append((kind, _ENCODERS[kind](value)))
    if bits is not None:
        parts.append(("bits", bytes((bits,))))
    return parts


def method(channel: int, cls, **values) -> bytes:
    return raw_frame(1, channel, b"".join(p for _k, p in method_parts(cls, values)))


def content_header(channel: int, body_size: int, props: bytes = b"\x00\x00", class_id: int = 60,
                   weight: int = 0) -> bytes:
    return raw_frame(2, channel, struct.pack(">HHQ", class_id, weight, body_size) + props)


def body(channel: int, data: bytes) -> bytes:
    return raw_frame(3, channel, data)


def publish(channel: int, data: bytes, exchange: str = "", routing_key: str = "",
            props: bytes = b"\x00\x00") -> bytes:
    out = [method(channel, C.Basic.Publish, exchange=exchange, routing_key=routing_key),
           content_header(channel, len(data), props)]
    for i in range(0, len(data), FRAME_MAX - 8):
        out.append(body(channel, data[i : i + FRAME_MAX - 8]))
    return b"".join(out)


def missing_bytes(data: bytes) -> int:
    """How many zero bytes would complete the frame the broker's framer is left waiting for
    after `data` (0: it is not waiting). Mirrors rabbit_reader: a frame larger than frame_max
    or with a bad frame-end byte is an immediate error, so only a short tail means "waiting".
    With the zeros, the frame ends in a bad frame-end byte (or announces a size above
    frame_max), which must get 501."""
    off, n = 0, len(data)
    while off < n:
        if n - off < 7:
            header = data[off:] + b"\x00" * (7 - (n - off))
            size = struct.unpack_from(">BHI", header)[2]
            return (7 - (n - off)) + (0 if size > FRAME_MAX else size + 1)
        _t, _ch, size = struct.unpack_from(">BHI", data, off)
        if size > FRAME_MAX:
            return 0
        end = off + 7 + size
        if end >= n:
            return end + 1 - n
        if data[end] != 0xCE:
            return 0
        off = end + 1
    return 0


# =============================================================================================
# Random values


_NAME_POOL = [
    "", "fuzz-q-0", "fuzz-q-1", "fuzz-q-2", "fuzz-q-3", "fuzz-x-0", "fuzz-x-1", "fuzz-x-2",
    "fuzz-h", "fuzz-f", "fuzz-t", "fuzz-sink", "amq.direct", "amq.fanout", "amq.topic",
    "amq.headers", "amq.match", "amq.rabbitmq.trace", "amq.gen-fuzz", "amq.rabbitmq.reply-to",
    "amq.rabbitmq.reply-to.bogus", "direct", "fanout", "topic", "headers", "x-unknown-type",
    "#", "*.a.#", "a.b.c", "\u00e9\u00e8", "a" * 255, b"\xff\xfe\x80", b"\x00", "amq.",
]
# Exchange names a fuzzed *binding* may use: never the predeclared amq.* exchanges, so the fuzz
# cannot leave bindings on them that other tests sharing this broker would route through.
_BIND_EXCHANGE_POOL = ["", "fuzz-x-0", "fuzz-x-1", "fuzz-x-2", "fuzz-h", "fuzz-f", "fuzz-t",
                       "fuzz-missing", b"\xff\xfe"]
_BIND_QUEUE_POOL = ["", "fuzz-q-0", "fuzz-q-1", "fuzz-q-2", "fuzz-sink", "fuzz-missing"]
_KEY_POOL = [
    "x-message-ttl", "x-expires", "x-max-length", "x-max-length-bytes", "x-dead-letter-exchange",
    "x-dead-letter-routing-key", "x-max-priority", "x-overflow", "x-queue-mode",
    "x-single-active-consumer", "x-queue-type", "x-queue-version", "x-queue-master-locator",
    "x-max-in-memory-length", "x-max-in-memory-bytes", "x-match", "alternate-exchange",
    "x-priority", "x-cancel-on-ha-failover", "CC", "BCC", "k", "x-k", "",
]
_STR_POOL = [
    "all", "any", "all-with-x", "any-with-x", "bogus", "drop-head", "reject-publish",
    "reject-publish-dlx", "lazy", "default", "classic", "quorum", "stream", "fuzz-x-0",
    "amq.fanout", "fuzz-q-0", "", "guest", "amq.rabbitmq.reply-to",
]
_TABLE_LETTERS = "tbBsuIilLfdDSATFVx"


def _rand_int_bytes(rng: random.Random, fmt: str) -> bytes:
    size = struct.calcsize(fmt)
    choice = rng.random()
    if choice < 0.3:
        return b"\x00" * (size - 1) + bytes((rng.choice((0, 1, 5, 100)),))
    if choice < 0.5:
        return b"\xff" * size
    if choice < 0.6:
        return b"\x80" + b"\x00" * (size - 1)
    return rng.randbytes(size)


def rand_value(rng: random.Random, depth: int = 0, key: str = "") -> bytes:
    """One field-table value (type letter + bytes), of any type, now and then corrupt."""
    if key in ("CC", "BCC") and rng.random() < 0.6:
        items = [b"S" + longstr(rng.choice(_NAME_POOL)) for _ in range(rng.randint(0, 3))]
        if rng.random() < 0.3:
            items.append(rand_value(rng, depth + 1))
        inner = b"".join(items)
        return b"A" + struct.pack(">I", len(inner)) + inner
    letter = rng.choice(_TABLE_LETTERS)
    if depth > 2 and letter in "AF":
        letter = "V"
    if rng.random() < 0.03:
        return rng.choice([b"Z", b"U", b"\x00", b"X"]) + rng.randbytes(rng.randint(0, 4))
    if letter == "t":
        return b"t" + bytes((rng.choice((0, 1, 2, 255)),))
    if letter in "bBsuIilL":
        fmt = {"b": ">b", "B": ">B", "s": ">h", "u": ">H", "I": ">i", "i": ">I", "l": ">q",
               "L": ">Q"}[letter]
        return letter.encode() + _rand_int_bytes(rng, fmt)
    if letter == "f":
        return b"f" + rng.choice([struct.pack(">f", 1.5), b"\x7f\xc0\x00\x00", rng.randbytes(4)])
    if letter == "d":
        return b"d" + rng.choice([struct.pack(">d", 2.5), struct.pack(">d", float("nan")),
                                  struct.pack(">d", float("inf")), rng.randbytes(8)])
    if letter == "D":
        return b"D" + bytes((rng.choice((0, 2, 255)),)) + _rand_int_bytes(rng, ">I")
    if letter == "S":
        value = rng.choice(_STR_POOL + [rng.randbytes(rng.randint(0, 8))])
        return b"S" + longstr(value)
    if letter == "x":
        return b"x" + longstr(rng.randbytes(rng.randint(0, 8)))
    if letter == "T":
        return b"T" + rng.choice([struct.pack(">Q", 1700000000), b"\xff" * 8,
                                  b"\x7f" + b"\xff" * 7, rng.randbytes(8)])
    if letter == "V":
        return b"V"
    if letter == "A":
        inner = b"".join(rand_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
        return b"A" + struct.pack(">I", len(inner)) + inner
    return b"F" + rand_table(rng, depth + 1)


def rand_table(rng: random.Random, depth: int = 0) -> bytes:
    """A wire field table with interesting keys and values of every type; sometimes corrupt
    (bad lengths, keys that are not UTF-8)."""
    entries = []
    for _ in range(rng.randint(0, 4)):
        key = rng.choice(_KEY_POOL)
        kraw = key.encode()
        if rng.random() < 0.05:
            kraw = b"\xff\xfe"
        entries.append(shortstr(kraw) + rand_value(rng, depth, key))
    inner = b"".join(entries)
    length = len(inner)
    r = rng.random()
    if r < 0.04:
        length += rng.randint(1, 10)
    elif r < 0.08 and length:
        length -= rng.randint(1, length)
    elif r < 0.09:
        length = 0xFFFFFFFF
    return struct.pack(">I", length) + inner


def rand_shortstr(rng: random.Random):
    if rng.random() < 0.85:
        return rng.choice(_NAME_POOL)
    return rng.randbytes(rng.randint(0, 12))


def rand_field(rng: random.Random, kind: str, name: str):
    if kind == "bit":
        return rng.random() < 0.5
    if kind == "shortstr":
        return rand_shortstr(rng)
    if kind == "longstr":
        return rng.randbytes(rng.randint(0, 20))
    if kind == "table":
        return rand_table(rng)
    limit = {"octet": 0xFF, "short": 0xFFFF, "long": 0xFFFFFFFF}.get(kind, 2**64 - 1)
    return rng.choice([0, 1, 2, 5, 100, limit, rng.randint(0, limit)])


ALL_METHODS = [
    cls
    for cname in ("Connection", "Channel", "Exchange", "Queue", "Basic", "Tx", "Confirm")
    for cls in vars(getattr(C, cname)).values()
    if isinstance(cls, type) and getattr(cls, "index", 0) and cls.__name__ != "Properties"
]
_BINDING_METHODS = {C.Queue.Bind, C.Queue.Unbind, C.Exchange.Bind, C.Exchange.Unbind}


_EXCHANGE_TYPES = ["direct", "fanout", "topic", "headers", "x-consistent-hash", ""]
_QUEUE_POOL = ["", "fuzz-q-0", "fuzz-q-1", "fuzz-q-2", "fuzz-q-3", "fuzz-sink", "amq.rabbitmq.reply-to"]


def rand_method_values(rng: random.Random, cls) -> dict:
    values = {}
    for name in cls.__slots__:
        kind = cls.amqp_type(name)
        value = rand_field(rng, kind, name)
        if name == "exchange_type" and rng.random() < 0.8:
            value = rng.choice(_EXCHANGE_TYPES)
        elif name == "queue" and rng.random() < 0.7:
            value = rng.choice(_QUEUE_POOL)
        elif name == "reply_code" and rng.random() < 0.7:
            value = 200
        if cls in _BINDING_METHODS and name in ("exchange", "source", "destination"):
            pool = _BIND_EXCHANGE_POOL if name != "destination" or cls is C.Exchange.Bind \
                or cls is C.Exchange.Unbind else _BIND_QUEUE_POOL
            value = rng.choice(pool)
        if cls in _BINDING_METHODS and name == "queue":
            value = rng.choice(_BIND_QUEUE_POOL)
        values[name] = value
    return values


def mutate_method(rng: random.Random, parts: list[tuple[str, bytes]]) -> bytes:
    """Correctly marshalled method payload, often with one structural mutation."""
    mutation = rng.choice(("none",) * 6 + ("flip", "truncate", "extend", "shortstr-len",
                                           "table-len", "table-junk", "index"))
    parts = list(parts)
    payload = b"".join(p for _k, p in parts)
    if mutation == "none":
        return payload
    if mutation == "flip":
        data = bytearray(payload)
        start = 4 if rng.random() < 0.8 and len(data) > 4 else 0
        for _ in range(rng.randint(1, 3)):
            if len(data) > start:
                data[rng.randrange(start, len(data))] ^= 1 << rng.randrange(8)
        return bytes(data)
    if mutation == "truncate":
        return payload[: rng.randint(0, max(0, len(payload) - 1))]
    if mutation == "extend":
        return payload + rng.randbytes(rng.randint(1, 16))
    if mutation == "index":
        return struct.pack(">HH", rng.choice((10, 20, 40, 50, 60, 85, 90, rng.randrange(65536))),
                           rng.randrange(200)) + payload[4:]
    wanted = "shortstr" if mutation == "shortstr-len" else "table"
    spots = [i for i, (k, _p) in enumerate(parts) if k == wanted]
    if not spots:
        return payload[:-1] if len(payload) > 4 else payload
    i = rng.choice(spots)
    kind, raw = parts[i]
    if mutation == "shortstr-len":
        actual = raw[0]
        raw = bytes((rng.choice((255, min(255, actual + 1), min(255, actual + 10),
                                 rng.randrange(256))),)) + raw[1:]
    elif mutation == "table-len":
        raw = struct.pack(">I", rng.choice((0xFFFFFFFF, len(raw), len(raw) + 3, 1,
                                            rng.randrange(1 << 32)))) + raw[4:]
    else:
        junk = rng.randbytes(rng.randint(1, 24))
        raw = struct.pack(">I", len(junk)) + junk
    parts[i] = (kind, raw)
    return b"".join(p for _k, p in parts)


# content headers ------------------------------------------------------------------------------

_PROP_KINDS = ("s", "s", "t", "o", "o", "s", "s", "s", "s", "q", "s", "s", "s", "s")
_EXPIRATIONS = ["0", "100", "60000", "", "-1", "abc", "1e3", " 5", "99999999999999999999",
                "315360000001", "5\u00e9"]


def rand_properties(rng: random.Random) -> bytes:
    """A basic property list: random subset, random values, sometimes corrupt."""
    flags = 0
    values = []
    for index in range(14):
        if rng.random() > 0.3:
            continue
        flags |= 0x8000 >> index
        kind = _PROP_KINDS[index]
        if index == 7:  # expiration
            values.append(shortstr(rng.choice(_EXPIRATIONS)))
        elif index == 11:  # user-id
            values.append(shortstr(rng.choice(["guest", "someone-else", ""])))
        elif index == 6:  # reply-to
            values.append(shortstr(rng.choice(["amq.rabbitmq.reply-to", "r", "amq.rabbitmq.reply-to.x"])))
        elif kind == "s":
            values.append(shortstr(rand_shortstr(rng)))
        elif kind == "o":
            values.append(bytes((rng.choice((0, 1, 2, 9, 255)),)))
        elif kind == "q":
            values.append(rng.randbytes(8))
        else:
            values.append(rand_table(rng))
    props = struct.pack(">H", flags) + b"".join(values)
    r = rng.random()
    if r < 0.1:  # property flags continue in a further word
        props = struct.pack(">H", flags | 1) + rng.randbytes(rng.randint(0, 3)) + props[2:]
    elif r < 0.2:
        props = props[: rng.randint(0, len(props))]
    elif r < 0.3:
        props = rng.randbytes(rng.randint(0, 30))
    return props


def headers_props(rng: random.Random) -> bytes:
    """Only a headers table (the headers exchange and CC/BCC decode it)."""
    return struct.pack(">H", 0x2000) + rand_table(rng)


# =============================================================================================
# Fuzz cases: each returns (category, bytes to send after handshake + channel.open 1)

_PUBLISH_TARGETS = [("", "fuzz-sink"), ("", "fuzz-q-0"), ("", "nowhere"), ("amq.headers", ""),
                    ("amq.match", "k"), ("fuzz-h", ""), ("fuzz-f", "a"), ("fuzz-t", "a.b"),
                    ("amq.fanout", "x"), ("amq.topic", "fuzz"), ("missing-exchange", ""),
                    ("", "amq.rabbitmq.reply-to.bogus")]


def case_random_bytes(rng):
    data = rng.randbytes(rng.choice((1, 3, 7, 8, 20, 100, 500)))
    if rng.random() < 0.3:  # behind a valid frame
        data = method(1, C.Basic.Qos, prefetch_count=1) + data
    return "a:random-bytes", data


def case_random_frames(rng):
    out = []
    for _ in range(rng.randint(1, 4)):
        ftype = rng.choice((0, 1, 1, 2, 3, 4, 7, 8, 8, 9, 65, 206, 255, rng.randrange(256)))
        channel = rng.choice((0, 1, 1, 1, 2, 3, rng.randrange(65536)))
        if channel == PROBE_CHANNEL:
            channel = 1
        size = rng.choice((0, 1, 3, 4, 5, 11, 12, 13, 14, 20, 100, rng.randint(0, 2000)))
        payload = rng.randbytes(size)
        if ftype == 1 and size >= 4 and rng.random() < 0.7:  # a known class/method id
            payload = struct.pack(">I", rng.choice(ALL_METHODS).index) + payload[4:]
        out.append(raw_frame(ftype, channel, payload))
    return "b:random-frames", b"".join(out)


# What a client sends on a channel (the others, server-to-client methods, are tried too)
_CHANNEL_METHODS = [
    cls for cls in ALL_METHODS
    if not cls.__qualname__.startswith("Connection.") and not cls.__name__.endswith("Ok")
    and cls not in (C.Basic.Deliver, C.Basic.Return, C.Basic.GetEmpty)
]


def case_methods(rng):
    out = []
    for _ in range(rng.randint(1, 4)):
        if rng.random() < 0.85:
            cls = rng.choice(_CHANNEL_METHODS)
            channel = 1 if rng.random() < 0.95 else rng.choice((0, 2))
        else:
            cls = rng.choice(ALL_METHODS)
            channel = rng.choice((0, 0, 1))
        parts = method_parts(cls, rand_method_values(rng, cls))
        out.append(raw_frame(1, channel, mutate_method(rng, parts)))
    return "c:methods", b"".join(out)


def case_content(rng):
    """publish / header / body frames on channel 1, scrambled, with lying sizes and
    malformed property lists."""
    exchange, rk = rng.choice(_PUBLISH_TARGETS)
    pub = method(1, C.Basic.Publish, exchange=exchange, routing_key=rk,
                 mandatory=rng.random() < 0.3)
    data = rng.randbytes(rng.choice((0, 1, 10, 300)))
    declared = len(data)
    r = rng.random()
    if r < 0.15:
        declared += rng.randint(1, 50)  # lying: more announced than sent
    elif r < 0.3:
        declared = max(0, declared - rng.randint(1, 5))  # lying: less announced than sent
    props = headers_props(rng) if rng.random() < 0.3 else rand_properties(rng)
    class_id = 60 if rng.random() < 0.9 else rng.choice((0, 50, 61, 65535))
    weight = 0 if rng.random() < 0.95 else 1
    hdr = content_header(1, declared, props, class_id, weight)
    if rng.random() < 0.05:  # a header frame too short to hold class/weight/size/flags
        hdr = raw_frame(2, 1, rng.randbytes(rng.randint(0, 13)))
    bodies = [body(1, data[i : i + 100]) for i in range(0, len(data), 100)]
    frames = [pub, hdr] + bodies
    r = rng.random()
    if r < 0.15:
        rng.shuffle(frames)
    elif r < 0.25:
        del frames[rng.randrange(len(frames))]
    elif r < 0.35:
        frames.insert(rng.randrange(1, len(frames) + 1), rng.choice(
            [method(1, C.Basic.Qos, prefetch_count=2), hdr, pub, raw_frame(8, 1, b""),
             body(1, b"x"), method(1, C.Channel.Close, reply_code=200)]))
    elif r < 0.4:
        frames = frames * 2
    if rng.random() < 0.3:  # consume what gets routed back to this connection
        frames = [method(1, C.Basic.Qos, prefetch_count=rng.choice((0, 1, 5))),
                  method(1, C.Basic.Consume, queue="fuzz-sink", no_ack=rng.random() < 0.5)] + frames
    if rng.random() < 0.15:
        frames = [method(1, C.Confirm.Select)] + frames
    elif rng.random() < 0.1:
        frames = [method(1, C.Tx.Select)] + frames + [method(1, C.Tx.Commit)]
    return "d:content", b"".join(frames)


def nested_table(depth: int) -> bytes:
    table = pencode.field_table({})
    for _ in range(depth):
        inner = shortstr("n") + b"F" + table
        table = struct.pack(">I", len(inner)) + inner
    return table


def case_huge(rng):
    kind = rng.choice(("frame-size", "frame-size", "partial", "body-size", "body-size-big",
                       "table-len", "nested", "nested-headers", "long-array", "shortstr"))
    if kind == "frame-size":  # declared frame size above frame_max: must be refused at once
        size = rng.choice((0xFFFFFFFF, 0x80000000, FRAME_MAX + 1, FRAME_MAX + 9, 10**7))
        return "e:frame-size", struct.pack(">BHI", rng.choice((1, 2, 3)), 1, size) + b"\x00" * 16
    if kind == "partial":  # a legal size, only partly sent: the broker has to wait
        size = rng.choice((FRAME_MAX - 8, 5000, 100))
        return "e:partial", struct.pack(">BHI", 1, 1, size) + struct.pack(">I", C.Queue.Declare.index)
    if kind == "body-size":
        size = rng.choice((2**64 - 1, 2**63, MAX_MESSAGE_SIZE + 1))
        return "e:body-size", (method(1, C.Basic.Publish, routing_key="fuzz-sink")
                               + content_header(1, size) + body(1, b"x" * 10))
    if kind == "body-size-big":  # legal but large: send a little, then a method frame
        return "e:body-size-big", (method(1, C.Basic.Publish, routing_key="fuzz-sink")
                                   + content_header(1, MAX_MESSAGE_SIZE) + body(1, b"y" * 5000)
                                   + method(1, C.Basic.Qos, prefetch_count=1))
    if kind == "table-len":
        parts = method_parts(C.Queue.Declare, {"queue": "fuzz-q-1", "arguments": {}})
        parts[-1] = ("table", struct.pack(">I", rng.choice((0xFFFFFFFF, 2**31, 70000))))
        return "e:table-len", raw_frame(1, 1, b"".join(p for _k, p in parts))
    if kind == "nested":
        depth = rng.choice((50, 400, 3000, 10000))
        return "e:nested", method(1, C.Queue.Declare, queue="fuzz-q-2", arguments=nested_table(depth))
    if kind == "nested-headers":
        depth = rng.choice((50, 400, 3000, 10000))
        props = struct.pack(">H", 0x2000) + nested_table(depth)
        exchange = rng.choice(("amq.headers", "fuzz-h", ""))
        return "e:nested-headers", publish(1, b"n", exchange, "fuzz-sink", props)
    if kind == "long-array":
        inner = b"V" * rng.choice((1000, 60000))
        arr = b"A" + struct.pack(">I", len(inner)) + inner
        table = shortstr("CC") + arr
        props = struct.pack(">H", 0x2000) + struct.pack(">I", len(table)) + table
        return "e:long-array", publish(1, b"a", "", "fuzz-sink", props)
    # shortstr announcing more bytes than the frame holds
    payload = struct.pack(">IH", C.Queue.Declare.index, 0) + b"\xff" + b"abc"
    return "e:shortstr", raw_frame(1, 1, payload)


CATEGORIES = [(case_random_bytes, 60), (case_random_frames, 100), (case_methods, 240),
              (case_content, 140), (case_huge, 60)]
SEED = 20240601


def fuzz_inputs(seed: int = SEED):
    """(case number, category, bytes) for every fuzz case, reproducibly."""
    n = 0
    for make, count in CATEGORIES:
        for _ in range(count):
            rng = random.Random(f"{seed}-{n}")
            category, data = make(rng)
            yield n, category, data
            n += 1


def _replay(seed: int, number: int) -> tuple[str, bytes]:
    for n, category, data in fuzz_inputs(seed):
        if n == number:
            return category, data
    raise KeyError(number)


def count_frames(data: bytes) -> int:
    """How many frames `data` holds as a broker's framer would cut it: whole frames, plus one
    for a trailing piece (an incomplete frame, or bytes after a frame the broker refuses)."""
    off, n, count = 0, len(data), 0
    while off < n:
        if n - off < 8:
            return count + 1
        _t, _ch, size = struct.unpack_from(">BHI", data, off)
        end = off + 7 + size
        if size > FRAME_MAX or end >= n or data[end] != 0xCE:
            return count + 1
        count += 1
        off = end + 1
    return count
