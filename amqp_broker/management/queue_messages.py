"""A queue's messages over HTTP: POST /api/queues/{vhost}/{name}/get (fetch, then ack, requeue
or reject them) and DELETE /api/queues/{vhost}/{name}/contents (purge).

RabbitMQ runs "get" as basic.gets on a channel of its own (rabbit_mgmt_wm_queue_get), so a
refusal is reported as that channel's close: 404 `not_found` / 401 `not_authorised` with the
AMQP reply text, anything else a 400 `"<code> <reply text>"` (rabbit_mgmt_util:with_channel).
A purge is a direct request: a refusal is a 400 with the explanation alone.
"""
from __future__ import annotations

from aiohttp import web

from .. import errors
from ..access import QUEUE, READ
from ..queue_fetch import SETTLEMENTS, fetch
from . import responses
from .auth import access_of
from .message_json import payload_json, properties_json
from .request_body import BodyError, json_object, required

ENCODINGS = ("auto", "base64")


def channel_error(exc: errors.AMQPError) -> web.Response:
    """A refusal of the management API's own channel, as rabbit_mgmt_util:with_channel reports it."""
    text = errors.reply_text(exc.code, exc.explanation)
    if exc.code == errors.NOT_FOUND:
        return responses.error(404, "not_found", text)
    if exc.code == errors.ACCESS_REFUSED:
        return responses.error(401, "not_authorised", text)
    return responses.bad_request(f"{exc.code} {text}")


def parse_int(value) -> int:
    """rabbit_mgmt_util:parse_int: a JSON integer, or a string of one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value, 10)
        except ValueError:
            pass
    raise BodyError(["not_integer", value])


def describe(fetched) -> dict:
    """One fetched message as rabbit_mgmt_wm_queue_get lists it (payload fields set later)."""
    entry = fetched.entry
    msg = entry.msg
    return {
        "payload_bytes": len(msg.body),
        "redelivered": fetched.redelivered,
        "exchange": msg.exchange,
        "routing_key": msg.routing_key,
        "message_count": fetched.remaining,
        "properties": properties_json(msg.header),
    }


def routes(broker) -> list[web.RouteDef]:
    async def get_messages(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:  # the management API's channel cannot open on it
            return responses.error(401, "not_authorised", "Access refused.")
        try:
            body = await json_object(request)
            ackmode, count, encoding = required(body, ("ackmode", "count", "encoding"))
            count = parse_int(count)
            if encoding not in ENCODINGS:
                raise BodyError("Unsupported encoding. Please use auto or base64.")
            truncate = parse_int(body["truncate"]) if body.get("truncate") is not None else None
            if ackmode not in SETTLEMENTS:
                raise BodyError(["unknown_ackmode", ackmode])
        except BodyError as exc:
            return responses.bad_request(exc.reason)
        access = access_of(broker, request, vhost.name)
        if not access.may_enter:  # the API's channel cannot open on the vhost
            return responses.error(401, "not_authorised", "Access refused.")
        name = request.match_info["name"]
        try:
            access.check(QUEUE, name, READ)
            queue = vhost.get_queue(name, None)
        except errors.AMQPError as exc:
            return channel_error(exc)
        # a negative count never reaches 0 in RabbitMQ's loop: every message is taken
        wanted = count if count >= 0 else queue.message_count
        shown = []
        for item in await fetch(queue, wanted, ackmode):
            message = describe(item)
            message["payload"], message["payload_encoding"] = payload_json(item.entry.msg.body, encoding, truncate)
            shown.append(message)
        return responses.json_response(shown)

    async def purge(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        name = request.match_info["name"]
        if vhost is None or name not in vhost.queues:
            return responses.not_found()
        try:
            access_of(broker, request, vhost.name).check(QUEUE, name, READ)
            vhost.purge_queue(name, None)
        except errors.AMQPError as exc:  # purge is a direct request: the explanation alone
            return responses.from_amqp_error(exc)
        return web.Response(status=204)

    return [
        web.post("/api/queues/{vhost}/{name}/get", get_messages),
        web.delete("/api/queues/{vhost}/{name}/contents", purge),
    ]
