"""Declare arguments (queue.declare / exchange.declare `arguments`) as one value object.

RabbitMQ's equivalence and validation errors name each argument's AMQP type ("of type
'signedint'"), and a definition restored after a restart must compare equal to the one a client
redeclares, so the type letter of every value is part of the value. `Arguments` is decoded once
from the wire with the letters kept, validated once by the vhost, stored as its AMQP field-table
encoding (`encoded`) and restored from exactly those bytes; `plain` is the same table without
the letters, which is what routing, limits and policies read.
"""
from __future__ import annotations

import struct

from pamqp import encode as pencode

from . import tables

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


class Arguments:
    __slots__ = ("typed", "plain", "_encoded")

    def __init__(self, typed: dict | None = None, encoded: bytes | None = None):
        self.typed: dict = typed or {}  # key -> (AMQP type letter, value)
        self.plain: dict = plain_table(self.typed)
        self._encoded = encoded

    @classmethod
    def decode(cls, encoded: bytes) -> "Arguments":
        """From a stored AMQP field table (what `encoded` produced)."""
        return cls(typed_table(encoded, 0)[0], bytes(encoded))

    @classmethod
    def from_plain(cls, table: dict | None) -> "Arguments":
        """From a plain table given in Python (no wire types known): each value gets the type
        a client library such as pika would have sent it with."""
        return cls(guess_typed(table or {}))

    @property
    def encoded(self) -> bytes:
        encoded = self._encoded
        if encoded is None:
            encoded = self._encoded = encode_typed_table(self.typed)
        return encoded

    def get(self, key: str, default=None):
        return self.plain.get(key, default)

    def __getitem__(self, key: str):
        return self.plain[key]

    def __contains__(self, key: str) -> bool:
        return key in self.plain

    def __bool__(self) -> bool:
        return bool(self.typed)

    def __eq__(self, other) -> bool:
        return isinstance(other, Arguments) and self.typed == other.typed

    __hash__ = None  # mutable dicts inside: not hashable

    def __repr__(self) -> str:
        return f"Arguments({self.plain!r})"




# ---------------------------------------------------------------------------------------------
# Typed field tables. pamqp folds every integer type into `int`; RabbitMQ's errors name the AMQP
# type, so declare arguments are decoded keeping each value's type letter.


def typed_table(data: bytes, offset: int):
    """Decode a field table at `offset` -> ({key: (type_letter, value)}, new_offset).
    Raises tables.TableError (a ValueError) when it does not parse."""
    return tables.decode_table(data, offset, typed=True)


def _shortstr(value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    return bytes((len(raw),)) + raw


def guess_typed(table: dict) -> dict:
    """Type letters for a plain table (arguments given in Python), as pika would have sent
    it: tables.type_letter's choice, except that an int beyond a signed long can only be an
    unsignedlong."""
    out = {}
    for key, value in (table or {}).items():
        if isinstance(value, int) and not isinstance(value, bool) and value >= 2**63:
            letter = "L"
        else:
            letter = tables.type_letter(value) or "V"
        out[key] = (letter, value)
    return out


_TYPED_ENCODERS = {
    "t": pencode.boolean, "b": lambda v: struct.pack(">b", v), "B": lambda v: struct.pack(">B", v),
    "s": pencode.short_int, "u": pencode.short_uint, "I": pencode.long_int, "i": pencode.long_uint,
    "l": pencode.long_long_int, "L": lambda v: struct.pack(">Q", v), "f": pencode.floating_point,
    "d": pencode.double, "D": lambda v: tables.encode_value(v)[1:], "S": lambda v: _U32.pack(len(_raw(v))) + _raw(v),
    "A": tables.encode_array, "T": lambda v: _U64.pack(v) if isinstance(v, int) else pencode.timestamp(v),
    "F": tables.encode_table,
    "V": lambda v: b"", "x": pencode.byte_array,
}


def _raw(value) -> bytes:
    return value if isinstance(value, (bytes, bytearray)) else str(value).encode("utf-8", "surrogateescape")


def encode_typed_table(typed: dict) -> bytes:
    """The inverse of typed_table: each value encoded with its own type letter, so arguments
    stored on disk come back with the AMQP types the client declared them with."""
    parts = []
    for key, (letter, value) in typed.items():
        parts.append(_shortstr(key))
        parts.append(letter.encode("latin-1"))
        parts.append(_TYPED_ENCODERS[letter](value))
    body = b"".join(parts)
    return _U32.pack(len(body)) + body


def plain_table(typed: dict) -> dict:
    return {key: value for key, (_letter, value) in typed.items()}
