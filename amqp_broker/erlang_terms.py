"""Values as Erlang terms: how RabbitMQ holds them, and how its error texts print them.

RabbitMQ formats the values it complains about with io_lib: ``~tp`` (pretty), ``~w`` (plain)
or ``~ts`` (text). Clients and tests compare those texts with a real RabbitMQ's, so every
reply text or validation error that shows a value renders it here, from one of three
sources:

* a decoded AMQP field value (``erl_value``): a field table is the list of
  ``{Name,Type,Value}`` that rabbit_binary_parser makes of it, an array a list of
  ``{Type,Value}``, void the atom ``undefined``, a decimal ``{Scale,Unscaled}``, a timestamp its
  seconds: ``Invalid x-match field value <<"foo">>; ...`` (rabbit_exchange_type_headers);
* a JSON-decoded value (``erl_json``, policy definitions): rabbit_json turns objects into maps
  and ``null`` into the atom ``null``: ``<<"lazy">> is not a valid queue-mode value``;
* raw bytes: ``erl_binary`` (``~tp``) and ``erl_octets`` (``~w``, rabbit_reader's frame errors).

Also decimal_parts and timestamp_seconds: the Erlang value RabbitMQ keeps for a decimal or a
timestamp field, which binding identity and header matching compare (exchanges/).

See "Erlang terms in error texts" in docs/protocol-notes.md. Limitations, all cosmetic:
Erlang's pretty printer would wrap terms longer than its line width (we never do), and
io_lib's default printable range is Latin-1, which is what we assume.
"""
from __future__ import annotations

import calendar
import datetime as _dt
from decimal import Decimal

from .tables import field_type

__all__ = [
    "decimal_parts",
    "timestamp_seconds",
    "erl_binary",
    "erl_octets",
    "erl_float",
    "erl_charlist",
    "erl_value",
    "erl_json",
    "erl_text",
]


# -- AMQP values as RabbitMQ holds them ------------------------------------------------------

