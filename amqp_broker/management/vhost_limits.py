"""/api/vhost-limits[/{vhost}[/{name}]]: list, set (PUT {"value": N}) and clear (DELETE) a
vhost's `max-connections` / `max-queues` (amqp_broker/vhost_limits.py; stored with the
vhost's metadata, so they survive a restart), with rabbitmq_management
3.10's answers (rabbit_mgmt_wm_limits, rabbit_mgmt_wm_limit): 204 for a PUT or DELETE, a
vhost without limits left out of the listing, and its 400 texts (not HTML-escaped here).

A difference on purpose: DELETE on a vhost that does not exist is 404 (RabbitMQ 3.10 answers
with an empty 500).
"""
from __future__ import annotations

from aiohttp import web

from ..erlang_terms import erl_json
from ..vhost_limits import NAMES
from . import responses
from .request_body import BodyError, json_object


def describe(vhost) -> dict:
    return {"vhost": vhost.name, "value": vhost.limits.items()}


def value_error(name: str, value) -> str | None:
    """rabbit_vhost_limit's validation of one limit: a whole number (negative: no limit)."""
    if name not in NAMES:
        return f"Validation failed\n\nUnrecognised terms [{{{erl_json(name)},{erl_json(value)}}}] in limits\n"
    if not isinstance(value, int) or isinstance(value, bool):
        return f"Validation failed\n\n{name} should be a number, actually was {erl_json(value)}\n"
    return None


def routes(broker) -> list[web.RouteDef]:
    async def list_all(request: web.Request) -> web.Response:
        return responses.listing(request, [describe(v) for v in broker.vhosts.values() if v.limits.items()])

    async def list_vhost(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.not_found()
        return responses.listing(request, [describe(vhost)] if vhost.limits.items() else [])

    async def put(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.vhost_not_found()
        name = request.match_info["name"]
        try:
            body = await json_object(request)
        except BodyError as exc:
            return responses.bad_request(exc.reason)
        if "value" not in body:
            return responses.bad_request("[{key_missing,value}]")
        problem = value_error(name, body["value"])
        if problem is not None:
            return responses.bad_request(problem)
        vhost.limits.set(name, body["value"])
        broker.vhost_registry.save(vhost.name)
        return web.Response(status=204)

    async def delete(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.not_found()
        vhost.limits.clear(request.match_info["name"])
        broker.vhost_registry.save(vhost.name)
        return web.Response(status=204)

    return [
        web.get("/api/vhost-limits", list_all),
        web.get("/api/vhost-limits/{vhost}", list_vhost),
        web.put("/api/vhost-limits/{vhost}/{name}", put),
        web.delete("/api/vhost-limits/{vhost}/{name}", delete),
    ]
