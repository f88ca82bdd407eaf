"""Reading a JSON request body the way rabbitmq_management does (rabbit_mgmt_util:decode,
with_decode, parse_bool), with its error reasons: `not_json`, `["not_boolean", value]`, and the
pretty-printed Erlang list of missing keys (`[{key_missing,routing_key}]`)."""
from __future__ import annotations

import json

from aiohttp import web

# io_lib's `~p` breaks a term that does not fit in 80 columns, one element a line
_ERLANG_LINE = 80


class BodyError(ValueError):
    """A body RabbitMQ refuses with a 400: `reason` is its error reason (text or JSON list)."""

    def __init__(self, reason):
        super().__init__(str(reason))
        self.reason = reason


async def json_object(request: web.Request) -> dict:
    """The body as a JSON object; an empty body is `{}`. Anything else is `not_json`."""
    text = await request.text()
    if not text.strip():
        return {}
    try:
        body = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except ValueError:
        raise BodyError("not_json") from None
    if isinstance(body, str):  # rabbit_mgmt_util:decode/1 singles this one out
        raise BodyError("invalid payload: the request body JSON-decoded to a string. "
                        "Is the input doubly-JSON-encoded?")
    if not isinstance(body, dict):
        raise BodyError("not_json")
    try:  # a lone surrogate ("\ud800") decodes, but is no text: it cannot be stored or sent
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BodyError("not_json") from None
    return body


def _no_constant(name: str):
    # NaN/Infinity are not JSON: RabbitMQ's decoder refuses them
    raise ValueError(name)


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):  # 1e400: RabbitMQ's decoder refuses it too
        raise ValueError(text)
    return value


def parse_bool(value) -> bool | None:
    """rabbit_misc:parse_bool: JSON booleans and the texts "true"/"false" (what rabbitmqadmin
    sends); None for anything else."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    return None


def flag(body: dict, key: str) -> bool:
    """A boolean field (absent: false); anything but a boolean is ["not_boolean", value]."""
    value = parse_bool(body.get(key, False))
    if value is None:
        raise BodyError(["not_boolean", body[key]])
    return value


def required(body: dict, keys: tuple[str, ...]) -> list:
    """The values of `keys`, in order; the missing ones are reported all at once."""
    missing = [key for key in keys if key not in body]
    if missing:
        raise BodyError(missing_keys(missing))
    return [body[key] for key in keys]


def missing_keys(keys: list[str]) -> str:
    """`[{key_missing,a},{key_missing,b}]` as Erlang's `~p` prints it (wrapped when long)."""
    terms = [f"{{key_missing,{key}}}" for key in keys]
    flat = "[" + ",".join(terms) + "]"
    if len(flat) < _ERLANG_LINE:
        return flat
    return "[" + ",\n ".join(terms) + "]"