def decimal_parts(value: Decimal) -> tuple:
    """(scale, unscaled) as RabbitMQ holds a decimal: ``{decimal, {Scale, Unscaled}}``.

    ``Decimal("1.5")`` and ``Decimal("1.50")`` are equal in Python but ``{1,15}`` and
    ``{2,150}`` in Erlang, so the exponent must be kept.
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


# -- scalars ---------------------------------------------------------------------------------

# Control characters that io_lib still treats as printable inside a string, with the escape
# it prints for them.
_ESCAPES = {
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\b": "\\b",
    "\f": "\\f",
    "\x1b": "\\e",
    '"': '\\"',
    "\\": "\\\\",
}


def _printable_latin1(ch: str) -> bool:
    code = ord(ch)
    return 32 <= code <= 126 or 160 <= code <= 255 or ch in _ESCAPES


def _quote(text: str) -> str:
    return '"' + "".join(_ESCAPES.get(c, c) for c in text) + '"'


def erl_charlist(text: str) -> str:
    """An Erlang string (a char list) as ``~p`` prints it: quoted, with io_lib's escapes, when
    every character is printable; else (and when empty) as the list of numbers it is."""
    if text and all(_printable_latin1(c) for c in text):
        return _quote(text)
    return "[" + ",".join(str(ord(c)) for c in text) + "]"


def erl_binary(data: bytes) -> str:
    """``<<"text">>``, ``<<"héllo"/utf8>>`` or ``<<1,2,3>>`` as ``~tp`` would print it."""
    if not data:
        return "<<>>"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(_printable_latin1(c) for c in text):
        # ~tp marks a binary as UTF-8 only when that changes how it reads (non-ASCII chars).
        suffix = "/utf8" if any(ord(c) > 127 for c in text) else ""
        return "<<" + _quote(text) + suffix + ">>"
    latin1 = data.decode("latin-1")
    if all(_printable_latin1(c) for c in latin1):
        return "<<" + _quote(latin1) + ">>"
    return "<<" + ",".join(str(b) for b in data) + ">>"


def erl_octets(data: bytes) -> str:
    """A binary as Erlang's ``~w`` prints it: always numbers (<<97,98>>, never <<"ab">>). Only
    the first 256 bytes: anything longer is cut by the 255-byte reply-text limit anyway."""
    return "<<" + ",".join(map(str, data[:256])) + (",...>>" if len(data) > 256 else ">>")


def erl_float(value: float) -> str:
    """Shortest round-trip digits, like ``~p``; Erlang always prints a fraction (1.0e20)."""
    text = repr(value)
    if text in ("inf", "-inf", "nan"):
        return text
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{int(exponent)}"
    return text


def _raw(text: str) -> bytes:
    """The wire bytes of a decoded string: non-UTF-8 bytes come back from their surrogate
    escapes (amqp_broker.tables decodes such keys so)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _scalar(value, none: str) -> str | None:
    """The scalars both sources share; ``none`` is what None decodes to. None if ``value`` is
    not one of them."""
    if value is None:
        return none
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))  # int(): a RawTimestamp's repr is not its number
    if isinstance(value, float):
        return erl_float(value)
    if isinstance(value, str):
        return erl_binary(_raw(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return erl_binary(bytes(value))
    return None


# -- decoded AMQP field values ---------------------------------------------------------------

# erl_value stops rendering past this many characters: its output only ever ends up in a
# reply text, which is cut at 255 bytes anyway
_RENDER_LIMIT = 4096


def erl_value(value) -> str:
    """A decoded field value as ``~tp`` prints the term rabbit_binary_parser makes of it.

    Iterative (explicit stack), and cut with "..." past a few KB: a table nested thousands
    deep renders without recursion, in bounded time.
    """
    out: list[str] = []
    size = 0
    work = [(False, value)]
    while work:
        is_text, item = work.pop()
        if is_text:
            text = item
        elif isinstance(item, dict):
            # Parsed tables are lists of {Name, Type, Value} in wire order.
            text = "["
            work.append((True, "]"))
            entries = list(item.items())
            for i in range(len(entries) - 1, -1, -1):
                key, child = entries[i]
                work.append((True, "}"))
                work.append((False, child))
                name = erl_binary(_raw(str(key)))
                work.append((True, f"{',' if i else ''}{{{name},{field_type(child)},"))
        elif isinstance(item, (list, tuple)):
            text = "["
            work.append((True, "]"))
            for i in range(len(item) - 1, -1, -1):
                child = item[i]
                work.append((True, "}"))
                work.append((False, child))
                work.append((True, f"{',' if i else ''}{{{field_type(child)},"))
        else:
            text = _field_scalar(item)
        out.append(text)
        size += len(text)
        if size > _RENDER_LIMIT:
            out.append("...")
            break
    return "".join(out)


def _field_scalar(value) -> str:
    text = _scalar(value, "undefined")  # void is parsed to the atom undefined
    if text is not None:
        return text
    if isinstance(value, Decimal):
        scale, unscaled = decimal_parts(value)
        return f"{{{scale},{unscaled}}}"
    if isinstance(value, _dt.datetime):
        return str(timestamp_seconds(value))
    return repr(value)


def erl_text(value) -> str:
    """A decoded field value as rabbit_misc's equivalence errors print it (``val/1``): a
    binary with ``~ts`` (its bare text), anything else with ``~tp``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return erl_value(value)


# -- JSON-decoded values (policies) ----------------------------------------------------------

def erl_json(value) -> str:
    """``value`` as ``~p`` prints the term RabbitMQ's JSON decoder makes of it."""
    text = _scalar(value, "null")  # JSON null decodes to the atom null
    if text is not None:
        return text
    if isinstance(value, dict):  # JSON objects decode to maps, printed with sorted keys
        items = sorted((erl_json(k), erl_json(v)) for k, v in value.items())
        return "#{" + ",".join(f"{k} => {v}" for k, v in items) + "}"
    if isinstance(value, tuple):
        return "{" + ",".join(erl_json(v) for v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(erl_json(v) for v in value) + "]"
    return repr(value)
