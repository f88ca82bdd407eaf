"""A binding's "properties key": how the management API names one binding between a source
and a destination in its path (rabbit_mgmt_format:pack_binding_props, args_hash;
rabbit_mgmt_wm_binding:unpack_binding_props).

- `~` for the empty routing key without arguments;
- the routing key, URL-quoted (`+` for a space, `~` as `%7E`), without arguments;
- `<quoted key>~<args hash>` with arguments, the hash being base64url of the 32-bit
  erlang:phash2 of the arguments as RabbitMQ holds them: a list of `{Name, Type, Value}`
  sorted by name.

Binding arguments are kept plain (no AMQP type letters), so their types are the ones the
management API gives JSON values (rabbit_misc:to_amqp_table): an integer is a `long`, another
number a `double`, text a `longstr`; the hash of a binding made over HTTP is RabbitMQ's.
"""
from __future__ import annotations

import base64
import datetime
import urllib.parse
from decimal import Decimal

from ..erlang_phash import Atom, phash2
from ..erlang_terms import decimal_parts, timestamp_seconds

_TRUE, _FALSE, _UNDEFINED = Atom("true"), Atom("false"), Atom("undefined")


def pack(routing_key: str, arguments: dict) -> str:
    if not arguments:
        return "~" if routing_key == "" else quote(routing_key)
    return quote(routing_key) + "~" + quote(args_hash(arguments))


def unpack(props: str) -> tuple[str, str | None] | None:
    """(routing key, args hash or None) named by a properties key, None if it names none.
    Split on `~` as rabbit_mgmt_format:tokenise splits (a trailing `~` adds no token)."""
    tokens = props.split("~")
    if props.endswith("~"):
        tokens.pop()
    if len(tokens) == 1:
        return unquote(tokens[0]), None
    if len(tokens) == 2:
        return unquote(tokens[0]), unquote(tokens[1])
    return None


def url_quote(text: str) -> str:
    """rabbit_http_util:quote_plus: a path segment with `+` for a space (`~` stays)."""
    return urllib.parse.quote_plus(text.encode("utf-8", "surrogatepass"), safe="")


def quote(text: str) -> str:
    """`url_quote`, then `~` escaped: in a properties key it separates the key from the hash."""
    return url_quote(text).replace("~", "%7E")


def unquote(text: str) -> str:
    return urllib.parse.unquote_plus(text, errors="surrogateescape")


def args_hash(arguments: dict) -> str:
    term = erlang_table(arguments)
    return base64.urlsafe_b64encode(phash2(term).to_bytes(4, "big")).decode("ascii").rstrip("=")


def erlang_table(table: dict) -> list:
    """A field table as RabbitMQ holds a binding's arguments: [{Name, Type, Value}] by name."""
    items = sorted(((_binary(key), value) for key, value in table.items()), key=lambda item: item[0])
    return [(key,) + _typed(value) for key, value in items]


def _binary(text) -> bytes:
    return text if isinstance(text, bytes) else str(text).encode("utf-8", "surrogateescape")


def _typed(value) -> tuple:
    """(type atom, Erlang value) of a plain argument value."""
    if value is None:
        return Atom("void"), _UNDEFINED
    if isinstance(value, bool):
        return Atom("bool"), _TRUE if value else _FALSE
    if isinstance(value, int):
        return Atom("long"), int(value)
    if isinstance(value, float):
        return Atom("double"), value
    if isinstance(value, (str, bytes)):
        return Atom("longstr"), _binary(value)
    if isinstance(value, (bytearray, memoryview)):
        return Atom("binary"), bytes(value)
    if isinstance(value, Decimal):
        return Atom("decimal"), decimal_parts(value)
    if isinstance(value, datetime.datetime):
        return Atom("timestamp"), timestamp_seconds(value)
    if isinstance(value, dict):
        return Atom("table"), erlang_table(value)
    return Atom("array"), [_typed(item) for item in value]
