"""/api/vhosts: list, show, create or update (PUT) and delete virtual hosts.

PUT takes RabbitMQ's body {description, tags, default_queue_type, tracing}: description and
tags are replaced on every PUT, tracing only when given. RabbitMQ 3.10 reports
default_queue_type as "undefined" whatever was sent, and so does this broker. Creating a
vhost through the API gives the acting user full permissions on it, as rabbit_mgmt_wm_vhost
does; deleting one is the registry's (vhost_registry.py).
"""
from __future__ import annotations

from collections import Counter

from aiohttp import web

from ..permissions import FULL
from ..vhost_registry import VHostMeta
from . import responses
from .auth import logged_in
from .message_stats import vhost_message_stats
from .queues import unacked_by_queue
from .request_body import BodyError, json_object, parse_bool


def describe(vhost, meta: VHostMeta, node: str, unacked: Counter) -> dict:
    ready = sum(q.message_count for q in vhost.queues.values())
    pending = sum(n for q, n in unacked.items() if q.vhost is vhost)
    return {
        "name": vhost.name,
        "description": meta.description,
        "tags": list(meta.tags),
        "default_queue_type": "undefined",
        "metadata": {"description": meta.description, "tags": list(meta.tags)},
        "tracing": meta.tracing,
        "cluster_state": {node: "running"},
        "messages": ready + pending,
        "messages_ready": ready,
        "messages_unacknowledged": pending,
        **vhost_message_stats(vhost),
    }


class BadVHost(ValueError):
    """A vhost body RabbitMQ refuses; args[0] is the 400 reason."""


def parse_tags(value) -> tuple[str, ...]:
    """A comma-separated string or a list of strings."""
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        parts = value
    else:
        raise BadVHost("tags must be a comma-separated string or a list of strings")
    return tuple(t.strip() for t in parts if t.strip())


def meta_from_body(body: dict, current: VHostMeta | None) -> VHostMeta:
    description = body.get("description", "")
    if isinstance(description, (int, float)) and not isinstance(description, bool):
        description = str(description)  # RabbitMQ takes a number as its text
    if not isinstance(description, str):
        raise BadVHost("description must be a string")
    tags = parse_tags(body.get("tags", ""))
    tracing = current.tracing if current is not None else False
    if "tracing" in body:
        tracing = parse_bool(body["tracing"])
        if tracing is None:
            raise BadVHost(["not_boolean", body["tracing"]])
    return VHostMeta(description, tags, tracing)


def routes(broker, node: str) -> list[web.RouteDef]:
    registry = broker.vhost_registry

    def described(vhost, unacked: Counter) -> dict:
        return describe(vhost, registry.meta(vhost.name), node, unacked)

    async def list_vhosts(request: web.Request) -> web.Response:
        unacked = unacked_by_queue(broker)
        return responses.listing(request, [described(v, unacked) for v in responses.by_name(broker.vhosts)])

    async def show(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.not_found()
        return responses.json_response(described(vhost, unacked_by_queue(broker)))

    async def put(request: web.Request) -> web.Response:
        name = request.match_info["vhost"]
        try:
            body = await json_object(request)
        except BodyError as exc:
            return responses.bad_request(exc.reason)
        current = registry.meta(name) if name in broker.vhosts else None
        try:
            meta = meta_from_body(body, current)
        except BadVHost as exc:
            return responses.bad_request(exc.args[0])
        created = registry.put(name, meta)
        if created:
            broker.permissions.set(logged_in(broker.users, request).name, name, FULL, FULL, FULL)
        return web.Response(status=201 if created else 204)

    async def delete(request: web.Request) -> web.Response:
        if not registry.delete(request.match_info["vhost"]):
            return responses.not_found()
        return web.Response(status=204)

    return [
        web.get("/api/vhosts", list_vhosts),
        web.get("/api/vhosts/{vhost}", show),
        web.put("/api/vhosts/{vhost}", put),
        web.delete("/api/vhosts/{vhost}", delete),
    ]
