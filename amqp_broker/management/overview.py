"""GET /api/overview (versions, node, object and message totals) and GET /api/whoami."""
from __future__ import annotations

from aiohttp import web

from .. import __version__
from .auth import logged_in
from .authz import Subject
from .connections import opened_sessions
from .message_stats import overview_message_stats
from .nodes import contexts, exchange_types
from .queues import unacked_by_queue
from .responses import VIEWER, json_response

PRODUCT_NAME = "amqp-broker"
# the RabbitMQ release whose behaviour (and management API) this broker follows
RABBITMQ_VERSION = "3.10.8"


def overview(broker, node: str, subject: Subject) -> dict:
    """RabbitMQ's overview. A monitor (or administrator) sees the whole node; any other user
    sees no node, listeners or contexts, and totals over its own vhosts and connections only
    (rabbit_mgmt_wm_overview)."""
    monitor = subject.is_monitor
    vhosts = [v for name, v in broker.vhosts.items() if monitor or subject.may_enter(name)]
    sessions = [s for s in opened_sessions(broker) if monitor or s.user.name == subject.name]
    queues = [q for v in vhosts for q in v.queues.values()]
    ready = sum(q.message_count for q in queues)
    unacked = unacked_by_queue(broker)
    pending = sum(n for q, n in unacked.items() if q.vhost in vhosts)
    body = {
        "product_name": PRODUCT_NAME,
        "product_version": __version__,
        "rabbitmq_version": RABBITMQ_VERSION,
        "management_version": RABBITMQ_VERSION,
        "cluster_name": node,
        "rates_mode": "basic",
        "disable_stats": False,
        "exchange_types": exchange_types(),
        "object_totals": {
            "connections": len(sessions),
            "channels": sum(len(s.channels) for s in sessions),
            "exchanges": sum(len(v.exchanges) for v in vhosts),
            "queues": len(queues),
        },
        "queue_totals": {
            "messages": ready + pending,
            "messages_ready": ready,
            "messages_unacknowledged": pending,
        },
        **overview_message_stats(broker),
    }
    if monitor:
        body["object_totals"]["consumers"] = sum(q.consumer_count for q in queues)
        body["node"] = node
        body["listeners"] = [{"node": node, "protocol": protocol, "ip_address": address, "port": port}
                             for protocol, address, port in broker.listeners()]
        body["contexts"] = contexts(broker, node)
    return body


def routes(broker, node: str) -> list[web.RouteDef]:
    async def show_overview(request: web.Request) -> web.Response:
        return json_response(overview(broker, node, request[VIEWER].subject))

    async def whoami(request: web.Request) -> web.Response:
        user = logged_in(broker.users, request)
        return json_response({"name": user.name, "tags": list(user.tags)})

    return [web.get("/api/overview", show_overview), web.get("/api/whoami", whoami)]
