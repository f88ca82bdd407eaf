"""Editing AMQP field tables without decoding them.

When the broker itself must change a message's headers (dead-lettering adds x-death), every
header it does not touch must reach consumers byte for byte: decoding and re-encoding would
narrow integer types, lose timestamp precision and mangle non-UTF-8 strings (see "Re-encoding
changes values" in docs/protocol-notes.md). So a table is split into (key, type letter, raw
value bytes) entries by skipping each value by its length (tables and arrays carry their own
length prefix, so this is linear and never recursive), entries are edited, and the table is
joined again.
"""
from __future__ import annotations

import struct

from .tables import FIXED_SIZES, INT_STRUCTS, PREFIXED_LETTERS, TableError

_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")

Entry = tuple[bytes, str, bytes]  # key (raw shortstr bytes), type letter, raw value


def _value_end(data: bytes, pos: int, letter: str) -> int:
    size = FIXED_SIZES.get(letter)
    if size is not None:
        end = pos + size
    elif letter in PREFIXED_LETTERS:
        if pos + 4 > len(data):
            raise TableError("truncated field")
        end = pos + 4 + _U32.unpack_from(data, pos)[0]
    else:
        raise TableError(f"unknown field type {letter!r}")
    if end > len(data):
        raise TableError("truncated field")
    return end


def entries(table: bytes) -> list[Entry]:
    """Split an encoded table (with its 4-byte length) into entries, in wire order."""
    if len(table) < 4:
        raise TableError("truncated table")
    end = 4 + _U32.unpack_from(table, 0)[0]
    if end > len(table):
        raise TableError("truncated table")
    out = []
    pos = 4
    while pos < end:
        klen = table[pos]
        key = table[pos + 1 : pos + 1 + klen]
        pos += 1 + klen
        if pos >= end:
            raise TableError("truncated table")
        letter = chr(table[pos])
        vend = _value_end(table, pos + 1, letter)
        out.append((key, letter, table[pos + 1 : vend]))
        pos = vend
    return out


def items(array: bytes) -> list[tuple[str, bytes]]:
    """Split an encoded array value (with its 4-byte length) into (letter, raw) items."""
    end = 4 + _U32.unpack_from(array, 0)[0]
    out = []
    pos = 4
    while pos < end:
        letter = chr(array[pos])
        vend = _value_end(array, pos + 1, letter)
        out.append((letter, array[pos + 1 : vend]))
        pos = vend
    return out


def table(entries_: list[Entry]) -> bytes:
    body = b"".join(bytes((len(k),)) + k + letter.encode("latin-1") + raw for k, letter, raw in entries_)
    return _U32.pack(len(body)) + body


def array(items_: list[tuple[str, bytes]]) -> bytes:
    body = b"".join(letter.encode("latin-1") + raw for letter, raw in items_)
    return _U32.pack(len(body)) + body


def find(entries_: list[Entry], key: bytes) -> int:
    for index, entry in enumerate(entries_):
        if entry[0] == key:
            return index
    return -1


# -- scalar values ------------------------------------------------------------------------------


def longstr(value: str | bytes) -> bytes:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")
    return _U32.pack(len(raw)) + raw


def read_longstr(raw: bytes) -> str:
    return raw[4:].decode("utf-8", "surrogateescape")


def long(value: int) -> bytes:
    return _I64.pack(value)


def read_long(letter: str, raw: bytes) -> int:
    """Any integer type's value (x-death counts may come back with other widths)."""
    return INT_STRUCTS[letter].unpack(raw)[0]


def timestamp(seconds: int) -> bytes:
    return _U64.pack(seconds)
