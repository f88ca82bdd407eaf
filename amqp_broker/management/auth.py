"""HTTP basic auth with the broker's users, and the authorisation of each request, as
`rabbitmq_management` does them.

The password check is the AMQP login's (`UserStore.authenticate` with a PLAIN response), so the
hashing and the loopback-only rule for `guest` are the same. A logged-in user also needs one of
the management tags; RabbitMQ answers the three failures differently (see `responses`). Then
the route's rule (`authz.RULES`, found by the matched route's template) decides whether the
user may go on; the handler's list answer shows only what `authz.visible` lets the user see
(`responses.listing` applies it).
"""
from __future__ import annotations

import base64
import binascii

from aiohttp import web

from ..access import Access
from ..auth import AuthError, User, UserStore
from . import authz, responses
from .channels import channels_of
from .connections import find as find_connection
from .connections import opened_sessions
from .consumers import channel_name


def credentials(header: str | None) -> tuple[str, str] | None:
    """(username, password) of an `Authorization: Basic ...` header, None if there is none."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


def login(users: UserStore, header: str | None, peer_host: str | None) -> User | web.Response:
    """The user the header names, or the 401 response to send instead."""
    creds = credentials(header)
    if creds is None:
        # no credentials at all: RabbitMQ asks for them with an empty 401
        return web.Response(status=401, headers={"WWW-Authenticate": responses.BASIC_REALM})
    username, password = creds
    try:
        user = users.authenticate("PLAIN", b"\x00" + username.encode() + b"\x00" + password.encode(), peer_host)
    except AuthError:
        return responses.login_failed()
    if not authz.MANAGEMENT_TAGS.intersection(user.tags):
        return responses.not_management_user()
    return user


def logged_in(users: UserStore, request: web.Request) -> User:
    """The user of a request the middleware let through."""
    username, _password = credentials(request.headers.get("Authorization"))
    return users.users[username]


def access_of(broker, request: web.Request, vhost: str) -> Access:
    """The logged-in user's rights on `vhost`: RabbitMQ makes the API's changes on an AMQP
    channel of that user, so the same permission checks apply."""
    return Access(broker.permissions, vhost, logged_in(broker.users, request).name)


def subject_of(broker, user: User) -> authz.Subject:
    """The user with the vhosts it has a permission entry on."""
    vhosts = frozenset(p.vhost for p in broker.permissions.list(user=user.name))
    return authz.Subject(user.name, frozenset(user.tags), vhosts)


def _owner(broker, owned: authz.Owned, name: str) -> str | None:
    """The user of the connection or channel called `name`, None if there is none."""
    if owned is authz.Owned.CONNECTION:
        conn = find_connection(broker, name)
        return conn.session.user.name if conn is not None else None
    for channel in channels_of(opened_sessions(broker)):
        if channel_name(channel) == name:
            return channel.session.user.name
    return None


def target_of(broker, rule: authz.Rule, match_info) -> authz.Target:
    vhost = match_info.get("vhost")
    if vhost is not None and vhost not in broker.vhosts:
        vhost = None  # a missing vhost passes the vhost checks: the handler answers 404
    owner = _owner(broker, rule.owned, match_info["name"]) if rule.owned is not None else None
    return authz.Target(vhost, owner)


def middleware(broker):
    @web.middleware
    async def authenticate(request: web.Request, handler):
        resource = request.match_info.route.resource
        rule = authz.rule_for(request.method, resource.canonical if resource is not None else None)
        if rule.check is not authz.Check.PUBLIC:
            result = login(broker.users, request.headers.get("Authorization"), request.remote)
            if isinstance(result, web.Response):
                return result
            subject = subject_of(broker, result)
            reason = authz.refusal(subject, request.method, rule, target_of(broker, rule, request.match_info))
            if reason is not None:
                return responses.not_authorised(reason)
            request[responses.VIEWER] = authz.Viewer(subject, rule)
        try:
            return await handler(request)
        except web.HTTPNotFound:  # no such path: RabbitMQ's JSON 404, not aiohttp's text one
            return responses.not_found()
        except web.HTTPMethodNotAllowed as exc:  # RabbitMQ's 405 has no body
            return web.Response(status=405, headers={"Allow": ", ".join(sorted(exc.allowed_methods))})

    return authenticate
