"""/api/permissions, /api/permissions/{vhost}/{user}, /api/vhosts/{vhost}/permissions and
the topic-permission lists (always empty: topic permissions are not kept).

PUT checks as rabbit_mgmt_wm_permission does: first that the vhost and the user exist
(400 vhost_or_user_not_found), then the three keys, then that each pattern compiles.
"""
from __future__ import annotations

from aiohttp import web

from ..permissions import InvalidRegex
from . import responses
from .request_body import BodyError, json_object, missing_keys

KEYS = ("configure", "write", "read")


def invalid_regexp_reason(exc: InvalidRegex) -> list:
    """RabbitMQ's {invalid_regexp, Pattern, {Message, Offset}}, strings as Erlang char lists."""
    return ["invalid_regexp", [ord(c) for c in exc.pattern], [[ord(c) for c in exc.message], exc.offset]]


def routes(broker) -> list[web.RouteDef]:
    permissions = broker.permissions

    def known(vhost: str, user: str) -> bool:
        return vhost in broker.vhosts and user in broker.users.users

    async def list_all(request: web.Request) -> web.Response:
        return responses.listing(request, [p.as_json() for p in permissions.list()])

    async def show(request: web.Request) -> web.Response:
        perm = permissions.get(request.match_info["vhost"], request.match_info["user"])
        if perm is None:
            return responses.not_found()
        return responses.json_response(perm.as_json())

    async def put(request: web.Request) -> web.Response:
        vhost, user = request.match_info["vhost"], request.match_info["user"]
        if not known(vhost, user):  # RabbitMQ looks at the path before the body
            return responses.bad_request("vhost_or_user_not_found")
        try:
            body = await json_object(request)
        except BodyError as exc:
            return responses.bad_request(exc.reason)
        missing = [key for key in KEYS if key not in body]
        if missing:
            return responses.bad_request(missing_keys(missing))
        patterns = [body[key] for key in KEYS]
        if not all(isinstance(p, str) for p in patterns):
            return responses.bad_request("configure, write and read must be strings")
        existed = permissions.get(vhost, user) is not None
        try:
            permissions.set(user, vhost, *patterns)
        except InvalidRegex as exc:
            return responses.bad_request(invalid_regexp_reason(exc))
        return web.Response(status=204 if existed else 201)

    async def delete(request: web.Request) -> web.Response:
        if not permissions.delete(request.match_info["vhost"], request.match_info["user"]):
            return responses.not_found()
        return web.Response(status=204)

    async def vhost_permissions(request: web.Request) -> web.Response:
        vhost = request.match_info["vhost"]
        if vhost not in broker.vhosts:
            return responses.not_found()
        return responses.listing(request, [p.as_json() for p in permissions.list(vhost=vhost)])

    async def vhost_topic_permissions(request: web.Request) -> web.Response:
        if request.match_info["vhost"] not in broker.vhosts:
            return responses.not_found()
        return responses.listing(request, [])

    async def topic_permissions(request: web.Request) -> web.Response:
        return responses.listing(request, [])

    return [
        web.get("/api/permissions", list_all),
        web.get("/api/permissions/{vhost}/{user}", show),
        web.put("/api/permissions/{vhost}/{user}", put),
        web.delete("/api/permissions/{vhost}/{user}", delete),
        web.get("/api/vhosts/{vhost}/permissions", vhost_permissions),
        web.get("/api/vhosts/{vhost}/topic-permissions", vhost_topic_permissions),
        web.get("/api/topic-permissions", topic_permissions),
    ]
