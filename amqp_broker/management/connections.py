"""GET /api/connections: the open AMQP connections (those past connection.open)."""
from __future__ import annotations

from aiohttp import web

from ..session.states import STATE_NAMES
from .responses import listing


def opened_sessions(broker) -> list:
    """Sessions of the connections that logged in and opened a vhost, as RabbitMQ lists them."""
    return [conn.session for conn in broker.connections
            if conn.session is not None and conn.session.vhost is not None]


def describe(session) -> dict:
    peer = session.peer if isinstance(session.peer, tuple) else (None, None)
    return {
        "name": session.name,
        "user": session.user.name,
        "vhost": session.vhost.name,
        "peer_host": peer[0],
        "peer_port": peer[1],
        "channels": len(session.channels),
        "state": STATE_NAMES.get(session.state, "closing"),
        "protocol": "AMQP 0-9-1",
        "type": "network",
    }


def routes(broker) -> list[web.RouteDef]:
    async def list_connections(request: web.Request) -> web.Response:
        return listing(request, [describe(s) for s in opened_sessions(broker)])

    return [web.get("/api/connections", list_connections)]
