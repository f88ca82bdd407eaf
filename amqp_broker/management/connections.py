"""/api/connections: the open AMQP connections (those past connection.open), one by name, and
closing one (DELETE) the way `rabbitmq_management` does: connection.close 320
CONNECTION_FORCED with the `X-Reason` header as the text (rabbit_mgmt_wm_connection).

A connection's name is RabbitMQ's: "peer host:port -> local host:port" (rabbit_net:
connection_string), which the server gives each connection when it accepts it. In a path it
is percent-quoted ("127.0.0.1%3A54321%20-%3E%20127.0.0.1%3A5672"); aiohttp unquotes it.
"""
from __future__ import annotations

from aiohttp import web

from .. import errors
from ..session.states import STATE_NAMES
from . import responses

# what RabbitMQ closes with when the DELETE carries no X-Reason header
DEFAULT_CLOSE_REASON = "Closed via management plugin"
PROTOCOL = "AMQP 0-9-1"


def opened(broker) -> list:
    """The connections that logged in and opened a vhost, by name: the ones RabbitMQ lists."""
    conns = [conn for conn in broker.connections
             if conn.session is not None and conn.session.vhost is not None]
    return sorted(conns, key=lambda conn: conn.session.name)


def opened_sessions(broker) -> list:
    """The sessions of `opened(broker)`."""
    return [conn.session for conn in opened(broker)]


def find(broker, name: str):
    """The opened connection called `name`, or None."""
    for conn in opened(broker):
        if conn.session.name == name:
            return conn
    return None


def peer_of(session) -> tuple:
    """(host, port) of the client, (None, None) when the socket has no address."""
    peer = session.peer
    return (peer[0], peer[1]) if isinstance(peer, tuple) else (None, None)


def details(session) -> dict:
    """`connection_details`, as channels carry it."""
    host, port = peer_of(session)
    return {"name": session.name, "peer_host": host, "peer_port": port}


def describe(conn, node: str) -> dict:
    session = conn.session
    peer_host, peer_port = peer_of(session)
    local = conn.transport.get_extra_info("sockname") if conn.transport is not None else None
    host, port = (local[0], local[1]) if local else (None, None)
    connected_at = session.connected_at
    body = {
        "name": session.name,
        "node": node,
        "type": "network",
        "protocol": PROTOCOL,
        "user": session.user.name,
        "user_who_performed_action": session.user.name,
        "vhost": session.vhost.name,
        "host": host,
        "port": port,
        "peer_host": peer_host,
        "peer_port": peer_port,
        "auth_mechanism": session.auth_mechanism,
        "client_properties": responses.jsonable_table(session.client_properties),
        "connected_at": None if connected_at is None else int(connected_at * 1000),
        "timeout": session.heartbeat,
        "frame_max": session.frame_max,
        "channel_max": session.channel_max,
        "channels": len(session.channels),
        "state": STATE_NAMES.get(session.state, "closing"),
        **tls_fields(conn.tls),
    }
    # the name a client gave its connection (client property connection_name), as RabbitMQ
    # shows it beside the address-based one
    given = body["client_properties"].get("connection_name")
    if isinstance(given, str):
        body["user_provided_name"] = given
    return body


def tls_fields(tls) -> dict:
    """RabbitMQ's TLS fields of a connection (rabbit_reader's ssl_info / cert_info): null on
    plain TCP, and the peer certificate's null without a verified certificate."""
    if tls is None:
        return {"ssl": False, "ssl_protocol": None, "ssl_key_exchange": None, "ssl_cipher": None,
                "ssl_hash": None, "peer_cert_subject": None, "peer_cert_issuer": None,
                "peer_cert_validity": None}
    return {"ssl": True, "ssl_protocol": tls.protocol, "ssl_key_exchange": tls.key_exchange,
            "ssl_cipher": tls.cipher, "ssl_hash": tls.mac, "peer_cert_subject": tls.peer_cert_subject,
            "peer_cert_issuer": tls.peer_cert_issuer, "peer_cert_validity": tls.peer_cert_validity}


def close_text(reason: str | None) -> str:
    """connection.close's reply text for a DELETE (cut to a shortstr as RabbitMQ cuts it)."""
    return errors.reply_text(errors.CONNECTION_FORCED, reason or DEFAULT_CLOSE_REASON)


def routes(broker, node: str) -> list[web.RouteDef]:
    async def list_all(request: web.Request) -> web.Response:
        return responses.listing(request, [describe(conn, node) for conn in opened(broker)])

    async def list_vhost(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.not_found()
        return responses.listing(
            request, [describe(conn, node) for conn in opened(broker) if conn.session.vhost is vhost]
        )

    async def show(request: web.Request) -> web.Response:
        conn = find(broker, request.match_info["name"])
        if conn is None:
            return responses.not_found()
        return responses.json_response(describe(conn, node))

    async def close(request: web.Request) -> web.Response:
        conn = find(broker, request.match_info["name"])
        if conn is None:
            return responses.not_found()
        conn.close(errors.CONNECTION_FORCED, close_text(request.headers.get("X-Reason")))
        return web.Response(status=204)

    return [
        web.get("/api/connections", list_all),
        web.get("/api/connections/{name}", show),
        web.delete("/api/connections/{name}", close),
        web.get("/api/vhosts/{vhost}/connections", list_vhost),
    ]
