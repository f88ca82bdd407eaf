"""Reading and splicing basic.properties inside a raw content header.

The broker forwards every content header byte for byte (decoding and re-encoding changes
values: see "Re-encoding changes values" in docs/protocol-notes.md). It only needs a few
properties (delivery-mode, priority, expiration, reply-to, user-id, and the headers table for
the headers exchange and CC/BCC), so it walks the property list once, remembering where each
property sits. When the broker itself must change a property (direct reply-to rewrites
reply-to, BCC is stripped) it splices the new bytes in and leaves every other byte untouched.
"""
from __future__ import annotations

import functools
import struct

from . import tables

# Property order and wire types, highest flag bit first (AMQP 0-9-1 basic class).
CONTENT_TYPE, CONTENT_ENCODING, HEADERS, DELIVERY_MODE, PRIORITY, CORRELATION_ID, REPLY_TO, \
    EXPIRATION, MESSAGE_ID, TIMESTAMP, TYPE, USER_ID, APP_ID, CLUSTER_ID = range(14)

_KINDS = ("s", "s", "t", "o", "o", "s", "s", "s", "s", "q", "s", "s", "s", "s")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_HEAD = 12  # class-id(2) weight(2) body-size(8)


@functools.lru_cache(maxsize=4096)
def _layout(flags: int) -> tuple:
    """flag word -> ((index, kind), ...) of the properties present (a pure function, memoised:
    publishers send few distinct property sets)."""
    return tuple((i, _KINDS[i]) for i in range(14) if flags & (0x8000 >> i))


# peek_publish results for the commonest header (delivery-mode alone), shared
_MODE_ONLY = {1: (1, None), 2: (2, None)}
_NO_PROPERTIES = (None, None)


def has_properties(header: bytes) -> bool:
    """Whether the property flags (bytes 12-13) announce any property at all: lets the
    per-message paths skip parsing a header that has none."""
    return bool(header[12] or header[13])


def peek_publish(header: bytes):
    """The publish hot path's look at a content header: -> (delivery_mode, expiration text)
    when the property list is one of the two common well-formed shapes — nothing, delivery-mode
    alone, or [delivery-mode and] expiration alone — else None (use Properties.checked).

    Offsets: class-id(2) weight(2) body-size(8), then the flag word at 12-13; delivery-mode
    is flag 0x1000 (an octet), expiration 0x0100 (a shortstr)."""
    size = len(header)
    if size == 15 and header[12] == 0x10 and not header[13]:
        mode = header[14]
        return _MODE_ONLY.get(mode) or (mode, None)
    if size == 14 and not header[12] and not header[13]:
        return _NO_PROPERTIES
    if size > 16 and header[13] == 0:
        flags = header[12]
        if flags == 0x11:  # delivery-mode and expiration: well-formed when the shortstr ends
            if header[14] in (1, 2) and size == 16 + header[15]:  # exactly at the end
                return header[14], header[16:].decode("utf-8", "surrogateescape")
        elif flags == 0x01 and size == 15 + header[14]:
            return None, header[15:].decode("utf-8", "surrogateescape")
    return None


class PropertyError(ValueError):
    """The property list is malformed."""


