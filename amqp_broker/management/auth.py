"""HTTP basic auth with the broker's users, as `rabbitmq_management` does it.

The password check is the AMQP login's (`UserStore.authenticate` with a PLAIN response), so the
hashing and the loopback-only rule for `guest` are the same. A logged-in user also needs one of
the management tags; RabbitMQ answers the three failures differently (see `responses`).
"""
from __future__ import annotations

import base64
import binascii

from aiohttp import web

from ..auth import AuthError, User, UserStore
from . import responses

MANAGEMENT_TAGS = frozenset({"administrator", "monitoring", "policymaker", "management"})


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
    if not MANAGEMENT_TAGS.intersection(user.tags):
        return responses.not_management_user()
    return user


def logged_in(users: UserStore, request: web.Request) -> User:
    """The user of a request the middleware let through."""
    username, _password = credentials(request.headers.get("Authorization"))
    return users.users[username]


def middleware(users: UserStore):
    @web.middleware
    async def authenticate(request: web.Request, handler):
        result = login(users, request.headers.get("Authorization"), request.remote)
        if isinstance(result, web.Response):
            return result
        try:
            return await handler(request)
        except web.HTTPNotFound:  # no such path: RabbitMQ's JSON 404, not aiohttp's text one
            return responses.not_found()
        except web.HTTPMethodNotAllowed as exc:  # RabbitMQ's 405 has no body
            return web.Response(status=405, headers={"Allow": ", ".join(sorted(exc.allowed_methods))})

    return authenticate
