"""JSON responses and RabbitMQ's management error bodies (`{"error": ..., "reason": ...}`).

The texts are the ones `rabbitmq_management` 3.10 answers with (rabbit_mgmt_util:not_found,
bad_request, not_authorised): clients and scripts match on them.
"""
from __future__ import annotations

import datetime
import json
from decimal import Decimal

from aiohttp import web

from .. import errors
from . import authz
from . import listing as listing_rules

BASIC_REALM = 'Basic realm="RabbitMQ Management"'
# the request's user and route rule, left on the request by the auth middleware for `listing`
VIEWER = web.RequestKey("viewer", authz.Viewer)


def json_response(body, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(body, separators=(",", ":"), default=_json_default),
        status=status,
        content_type="application/json",
    )


def error(status: int, error_name: str, reason, headers: dict | None = None) -> web.Response:
    response = json_response({"error": error_name, "reason": reason}, status)
    if headers:
        response.headers.update(headers)
    return response


def not_found() -> web.Response:
    """An unknown vhost, queue or exchange in the path."""
    return error(404, "Object Not Found", "Not Found")


def vhost_not_found() -> web.Response:
    """A PUT into a vhost that does not exist."""
    return error(404, "not_found", "vhost_not_found")


def bad_request(reason) -> web.Response:
    """`reason` is mostly a text, sometimes a JSON list (RabbitMQ renders Erlang terms)."""
    return error(400, "bad_request", reason)


def login_failed() -> web.Response:
    # RabbitMQ spells this one "not_authorized" (rabbit_mgmt_util), the others "not_authorised"
    return error(401, "not_authorized", "Login failed", {"WWW-Authenticate": BASIC_REALM})


def not_management_user() -> web.Response:
    return error(401, "not_authorised", "Not management user")


def not_authorised(reason: str) -> web.Response:
    """A logged-in user the route's rule refuses (`authz.refusal`'s reason)."""
    return error(401, "not_authorised", reason)


def from_amqp_error(exc: errors.AMQPError) -> web.Response:
    """A domain refusal as the management API reports it: access refused is 401 "Access
    refused.", every other refusal (406 inequivalent/invalid argument, 405 locked, ...) is 400
    with the explanation the AMQP close would carry."""
    if exc.code == errors.ACCESS_REFUSED:
        return error(401, "not_authorised", "Access refused.")
    return bad_request(exc.explanation)


def by_name(objects: dict) -> list:
    """The values of a name -> object dict in name order: RabbitMQ sorts its lists by name."""
    return [objects[name] for name in sorted(objects)]


def jsonable_table(table: dict) -> dict:
    """Declare arguments as JSON: longstr bytes as text, decimals as numbers, tables nested."""
    return {key: _jsonable(value) for key, value in table.items()}


def _jsonable(value):
    if isinstance(value, dict):
        return jsonable_table(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def listing(request: web.Request, items: list[dict]) -> web.Response:
    """A list endpoint's answer: the items the request's user may see (the auth middleware
    left its `authz.Viewer` on the request), with the request's sort/columns/pagination."""
    items = request[VIEWER].visible(items)
    try:
        return json_response(listing_rules.apply(request.query, items))
    except listing_rules.ListingError as exc:
        return error(400, exc.error, exc.reason)
