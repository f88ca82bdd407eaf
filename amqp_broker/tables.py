"""AMQP field tables and arrays: one linear, iterative decoder, and a structural checker.

pamqp's decoder re-slices the rest of the buffer for every element (quadratic: a 120 KB array of
voids takes seconds), recurses once per nesting level (a table nested a few thousand deep, which
fits easily in one frame, raises RecursionError), refuses keys that are not UTF-8 and crashes on
timestamps beyond Python's datetime range. RabbitMQ takes all of those. This module walks the
buffer once with plain offsets and an explicit stack, so its cost is linear in the table's size
and independent of its depth.

What RabbitMQ's rabbit_binary_parser refuses, we refuse too (TableError): an unknown type letter
(including the NUL "void" pamqp tolerates), any length running past its enclosing table/array,
and floats that are NaN or infinite (Erlang's float matching does not take them).

Decoded values follow pamqp's conventions, so code written against pamqp keeps working:
bool, int, float, Decimal, str (bytes when a longstr is not UTF-8), bytearray for 'x' binaries,
datetime (UTC) for timestamps, None for void, dict, list. The differences are in cases pamqp
cannot handle at all:

* a key that is not UTF-8 becomes a str with surrogate escapes (``"\\udcff"`` for byte 0xff),
  so it round-trips with ``.encode("utf-8", "surrogateescape")``;
* a timestamp outside datetime's range is returned as a `RawTimestamp` (an int: the number on
  the wire);
* 'L' is decoded unsigned (pamqp reads it signed; they agree below 2**63).
"""
from __future__ import annotations

import datetime as _dt
import re
import struct
from decimal import Decimal

__all__ = [
    "TYPE_NAMES",
    "INT_STRUCTS",
    "INT_LETTERS",
    "FLOAT_LETTERS",
    "FIXED_SIZES",
    "PREFIXED_LETTERS",
    "TableError",
    "RawTimestamp",
    "type_letter",
    "field_type",
    "decode_table",
    "decode_table_body",
    "check_table",
    "remove_key",
    "encode_table",
    "encode_array",
    "encode_value",
]


class TableError(ValueError):
    """A field table (or array) RabbitMQ could not decode."""


