"""Render decoded AMQP field values the way RabbitMQ prints them in error texts.

RabbitMQ formats offending values with Erlang's ``~tp``, so clients see e.g.
``Invalid x-match field value <<"foo">>; ...`` or
``Invalid x-match field type signedint (value 23); expected longstr``. Our tests (and some
users' tests) compare these strings with a real RabbitMQ, so we reproduce the common cases:
binaries, integers, floats, booleans, void and the nested table/array/decimal forms.

Limitations, all cosmetic: the decoder has erased integer widths, so an int is reported as
``signedint`` (32-bit range, what Java clients and pika send) or ``long``; a float as
``double``; and Erlang's pretty printer would wrap terms longer than its line width, which we
never do.
"""
from __future__ import annotations

import datetime as _dt
from decimal import Decimal

from .freeze import decimal_parts, timestamp_seconds

__all__ = ["field_type", "erl_value", "erl_binary"]

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


def _erl_float(value: float) -> str:
    text = repr(value)
    if text in ("inf", "-inf", "nan"):
        return text
    if "e" in text:
        mantissa, exponent = text.split("e")
        if "." not in mantissa:
            mantissa += ".0"
        return f"{mantissa}e{int(exponent)}"
    return text


def field_type(value) -> str:
    """The Erlang type atom RabbitMQ's table parser would have tagged ``value`` with."""
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        if type(value).__name__ == "RawTimestamp":  # amqp_broker.tables: beyond datetime
            return "timestamp"
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, (str, bytes)):
        return "longstr"
    if isinstance(value, (bytearray, memoryview)):
        return "binary"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, _dt.datetime):
        return "timestamp"
    if isinstance(value, dict):
        return "table"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


# erl_value stops rendering past this many characters: its output only ever ends up in a
# reply text, which is cut at 255 bytes anyway
_RENDER_LIMIT = 4096


def erl_value(value) -> str:
    """The value part of a parsed field, printed as an Erlang term.

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
            text = _erl_scalar(item)
        out.append(text)
        size += len(text)
        if size > _RENDER_LIMIT:
            out.append("...")
            break
    return "".join(out)


def _erl_scalar(value) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _erl_float(value)
    if isinstance(value, str):
        return erl_binary(_raw(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return erl_binary(bytes(value))
    if isinstance(value, Decimal):
        scale, unscaled = decimal_parts(value)
        return f"{{{scale},{unscaled}}}"
    if isinstance(value, _dt.datetime):
        return str(timestamp_seconds(value))
    return repr(value)


def _raw(text: str) -> bytes:
    """The wire bytes of a decoded string: non-UTF-8 bytes come back from their surrogate
    escapes (amqp_broker.tables decodes such keys so)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")
