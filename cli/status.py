"""`amqp-broker status`: the broker at a glance, from /api/overview and /api/nodes (as
rabbitmq-diagnostics status shows it)."""
from __future__ import annotations

from .http_client import ManagementClient, api_path
from .output import FORMAT_OPTION, Format, emit_object

OBJECT_TOTALS = ("connections", "channels", "exchanges", "queues", "consumers")
QUEUE_TOTALS = ("messages", "messages_ready", "messages_unacknowledged")
NODE_FIELDS = ("running", "uptime", "mem_used", "mem_limit", "mem_alarm", "disk_free", "disk_free_limit",
               "disk_free_alarm", "fd_used", "fd_total", "sockets_used", "sockets_total", "proc_used")


def summary(overview: dict, nodes: list) -> dict:
    """One flat object: product and node, totals, and the first node's resources."""
    status = {
        "product_name": overview.get("product_name"),
        "product_version": overview.get("product_version"),
        "node": overview.get("node"),
        "cluster_name": overview.get("cluster_name"),
    }
    for key in OBJECT_TOTALS:
        status[key] = overview.get("object_totals", {}).get(key)
    for key in QUEUE_TOTALS:
        status[key] = overview.get("queue_totals", {}).get(key)
    status["listeners"] = [f"{listener.get('protocol')} {listener.get('ip_address')}:{listener.get('port')}"
                           for listener in overview.get("listeners", [])]
    node = next((n for n in nodes if n.get("name") == overview.get("node")), nodes[0] if nodes else {})
    for key in NODE_FIELDS:
        if key in node:
            status[key] = node[key]
    return status


def status(api: ManagementClient, fmt: Format = FORMAT_OPTION) -> None:
    """Show the broker's version, object counts, listeners and resource use."""
    emit_object(summary(api.get(api_path("overview")), api.get(api_path("nodes"))), fmt)
