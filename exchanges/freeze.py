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
  * Keys that are not UTF-8 arrive as surrogate-escaped ``str`` (amqp_broker.tables); a
    timestamp beyond datetime's range as an ``int`` subclass, frozen as an int.
"""
from __future__ import annotations

import datetime as _dt
from decimal import Decimal

from ..erlang_terms import decimal_parts, timestamp_seconds

__all__ = ["freeze_table", "freeze_value"]


def freeze_table(table: dict) -> tuple:
    """Order-insensitive frozen form of a field table (RabbitMQ sorts binding args by key)."""
    if not table:
        return ()
    return tuple(sorted((str(k), freeze_value(v)) for k, v in table.items()))


# Markers of the flat form of nested tables/arrays. Ints: never equal to a key (str) or to a
# frozen scalar (tuple), so the token sequence reads back unambiguously.
_TABLE, _ARRAY, _END = 0, 1, 2


def _by_key(item) -> str:
    return str(item[0])


def freeze_value(value) -> tuple:
    """Frozen, type-tagged form of one field value.

    Tables and arrays freeze to a *flat* tuple of tokens (markers, keys in sorted order,
    frozen scalars), built with an explicit stack: a table nested thousands deep (one frame
    holds ~20,000 levels) can neither exhaust the recursion limit here nor later, when the
    key is hashed or compared (nested tuples compare recursively).
    """
    if isinstance(value, (dict, list, tuple)):
        return _freeze_container(value)
    return _freeze_scalar(value)


def _freeze_container(root) -> tuple:
    out = []
    work = [(False, root)]
    while work:
        is_token, item = work.pop()
        if is_token:
            out.append(item)
        elif isinstance(item, dict):
            out.append(_TABLE)
            work.append((True, _END))
            for key, child in sorted(item.items(), key=_by_key, reverse=True):
                work.append((False, child))
                work.append((True, str(key)))
        elif isinstance(item, (list, tuple)):
            out.append(_ARRAY)
            work.append((True, _END))
            for child in reversed(item):
                work.append((False, child))
        else:
            out.append(_freeze_scalar(item))
    return ("F" if isinstance(root, dict) else "A", tuple(out))


def _freeze_scalar(value) -> tuple:
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
    if isinstance(value, int):  # incl. out-of-range timestamps (tables.RawTimestamp)
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
    # Unknown object from a future decoder: identity by value if hashable, else by repr.
    try:
        hash(value)
    except TypeError:
        return ("?", type(value).__name__, repr(value))
    return ("?", type(value).__name__, value)
