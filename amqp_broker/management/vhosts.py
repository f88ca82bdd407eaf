"""GET /api/vhosts and /api/vhosts/{vhost}: the virtual hosts and their message totals."""
from __future__ import annotations

from collections import Counter

from aiohttp import web

from . import responses
from .message_stats import vhost_message_stats
from .queues import unacked_by_queue


def describe(vhost, node: str, unacked: Counter) -> dict:
    ready = sum(q.message_count for q in vhost.queues.values())
    pending = sum(n for q, n in unacked.items() if q.vhost is vhost)
    return {
        "name": vhost.name,
        "description": "Default virtual host" if vhost.name == "/" else "",
        "tags": [],
        "tracing": False,
        "cluster_state": {node: "running"},
        "messages": ready + pending,
        "messages_ready": ready,
        "messages_unacknowledged": pending,
        **vhost_message_stats(vhost),
    }


def routes(broker, node: str) -> list[web.RouteDef]:
    async def list_vhosts(request: web.Request) -> web.Response:
        unacked = unacked_by_queue(broker)
        return responses.listing(request, [describe(v, node, unacked) for v in responses.by_name(broker.vhosts)])

    async def show(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.not_found()
        return responses.json_response(describe(vhost, node, unacked_by_queue(broker)))

    return [web.get("/api/vhosts", list_vhosts), web.get("/api/vhosts/{vhost}", show)]
