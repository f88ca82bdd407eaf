"""GET /api/overview (versions, node, object and message totals) and GET /api/whoami."""
from __future__ import annotations

from aiohttp import web

from .. import __version__
from .auth import logged_in
from .connections import opened_sessions
from .message_stats import overview_message_stats
from .queues import unacked_by_queue
from .responses import json_response

PRODUCT_NAME = "amqp-broker"
# the RabbitMQ release whose behaviour (and management API) this broker follows
RABBITMQ_VERSION = "3.10.8"


def overview(broker, node: str) -> dict:
    sessions = opened_sessions(broker)
    queues = [q for v in broker.vhosts.values() for q in v.queues.values()]
    ready = sum(q.message_count for q in queues)
    pending = sum(unacked_by_queue(broker).values())
    return {
        "product_name": PRODUCT_NAME,
        "product_version": __version__,
        "rabbitmq_version": RABBITMQ_VERSION,
        "management_version": RABBITMQ_VERSION,
        "node": node,
        "cluster_name": node,
        "object_totals": {
            "connections": len(sessions),
            "channels": sum(len(s.channels) for s in sessions),
            "exchanges": sum(len(v.exchanges) for v in broker.vhosts.values()),
            "queues": len(queues),
            "consumers": sum(q.consumer_count for q in queues),
        },
        "queue_totals": {
            "messages": ready + pending,
            "messages_ready": ready,
            "messages_unacknowledged": pending,
        },
        **overview_message_stats(broker),
    }


def routes(broker, node: str) -> list[web.RouteDef]:
    async def show_overview(request: web.Request) -> web.Response:
        return json_response(overview(broker, node))

    async def whoami(request: web.Request) -> web.Response:
        user = logged_in(broker.users, request)
        return json_response({"name": user.name, "tags": list(user.tags)})

    return [web.get("/api/overview", show_overview), web.get("/api/whoami", whoami)]