class RawTimestamp(int):
    """A timestamp ('T') Python's datetime cannot represent: the integer sent on the wire."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"RawTimestamp({int(self)})"


_U32 = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_F32 = struct.Struct(">f").unpack_from
_F64 = struct.Struct(">d").unpack_from

# -- the field types ----------------------------------------------------------------------------
#
# The one definition of the AMQP field-table type letters (RabbitMQ's reading of them,
# rabbit_binary_parser / rabbit_binary_generator) for the whole broker.

# type letter -> the type atom RabbitMQ names it by in error texts
TYPE_NAMES = {
    "t": "bool", "b": "byte", "B": "unsignedbyte", "s": "short", "u": "unsignedshort",
    "I": "signedint", "i": "unsignedint", "l": "long", "L": "unsignedlong", "f": "float",
    "d": "double", "D": "decimal", "S": "longstr", "A": "array", "T": "timestamp",
    "F": "table", "V": "void", "x": "binary",
}
# integer type letter -> its wire format ('i' and 'L' are unsigned, as RabbitMQ reads them)
INT_STRUCTS = {letter: struct.Struct(fmt) for letter, fmt in (
    ("b", ">b"), ("B", ">B"), ("s", ">h"), ("u", ">H"), ("I", ">i"), ("i", ">I"), ("l", ">q"),
    ("L", ">Q"))}
INT_LETTERS = frozenset(INT_STRUCTS)  # every integer width: RabbitMQ compares them as one class
FLOAT_LETTERS = frozenset("fd")
# Fixed-size types: letter -> size of the value after the letter
FIXED_SIZES = {**{letter: fmt.size for letter, fmt in INT_STRUCTS.items()},
               "t": 1, "f": 4, "d": 8, "T": 8, "D": 5, "V": 0}
# Types whose value starts with a 32-bit length: longstr, binary, table, array
PREFIXED_LETTERS = frozenset("SxFA")

# type letters as byte values, for the decoder's byte-wise comparisons
_t = ord("t")
_f, _d, _D, _S, _A, _T, _F, _V, _x = (ord(c) for c in "fdDSATFVx")
_FIXED = {ord(letter): size for letter, size in FIXED_SIZES.items()}
_INT_UNPACK = {ord(letter): fmt.unpack_from for letter, fmt in INT_STRUCTS.items()}

_V_RUN = re.compile(rb"V*").match  # a run of voids in an array, skipped in one step

_UTC = _dt.timezone.utc
_TEN = Decimal(10)


def type_letter(value) -> str | None:
    """The type letter RabbitMQ's parser would have tagged a decoded ``value`` with; None for
    an object no decoder makes. The decoder has erased integer widths, so an int is taken as
    a signedint when it fits 32 bits (what Java clients and pika send), else a long."""
    if value is None:
        return "V"
    if isinstance(value, bool):
        return "t"
    if isinstance(value, RawTimestamp):
        return "T"
    if isinstance(value, int):
        return "I" if -(2**31) <= value < 2**31 else "l"
    if isinstance(value, float):
        return "d"
    if isinstance(value, (str, bytes)):  # bytes: a longstr that is not UTF-8
        return "S"
    if isinstance(value, (bytearray, memoryview)):
        return "x"
    if isinstance(value, Decimal):
        return "D"
    if isinstance(value, _dt.datetime):
        return "T"
    if isinstance(value, dict):
        return "F"
    if isinstance(value, (list, tuple)):
        return "A"
    return None


def field_type(value) -> str:
    """The type atom RabbitMQ names a decoded ``value``'s field type by (``signedint``,
    ``longstr``...), as in ``{unacceptable_type_in_header,"CC",long}``."""
    letter = type_letter(value)
    return type(value).__name__ if letter is None else TYPE_NAMES[letter]


def _timestamp(value: int):
    """pamqp's reading of a timestamp (values above 2**32 are taken as milliseconds), or the
    raw number when datetime cannot hold it."""
    seconds = value / 1000.0 if value > 0xFFFFFFFF else value
    try:
        return _dt.datetime.fromtimestamp(seconds, tz=_UTC)
    except (OverflowError, ValueError, OSError):
        return RawTimestamp(value)


def _key(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape")


def _longstr(raw: bytes):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _bad(what: str, pos: int) -> TableError:
    return TableError(f"{what} at offset {pos}")


def _decode(buf, pos: int, end: int, typed: bool) -> dict:
    """Decode the entries of a table between pos and end.

    Iterative: `stack` holds the enclosing containers (tables and arrays). With `typed`,
    top-level values are (type letter, value) pairs; nested values are always plain.
    """
    root: dict = {}
    cur: dict | list = root
    is_table = True
    stack: list = []
    key = None
    while True:
        if pos >= end:
            if pos != end:
                raise _bad("value overruns its table", end)
            if not stack:
                return root
            value = cur
            letter_char = "F" if is_table else "A"
            cur, is_table, end, key = stack.pop()
            if typed and not stack:
                value = (letter_char, value)
            if is_table:
                cur[key] = value
            else:
                cur.append(value)
            continue
        if is_table:
            kend = pos + 1 + buf[pos]
            if kend >= end:
                raise _bad("table entry overruns the table", pos)
            key = _key(bytes(buf[pos + 1 : kend]))
            pos = kend
        letter = buf[pos]
        pos += 1
        if letter == _V:
            if not is_table:  # inside an array: skip a whole run of voids at once
                run_end = _V_RUN(buf, pos, end).end()
                if run_end > pos:
                    cur.extend([None] * (run_end - pos + 1))
                    pos = run_end
                    continue
            value = None
        elif letter == _S or letter == _x or letter == _F or letter == _A:
            if pos + 4 > end:
                raise _bad("length overruns the table", pos)
            vend = pos + 4 + _U32(buf, pos)[0]
            if vend > end:
                raise _bad("value overruns the table", pos)
            if letter == _F or letter == _A:  # a nested table/array: descend into it
                stack.append((cur, is_table, end, key))
                is_table = letter == _F
                cur = {} if is_table else []
                end = vend
                pos += 4
                continue
            raw = bytes(buf[pos + 4 : vend])
            value = _longstr(raw) if letter == _S else bytearray(raw)
            pos = vend
        else:
            size = _FIXED.get(letter)
            if size is None:
                raise _bad(f"unknown field type {bytes((letter,))!r}", pos - 1)
            if pos + size > end:
                raise _bad("value overruns the table", pos)
            unpack = _INT_UNPACK.get(letter)
            if unpack is not None:
                value = unpack(buf, pos)[0]
            elif letter == _t:
                value = buf[pos] != 0
            elif letter == _d:
                if buf[pos] & 0x7F == 0x7F and buf[pos + 1] & 0xF0 == 0xF0:
                    raise _bad("double is NaN or infinite", pos)
                value = _F64(buf, pos)[0]
            elif letter == _f:
                if buf[pos] & 0x7F == 0x7F and buf[pos + 1] & 0x80:
                    raise _bad("float is NaN or infinite", pos)
                value = _F32(buf, pos)[0]
            elif letter == _T:
                value = _timestamp(_U64(buf, pos)[0])
            else:  # _D
                value = Decimal(_U32(buf, pos + 1)[0]) * (_TEN ** -buf[pos])
            pos += size
        if typed and not stack:
            value = (chr(letter), value)
        if is_table:
            cur[key] = value
        else:
            cur.append(value)


def decode_table(data, offset: int = 0, typed: bool = False):
    """The field table at `offset` (4-byte length, then entries) -> (dict, end offset).

    With `typed`, each top-level value is a (type letter, value) pair (RabbitMQ's equivalence
    checks and error texts name the AMQP type). Raises TableError.
    """
    if offset + 4 > len(data):
        raise TableError("table length overruns the buffer")
    end = offset + 4 + _U32(data, offset)[0]
    if end > len(data):
        raise TableError("table overruns the buffer")
    return _decode(data, offset + 4, end, typed), end


def decode_table_body(data, start: int = 0, end: int | None = None, typed: bool = False) -> dict:
    """Entries of a table without its length prefix (AMQPLAIN responses)."""
    if end is None:
        end = len(data)
    return _decode(data, start, end, typed)


def check_table(buf, pos: int, end: int) -> None:
    """Raise TableError unless buf[pos:end] holds well-formed table entries (the bytes after a
    table's length prefix). No values are built: this is the per-publish check of a headers
    table, offset arithmetic only."""
    stack = []
    is_table = True
    fixed = _FIXED
    while True:
        if pos >= end:
            if pos != end:
                raise _bad("value overruns its table", end)
            if not stack:
                return
            end, is_table = stack.pop()
            continue
        if is_table:
            pos += 1 + buf[pos]
            if pos >= end:
                raise _bad("table entry overruns the table", pos)
        letter = buf[pos]
        size = fixed.get(letter)
        if size is not None:
            if letter == _d or letter == _f:
                if pos + 1 + size > end:
                    raise _bad("value overruns the table", pos)
                if buf[pos + 1] & 0x7F == 0x7F and (
                    buf[pos + 2] & 0xF0 == 0xF0 if letter == _d else buf[pos + 2] & 0x80
                ):
                    raise _bad("float is NaN or infinite", pos)
            elif letter == _V and not is_table:
                pos = _V_RUN(buf, pos, end).end()
                continue
            pos += 1 + size  # an overrun is caught at the top of the loop
            continue
        if letter == _S or letter == _x or letter == _F or letter == _A:
            if pos + 5 > end:
                raise _bad("length overruns the table", pos)
            vend = pos + 5 + _U32(buf, pos + 1)[0]
            if vend > end:
                raise _bad("value overruns the table", pos)
            if letter == _F or letter == _A:
                stack.append((end, is_table))
                end = vend
                is_table = letter == _F
                pos += 5
            else:
                pos = vend
            continue
        raise _bad(f"unknown field type {bytes((letter,))!r}", pos)


def remove_key(table: bytes, name: bytes) -> bytes | None:
    """`table` (a well-formed wire table, length prefix included) without its top-level
    entries named `name`, every other byte kept; None when there is no such entry."""
    end = len(table)
    pos = 4
    keep = []
    start = pos
    found = False
    while pos < end:
        klen = table[pos]
        entry = pos
        key = table[pos + 1 : pos + 1 + klen]
        pos = _skip_value(table, pos + 1 + klen, end)
        if key == name:
            found = True
            keep.append(table[start:entry])
            start = pos
    if not found:
        return None
    keep.append(table[start:end])
    body = b"".join(keep)
    return struct.pack(">I", len(body)) + body


def _skip_value(buf, pos: int, end: int) -> int:
    """Offset after the value (type letter + data) at `pos` of a checked table."""
    letter = buf[pos]
    size = _FIXED.get(letter)
    if size is not None:
        return pos + 1 + size
    return pos + 5 + _U32(buf, pos + 1)[0]


# -- encoding -------------------------------------------------------------------------------
#
# For tables the broker has to write itself (stored declare/bind arguments). The type chosen
# for each value is pamqp's (so ordinary tables encode byte for byte as pamqp would, keys of
# nested tables sorted), extended to what pamqp cannot encode: keys that are not UTF-8
# (surrogate escapes), bytes (a longstr that was not UTF-8), RawTimestamp, integers up to
# 2**64-1 ('L'), decimals with an unsigned 32-bit mantissa, and any nesting depth.

_P_U32 = struct.Struct(">I").pack
_P_SCALE_SIGNED = struct.Struct(">Bi").pack
_P_SCALE_UNSIGNED = struct.Struct(">BI").pack
_DONE = object()


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def encode_value(value) -> bytes:
    """One table value, type letter first (not for tables/arrays: see encode_table)."""
    return _encode_scalar(value)


def _encode_scalar(value) -> bytes:
    if isinstance(value, bool):
        return b"t\x01" if value else b"t\x00"
    if isinstance(value, RawTimestamp):
        return b"T" + struct.pack(">Q", value)
    if isinstance(value, int):
        if -128 <= value <= 127:
            return b"b" + struct.pack(">b", value)
        if -32768 <= value <= 32767:
            return b"s" + struct.pack(">h", value)
        if 0 <= value <= 65535:
            return b"u" + struct.pack(">H", value)
        if -(2**31) <= value < 2**31:
            return b"I" + struct.pack(">i", value)
        if 0 <= value < 2**32:
            return b"i" + struct.pack(">I", value)
        if -(2**63) <= value < 2**63:
            return b"l" + struct.pack(">q", value)
        if 0 <= value < 2**64:
            return b"L" + struct.pack(">Q", value)
        raise TypeError(f"integer out of range: {value}")
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        if not isinstance(exponent, int):
            raise TypeError(f"cannot encode {value} as a decimal")
        if exponent > 0:
            scale, mantissa = 0, int(value)
        else:
            scale, mantissa = -exponent, int(value.scaleb(-exponent))
        if not 0 <= scale <= 255:
            raise TypeError("decimal scale out of range")
        if -(2**31) <= mantissa < 2**31:
            return b"D" + _P_SCALE_SIGNED(scale, mantissa)
        if 0 <= mantissa < 2**32:
            return b"D" + _P_SCALE_UNSIGNED(scale, mantissa)
        raise TypeError("decimal mantissa out of range")
    if isinstance(value, float):
        return b"f" + struct.pack(">f", value)  # pamqp's choice (RabbitMQ would keep a 'd')
    if isinstance(value, str):
        raw = _utf8(value)
        return b"S" + _P_U32(len(raw)) + raw
    if isinstance(value, bytes):
        return b"S" + _P_U32(len(value)) + value
    if isinstance(value, (bytearray, memoryview)):
        return b"x" + _P_U32(len(value)) + bytes(value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            value = value.replace(tzinfo=_UTC)
        return b"T" + struct.pack(">Q", int(value.timestamp()))
    if value is None:
        return b"V"
    raise TypeError(f"cannot encode {type(value).__name__} in a field table")


def _encode(root, is_table: bool) -> bytes:
    out = bytearray()
    stack = []

    def open_container(value, table: bool) -> None:
        stack.append((iter(sorted(value.items(), key=_first) if table else value), table, len(out)))
        out.extend(b"\x00\x00\x00\x00")

    open_container(root, is_table)
    while stack:
        items, table, start = stack[-1]
        item = next(items, _DONE)
        if item is _DONE:
            stack.pop()
            out[start : start + 4] = _P_U32(len(out) - start - 4)
            continue
        if table:
            key, value = item
            raw = _utf8(str(key))
            out.append(len(raw))
            out.extend(raw)
        else:
            value = item
        if isinstance(value, dict):
            out.append(_F)
            open_container(value, True)
        elif isinstance(value, (list, tuple)):
            out.append(_A)
            open_container(value, False)
        else:
            out.extend(_encode_scalar(value))
    return bytes(out)


def _first(item):
    return item[0]


def encode_table(table: dict | None) -> bytes:
    """A wire field table (length prefix included) for a decoded table. Iterative."""
    return _encode(table or {}, True)


def encode_array(array) -> bytes:
    """A wire field array (length prefix included). Iterative."""
    return _encode(array or [], False)
