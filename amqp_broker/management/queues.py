"""/api/queues: list, show, declare (PUT) and delete queues.

Declare and delete go through the vhost's own `declare_queue`/`delete_queue`, so the checks
and their texts are the AMQP ones; only the status code differs (400 instead of the 406 close).
"""
from __future__ import annotations

import json
from collections import Counter

from aiohttp import web

from .. import errors
from ..args import Arguments
from . import responses
from .message_stats import queue_message_stats
from .connections import opened_sessions


def unacked_by_queue(broker) -> Counter:
    """Delivered, not yet acknowledged messages per queue, counted over every open channel.
    (The queue itself forgets a message once it is handed out; its channel holds it.)"""
    counts: Counter = Counter()
    for session in opened_sessions(broker):
        for channel in session.channels.values():
            for _entry, queue, _consumer in channel.unacked.values():
                counts[queue] += 1
    return counts


def describe(queue, node: str, unacked: Counter) -> dict:
    ready = queue.message_count
    pending = unacked.get(queue, 0)
    return {
        "name": queue.name,
        "vhost": queue.vhost.name,
        "durable": queue.durable,
        "auto_delete": queue.auto_delete,
        "exclusive": queue.exclusive_owner is not None,
        "arguments": responses.jsonable_table(queue.arguments),
        "node": node,
        "type": "classic",
        "state": "running",
        "messages": ready + pending,
        "messages_ready": ready,
        "messages_unacknowledged": pending,
        "message_bytes_ready": queue.message_bytes,
        "consumers": queue.consumer_count,
        "policy": queue.policy.name if queue.policy is not None else None,
        **queue_message_stats(queue),
    }


class NotBoolean(ValueError):
    """A flag of the PUT body that is not a JSON boolean; RabbitMQ's reason is the pair
    ["not_boolean", value]."""


def _bool(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise NotBoolean(value)
    return value


def routes(broker, node: str) -> list[web.RouteDef]:
    def vhost_of(request: web.Request):
        return broker.vhosts.get(request.match_info["vhost"])

    async def list_all(request: web.Request) -> web.Response:
        unacked = unacked_by_queue(broker)
        return responses.listing(request, [describe(q, node, unacked) for v in responses.by_name(broker.vhosts) for q in responses.by_name(v.queues)]
        )

    async def list_vhost(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        if vhost is None:
            return responses.not_found()
        unacked = unacked_by_queue(broker)
        return responses.listing(request, [describe(q, node, unacked) for q in responses.by_name(vhost.queues)])

    async def show(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        queue = vhost.queues.get(request.match_info["name"]) if vhost is not None else None
        if queue is None:
            return responses.not_found()
        return responses.json_response(describe(queue, node, unacked_by_queue(broker)))

    async def declare(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        if vhost is None:
            return responses.vhost_not_found()
        try:
            body = json.loads(await request.text() or "{}")
        except ValueError:
            return responses.bad_request("not_json")
        if not isinstance(body, dict):
            return responses.bad_request("not_json")
        name = request.match_info["name"]
        try:
            durable, auto_delete = _bool(body, "durable"), _bool(body, "auto_delete")
        except NotBoolean as exc:
            return responses.bad_request(["not_boolean", exc.args[0]])
        arguments = body.get("arguments") or {}
        if not isinstance(arguments, dict):
            return responses.bad_request("arguments must be an object")
        existed = name in vhost.queues
        try:
            # no connection: the management API cannot declare exclusive queues
            vhost.declare_queue(name, False, durable, False, auto_delete, Arguments.from_plain(arguments), None)
        except errors.AMQPError as exc:
            return responses.from_amqp_error(exc)
        return web.Response(status=204 if existed else 201)

    async def delete(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        name = request.match_info["name"]
        if vhost is None or name not in vhost.queues:
            return responses.not_found()
        if_unused = request.query.get("if-unused") == "true"
        if_empty = request.query.get("if-empty") == "true"
        try:
            vhost.delete_queue(name, if_unused, if_empty, None)
        except errors.AMQPError as exc:
            return responses.from_amqp_error(exc)
        return web.Response(status=204)

    return [
        web.get("/api/queues", list_all),
        web.get("/api/queues/{vhost}", list_vhost),
        web.get("/api/queues/{vhost}/{name}", show),
        web.put("/api/queues/{vhost}/{name}", declare),
        web.delete("/api/queues/{vhost}/{name}", delete),
    ]
