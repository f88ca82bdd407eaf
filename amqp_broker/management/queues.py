"""/api/queues: list, show, declare (PUT) and delete queues.

Declare and delete go through the vhost's own `declare_queue`/`delete_queue`, so the checks
and their texts are the AMQP ones; only the status code differs (400 instead of the 406 close).
"""
from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from aiohttp import web

from .. import errors
from ..access import CONFIGURE, QUEUE, named_exchange
from ..args import Arguments
from . import responses
from .auth import access_of
from .request_body import BodyError, flag, json_object
from .message_stats import queue_activity, queue_message_stats
from .connections import opened_sessions
from .consumers import of_queue


def unacked_by_queue(broker) -> Counter:
    """Delivered, not yet acknowledged messages per queue, counted over every open channel.
    (The queue itself forgets a message once it is handed out; its channel holds it.)"""
    return unacked_totals(broker).counts


class Unacked(NamedTuple):
    """Delivered, unacknowledged messages per queue: how many, and their body bytes."""

    counts: Counter
    bytes: Counter


def unacked_totals(broker) -> Unacked:
    counts: Counter = Counter()
    sizes: Counter = Counter()
    for session in opened_sessions(broker):
        for channel in session.channels.values():
            for entry, queue, _consumer in channel.unacked.values():
                counts[queue] += 1
                sizes[queue] += entry.msg.body_size
    return Unacked(counts, sizes)


def describe(queue, node: str, unacked: Unacked) -> dict:
    ready, ready_bytes = queue.message_count, queue.message_bytes
    pending, pending_bytes = unacked.counts.get(queue, 0), unacked.bytes.get(queue, 0)
    policy = queue.policy
    consumers = queue.consumer_set
    exclusive = consumers.exclusive
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
        "message_bytes": ready_bytes + pending_bytes,
        "message_bytes_ready": ready_bytes,
        "message_bytes_unacknowledged": pending_bytes,
        "consumers": queue.consumer_count,
        "exclusive_consumer_tag": exclusive.tag if exclusive is not None else None,
        "single_active_consumer_tag": (
            consumers.members[0].tag if consumers.single_active and consumers.members else None
        ),
        "policy": policy.name if policy is not None else None,
        "effective_policy_definition": dict(policy.definition) if policy is not None else {},
        "operator_policy": None,  # operator policies are not implemented: none ever applies
        **queue_message_stats(queue),
        **queue_activity(queue),
    }


# a queue name must fit an AMQP shortstr (RabbitMQ's text says "less than 255" for at most 255)
MAX_NAME_BYTES = 255


def routes(broker, node: str) -> list[web.RouteDef]:
    def vhost_of(request: web.Request):
        return broker.vhosts.get(request.match_info["vhost"])

    async def list_all(request: web.Request) -> web.Response:
        unacked = unacked_totals(broker)
        return responses.listing(request, [describe(q, node, unacked) for v in responses.by_name(broker.vhosts) for q in responses.by_name(v.queues)]
        )

    async def list_vhost(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        if vhost is None:
            return responses.not_found()
        unacked = unacked_totals(broker)
        return responses.listing(request, [describe(q, node, unacked) for q in responses.by_name(vhost.queues)])

    async def show(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        queue = vhost.queues.get(request.match_info["name"]) if vhost is not None else None
        if queue is None:
            return responses.not_found()
        body = describe(queue, node, unacked_totals(broker))
        body["consumer_details"] = of_queue(queue, node)  # only for one queue, as RabbitMQ
        return responses.json_response(body)

    async def declare(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        if vhost is None:
            return responses.vhost_not_found()
        name = request.match_info["name"]
        size = len(name.encode("utf-8"))
        if size > MAX_NAME_BYTES:  # AMQP's shortstr cannot carry it: only this path can
            return responses.bad_request(f"queue should be less than 255 bytes, actually was {size}\n")
        try:
            body = await json_object(request)
            durable, auto_delete = flag(body, "durable"), flag(body, "auto_delete")
        except BodyError as exc:
            return responses.bad_request(exc.reason)
        arguments = body.get("arguments") or {}
        if not isinstance(arguments, dict):
            return responses.bad_request("arguments must be an object")
        existed = name in vhost.queues
        try:
            if not name.startswith("amq."):  # refused for its reserved prefix first
                dead_letter = None if existed else named_exchange(arguments, "x-dead-letter-exchange")
                access_of(broker, request, vhost.name).check_queue_declare(name, dead_letter)
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
            access_of(broker, request, vhost.name).check(QUEUE, name, CONFIGURE)
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
