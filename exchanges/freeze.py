"""Hashable, type-aware keys for AMQP field tables (binding identity).

RabbitMQ stores binding arguments as a typed field table, sorted by key, and a binding is
found again only if the arguments are the same *typed* terms: ``{"a": 1}`` and
``{"a": 1.0}`` or ``{"a": True}`` are different bindings. Python's ``==`` would conflate
``1``, ``1.0`` and ``True``, so every value is tagged with a wire-type-like letter before it
goes into the key.

What we cannot reproduce: the decoder hands us plain ``int`` for every integer width
(``b``/``s``/``I``/``l``...), so two bindings differing only in integer width collapse into
one. No client does that on purpose.

Conventions of the decoder (pamqp) that the tags rely on:
  * ``str`` is a longstr; ``bytes`` is a longstr that was not valid UTF-8 -> same tag, same
    byte content, so ``"a"`` and ``b"a"`` are one value, as they are in RabbitMQ.
  * ``bytearray`` is the ``x`` (binary) type, which RabbitMQ keeps distinct from longstr.
  * ``None`` is void, ``Decimal`` is ``D``, ``datetime`` is ``T`` (integer seconds on the
    wire), ``dict`` is a table, ``list``/``tuple`` an array.
"""
from __future__ import annotations

import calendar
import datetime as _dt
from decimal import Decimal

__all__ = ["freeze_table", "freeze_value", "decimal_parts", "timestamp_seconds"]


def freeze_table(table: dict) -> tuple:
    """Order-insensitive frozen form of a field table (RabbitMQ sorts binding args by key)."""
    if not table:
        return ()
    return tuple(sorted((str(k), freeze_value(v)) for k, v in table.items()))


def freeze_value(value) -> tuple:
    """Frozen, type-tagged form of one field value."""
    t = type(value)
    if t is str:
        return ("S", value.encode("utf-8", "surrogatepass"))
    if t is bool:
        return ("t", value)
    if t is int:
        return ("i", value)
    if t is float:
        # NaN != NaN would make such a binding impossible to unbind; give it a stable key.
        return ("d", value if value == value else "nan")
    if value is None:
        return ("V",)
    if t is bytes:
        return ("S", value)
    if isinstance(value, (bytearray, memoryview)):
        return ("x", bytes(value))
    if isinstance(value, bool):  # bool subclasses are vanishingly rare but keep them apart
        return ("t", bool(value))
    if isinstance(value, int):
        return ("i", int(value))
    if isinstance(value, float):
        return ("d", float(value))
    if isinstance(value, str):
        return ("S", str(value).encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes):
        return ("S", bytes(value))
    if isinstance(value, Decimal):
        return ("D",) + decimal_parts(value)
    if isinstance(value, _dt.datetime):
        return ("T", timestamp_seconds(value))
    if isinstance(value, dict):
        return ("F", freeze_table(value))
    if isinstance(value, (list, tuple)):
        return ("A", tuple(freeze_value(v) for v in value))
    # Unknown object from a future decoder: identity by value if hashable, else by repr.
    try:
        hash(value)
    except TypeError:
        return ("?", t.__name__, repr(value))
    return ("?", t.__name__, value)


def decimal_parts(value: Decimal) -> tuple:
    """(scale, unscaled) as RabbitMQ holds a decimal: ``{decimal, {Scale, Unscaled}}``.

    ``Decimal("1.5")`` and ``Decimal("1.50")`` are equal in Python but ``{1,15}`` and
    ``{2,150}`` in Erlang, so the exponent must be part of the key.
    """
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):  # NaN / Infinity cannot come off the wire
        return ("special", str(value))
    unscaled = int("".join(map(str, digits)) or "0")
    if sign:
        unscaled = -unscaled
    if exponent > 0:  # positive exponents are not representable on the wire; normalise
        return (0, unscaled * 10**exponent)
    return (-exponent, unscaled)


def timestamp_seconds(value: _dt.datetime):
    """Seconds since the epoch, the integer RabbitMQ keeps for a ``T`` field.

    Naive datetimes are taken as UTC, as the wire format has no zone.
    """
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        seconds = calendar.timegm(value.timetuple()) + value.microsecond / 1_000_000
    else:
        seconds = value.timestamp()
    as_int = int(seconds)
    return as_int if as_int == seconds else seconds