class Properties:
    """Where each property sits in a raw header, plus the values the broker reads."""

    __slots__ = ("flags", "spans", "delivery_mode", "priority", "reply_to", "expiration", "user_id")

    def __init__(self, header: bytes):
        """Lenient reading: further flag words (bit 0 set) are followed, bytes after the last
        property are ignored. Publishes go through `checked` instead."""
        if len(header) < _HEAD + 2:
            raise PropertyError("content header too short")
        flags = 0
        shift = 0
        pos = _HEAD
        n = len(header)
        while True:  # property flags may continue in further 16-bit words (bit 0 set)
            if pos + 2 > n:
                raise PropertyError("property flags overrun the content header")
            word = _U16.unpack_from(header, pos)[0]
            pos += 2
            flags |= (word & 0xFFFE) << shift
            if not word & 1:
                break
            shift += 16
        self.flags = flags
        self.delivery_mode = None
        self.priority = None
        self.reply_to = None
        self.expiration = None
        self.user_id = None
        spans = [None] * 14
        if flags:
            for index in range(14):
                if not flags & (0x8000 >> index):
                    continue
                kind = _KINDS[index]
                if pos >= n:
                    raise PropertyError("property list overruns the content header")
                if kind == "s":
                    end = pos + 1 + header[pos]
                elif kind == "o":
                    end = pos + 1
                elif kind == "q":
                    end = pos + 8
                elif pos + 4 > n:
                    raise PropertyError("property list overruns the content header")
                else:
                    end = pos + 4 + _U32.unpack_from(header, pos)[0]
                if end > n:
                    raise PropertyError("property list overruns the content header")
                spans[index] = (pos, end)
                pos = end
            self._values(header, spans)
        self.spans = spans

    def _values(self, header: bytes, spans: list) -> None:
        if spans[DELIVERY_MODE]:
            self.delivery_mode = header[spans[DELIVERY_MODE][0]]
        if spans[PRIORITY]:
            self.priority = header[spans[PRIORITY][0]]
        if spans[REPLY_TO]:
            self.reply_to = _str(header, spans[REPLY_TO])
        if spans[EXPIRATION]:
            self.expiration = _str(header, spans[EXPIRATION])
        if spans[USER_ID]:
            self.user_id = _str(header, spans[USER_ID])

    @classmethod
    def checked(cls, header: bytes) -> "Properties":
        """The property list of a publish, checked as RabbitMQ decodes it (any PropertyError
        here is RabbitMQ's 541 INTERNAL_ERROR): one 16-bit flag word whose low two bits are
        ignored (RabbitMQ reads no further words), every property inside the header, nothing
        after the last one, and a headers table that its parser would accept.

        Cheap: offset arithmetic over the properties present only; the headers table is walked
        (not decoded) when there is one.
        """
        n = len(header)
        if n < _HEAD + 2:
            raise PropertyError("content header too short")
        self = cls.__new__(cls)
        flags = ((header[12] << 8) | header[13]) & 0xFFFC
        self.flags = flags
        self.delivery_mode = None
        self.priority = None
        self.reply_to = None
        self.expiration = None
        self.user_id = None
        spans = [None] * 14
        pos = _HEAD + 2
        if flags:
            for index, kind in _layout(flags):
                if pos >= n:
                    raise PropertyError("property list overruns the content header")
                if kind == "s":
                    end = pos + 1 + header[pos]
                elif kind == "o":
                    end = pos + 1
                elif kind == "q":
                    end = pos + 8
                else:
                    end = pos + 4
                    if end > n:
                        raise PropertyError("property list overruns the content header")
                    start = end
                    end += _U32.unpack_from(header, pos)[0]
                    if end > n:
                        raise PropertyError("property list overruns the content header")
                    try:
                        tables.check_table(header, start, end)
                    except tables.TableError as exc:
                        raise PropertyError(f"malformed headers table: {exc}") from None
                if end > n:
                    raise PropertyError("property list overruns the content header")
                spans[index] = (pos, end)
                pos = end
            self._values(header, spans)
        if pos != n:
            raise PropertyError("bytes after the last property")
        self.spans = spans
        return self

    def headers(self, header: bytes):
        """The decoded headers table, or None when absent."""
        span = self.spans[HEADERS]
        if span is None:
            return None
        return tables.decode_table(header, span[0])[0]


def _str(header: bytes, span) -> str:
    return header[span[0] + 1 : span[1]].decode("utf-8", "surrogateescape")


def splice(header: bytes, props: Properties, index: int, encoded: bytes | None) -> bytes:
    """A copy of `header` with property `index` replaced by `encoded` (its wire bytes) or
    removed (None). Every other byte is kept as it was."""
    return splice_many(header, props, {index: encoded})


def splice_many(header: bytes, props: Properties, changes: dict) -> bytes:
    """`splice` for several properties at once: {index: wire bytes or None (remove)}."""
    flags = props.flags
    for index, encoded in changes.items():
        bit = 0x8000 >> index
        flags = (flags | bit) if encoded is not None else (flags & ~bit)
    parts = [header[:_HEAD]]
    # Flag words: the high 15 bits of each, bit 0 = "another word follows".
    remaining = flags
    while True:
        word = remaining & 0xFFFE
        remaining >>= 16
        if remaining:
            word |= 1
        parts.append(_U16.pack(word))
        if not remaining:
            break
    for i in range(14):
        if i in changes:
            if changes[i] is not None:
                parts.append(changes[i])
            continue
        span = props.spans[i]
        if span is not None:
            parts.append(header[span[0] : span[1]])
    return b"".join(parts)


def strip_header(header: bytes, props: Properties, name: bytes) -> bytes | None:
    """`header` with the entries named `name` (e.g. b"BCC") removed from its headers table,
    every other byte kept; None when the table has no such entry. The table must be
    well-formed (Properties.checked saw it on publish)."""
    span = props.spans[HEADERS]
    if span is None:
        return None
    table = tables.remove_key(header[span[0] : span[1]], name)
    if table is None:
        return None
    return splice(header, props, HEADERS, table)


def encode_shortstr(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    return bytes((len(raw),)) + raw


def encode_table(table: dict) -> bytes:
    return tables.encode_table(table)
