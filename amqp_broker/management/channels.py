"""/api/channels: the channels of the open connections, all, one by name ("<connection name>
(<number>)"), a vhost's, and a connection's (/api/connections/{name}/channels)."""
from __future__ import annotations

from aiohttp import web

from . import consumers, responses
from .connections import details, find, opened_sessions


def describe(channel, node: str) -> dict:
    session = channel.session
    confirm, tx = channel.confirm, channel.tx
    return {
        "name": consumers.channel_name(channel),
        "number": channel.number,
        "node": node,
        "connection_details": details(session),
        "user": session.user.name,
        "user_who_performed_action": session.user.name,
        "vhost": session.vhost.name,
        # torn down after an error or our channel.close, waiting for the client's close-ok
        "state": "running" if channel.open else "closing",
        "consumer_count": len(channel.consumers),
        "prefetch_count": channel.prefetch,
        "global_prefetch_count": channel.global_prefetch,
        "messages_unacknowledged": channel.unacked_count,
        "messages_unconfirmed": confirm.pending_count if confirm is not None else 0,
        "messages_uncommitted": len(tx.publishes) if tx is not None else 0,
        "acks_uncommitted": len(tx.pending_settlements()) if tx is not None else 0,
        "confirm": confirm is not None,
        "transactional": tx is not None,
        "pending_raft_commands": 0,  # no quorum queues here, so never any
    }


def channels_of(sessions) -> list:
    return [channel for session in sessions for _number, channel in sorted(session.channels.items())]


def routes(broker, node: str) -> list[web.RouteDef]:
    async def list_all(request: web.Request) -> web.Response:
        return responses.listing(request, [describe(ch, node) for ch in channels_of(opened_sessions(broker))])

    async def list_vhost(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.not_found()
        sessions = [s for s in opened_sessions(broker) if s.vhost is vhost]
        return responses.listing(request, [describe(ch, node) for ch in channels_of(sessions)])

    async def list_connection(request: web.Request) -> web.Response:
        # RabbitMQ 3.10 answers an unknown connection here with an empty 500 (a crash in
        # rabbit_mgmt_wm_connection_channels); the JSON 404 of every other unknown object is
        # the useful answer
        conn = find(broker, request.match_info["name"])
        if conn is None:
            return responses.not_found()
        return responses.listing(request, [describe(ch, node) for ch in channels_of([conn.session])])

    async def show(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        for channel in channels_of(opened_sessions(broker)):
            if consumers.channel_name(channel) == name:
                body = describe(channel, node)
                body["consumer_details"] = consumers.of_channel(channel, node)
                return responses.json_response(body)
        return responses.not_found()

    return [
        web.get("/api/channels", list_all),
        web.get("/api/channels/{name}", show),
        web.get("/api/vhosts/{vhost}/channels", list_vhost),
        web.get("/api/connections/{name}/channels", list_connection),
    ]
