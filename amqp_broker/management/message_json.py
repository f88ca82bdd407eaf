"""Messages as the management API shows and takes them: basic.properties to and from JSON,
payloads as text or base64, and JSON objects as AMQP field tables.

JSON values become AMQP fields as rabbit_misc:to_amqp_table makes them: an integer is a `long`,
another number a `double`, a string a `longstr`, a boolean a `bool`, an object a `table`, a list
an `array`; `null` is refused (`null_not_allowed`). Properties are read from JSON as
rabbit_mgmt_format:to_basic_properties does (`["not_int", name]`, `["not_string", name]`;
unknown names are ignored) and shown as rabbit_mgmt_format:basic_properties shows them: the
properties present, last one first, and an empty list (`[]`) when there are none.
"""
from __future__ import annotations

import base64
import binascii
import struct

from .. import properties as P
from .. import tables
from .request_body import BodyError
from .responses import jsonable_table

# basic.properties in wire order: (JSON name, kind); kinds as in properties._KINDS
PROPERTIES = (
    ("content_type", "s"), ("content_encoding", "s"), ("headers", "t"), ("delivery_mode", "o"),
    ("priority", "o"), ("correlation_id", "s"), ("reply_to", "s"), ("expiration", "s"),
    ("message_id", "s"), ("timestamp", "q"), ("type", "s"), ("user_id", "s"), ("app_id", "s"),
    ("cluster_id", "s"),
)
_CLASS_BASIC = 60
_HEAD = struct.Struct(">HHQ")  # class-id, weight, body size
_FLAGS = struct.Struct(">H")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_DOUBLE = struct.Struct(">d")


# -- JSON -> AMQP --------------------------------------------------------------------------------

def typed_arguments(table: dict) -> dict:
    """Declare arguments from JSON: {key: (type letter, value)}, as Arguments holds them."""
    check_table(table)
    return {key: (_letter(table[key]), table[key]) for key in sorted(table)}


def check_table(table: dict) -> None:
    """Refuse what no AMQP field table can hold (RabbitMQ refuses `null`; longer names and
    integers beyond 64 bits it keeps, but they could never go out on the wire)."""
    for key, value in table.items():
        if len(key.encode("utf-8", "surrogatepass")) > 255:
            raise BodyError(["field_name_too_long", key])
        _letter(value)


def _letter(value) -> str:
    if value is None:
        raise BodyError("null_not_allowed")
    if isinstance(value, bool):
        return "t"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise BodyError(["not_int", value])
        return "l"
    if isinstance(value, float):
        return "d"
    if isinstance(value, str):
        return "S"
    if isinstance(value, dict):
        check_table(value)
        return "F"
    for item in value:
        _letter(item)
    return "A"


def encode_table(table: dict) -> bytes:
    """A JSON object as a wire field table (length prefix included), typed as RabbitMQ types
    it; keys in order (Erlang's small maps are ordered)."""
    check_table(table)
    body = b"".join(P.encode_shortstr(key) + _field(table[key]) for key in sorted(table))
    return _U32.pack(len(body)) + body


def _field(value) -> bytes:
    letter = _letter(value)
    if letter == "t":
        return b"t\x01" if value else b"t\x00"
    if letter == "l":
        return b"l" + _I64.pack(value)
    if letter == "d":
        return b"d" + _DOUBLE.pack(value)
    if letter == "S":
        raw = value.encode("utf-8", "surrogatepass")
        return b"S" + _U32.pack(len(raw)) + raw
    if letter == "F":
        return b"F" + encode_table(value)
    body = b"".join(_field(item) for item in value)
    return b"A" + _U32.pack(len(body)) + body


def property_list(props: dict) -> bytes:
    """The property flags and values of a message published with `props`, the JSON
    `properties` object (the content header without class, weight and body size)."""
    flags = 0
    parts = []
    for index, (name, kind) in enumerate(PROPERTIES):
        if name not in props:
            continue
        value = props[name]
        if kind == "t":
            encoded = _headers(value)
        elif kind in ("o", "q"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise BodyError(["not_int", name])
            if kind == "o" and not 0 <= value <= 255 or kind == "q" and not 0 <= value < 2**64:
                raise BodyError(["not_int", name])  # an octet / a timestamp cannot hold it
            encoded = bytes((value,)) if kind == "o" else _U64.pack(value)
        else:
            if not isinstance(value, str):
                raise BodyError(["not_string", name])
            encoded = P.encode_shortstr(value)  # a shortstr holds 255 bytes
            if len(encoded) > 256:
                raise BodyError(["not_string", name])
        flags |= 0x8000 >> index
        parts.append(encoded)
    return _FLAGS.pack(flags) + b"".join(parts)


def content_header(properties: bytes, body_size: int) -> bytes:
    """A basic content header: class-id, weight, body size, then `property_list`'s bytes."""
    return _HEAD.pack(_CLASS_BASIC, 0, body_size) + properties


def _headers(value) -> bytes:
    if isinstance(value, list):  # to_amqp_table takes a list for a (here empty) proplist
        return encode_table({})
    if not isinstance(value, dict):
        raise BodyError(["not_table", "headers"])
    return encode_table(value)


def decode_payload(payload, encoding) -> bytes:
    """The body of a published message (`payload` with its `payload_encoding`)."""
    if not isinstance(payload, str):
        raise BodyError("payload_not_string")
    if encoding == "string":
        return payload.encode("utf-8", "surrogatepass")
    if encoding == "base64":
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise BodyError(["not_base64", payload]) from None
    raise BodyError(["unsupported_encoding", encoding])


# -- AMQP -> JSON --------------------------------------------------------------------------------

def properties_json(header: bytes):
    """The properties of a content header as the management API shows them."""
    props = P.Properties(header)
    shown = {}
    for index in reversed(range(len(PROPERTIES))):
        span = props.spans[index]
        if span is None:
            continue
        name, kind = PROPERTIES[index]
        start, end = span
        if kind == "s":
            shown[name] = header[start + 1:end].decode("utf-8", "replace")
        elif kind == "o":
            shown[name] = header[start]
        elif kind == "q":
            shown[name] = _U64.unpack_from(header, start)[0]
        else:
            shown[name] = jsonable_table(tables.decode_table(header, start)[0])
    return shown or []  # an empty Erlang proplist is rendered as a JSON list


def payload_json(body: bytes, encoding: str, truncate: int | None) -> tuple[str, str]:
    """(payload, payload_encoding) of a fetched message: text when the (truncated) bytes are
    UTF-8 and `encoding` is auto, else base64."""
    if truncate is not None and len(body) > truncate:
        body = body[:max(truncate, 0)]
    if encoding == "auto":
        try:
            return body.decode("utf-8"), "string"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), "base64"
