"""Reading a request's JSON body the way rabbitmq_management does (rabbit_mgmt_util:with_decode):
an empty body is an empty object, anything that is not a JSON object is a 400 (NotJSON)."""
from __future__ import annotations

import json

from aiohttp import web


class NotJSON(ValueError):
    """The body is not a JSON object; args[0] is RabbitMQ's 400 reason."""


async def json_object(request: web.Request) -> dict:
    text = await request.text()
    if not text.strip():
        return {}
    try:
        body = json.loads(text)
    except ValueError:
        raise NotJSON("not_json") from None
    if isinstance(body, str):  # rabbit_mgmt_util:decode/1 singles this one out
        raise NotJSON("invalid payload: the request body JSON-decoded to a string. "
                      "Is the input doubly-JSON-encoded?")
    if not isinstance(body, dict):
        raise NotJSON("not_json")
    return body


def missing_keys_reason(missing: list[str]) -> str:
    """RabbitMQ's reason for required keys a body lacks: the Erlang term as text."""
    return "[" + ",".join(f"{{key_missing,{key}}}" for key in missing) + "]"


def parse_bool(value) -> bool | None:
    """rabbit_misc:parse_bool: JSON booleans and the texts "true"/"false"; None for anything
    else (RabbitMQ then answers ["not_boolean", value])."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    return None
