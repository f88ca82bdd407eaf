"""/api/nodes and /api/nodes/{node}: this broker as RabbitMQ's one (disc) node.

Only what this process can honestly measure is reported, from the standard library
(psutil is not a dependency): its memory (resident set size, /proc/self/statm), open file
descriptors and their limit, client sockets, asyncio tasks as the counterpart of Erlang
processes, the free space of the data directory's disk, pid, processors and uptime; the memory
and disk limits and whether their alarms are in effect (amqp_broker/alarms.py). Fields about
Erlang internals (GC, reductions, mnesia, io counters) are left out.
"""
from __future__ import annotations

import asyncio
import os
import resource
import shutil
import time

from aiohttp import web

from ..alarms import DISK, MEMORY, resident_memory
from ..auth import MECHANISMS
from ..exchanges import EXCHANGE_TYPES
from . import responses

EXCHANGE_DESCRIPTIONS = {  # each type module's description/0 in RabbitMQ and the plugin
    "direct": "AMQP direct exchange, as per the AMQP specification",
    "fanout": "AMQP fanout exchange, as per the AMQP specification",
    "topic": "AMQP topic exchange, as per the AMQP specification",
    "headers": "AMQP headers exchange, as per the AMQP specification",
    "x-delayed-message": "Delayed Message Exchange.",
}
MECHANISM_DESCRIPTIONS = {  # rabbit_auth_mechanism_plain/amqplain
    "PLAIN": "SASL PLAIN authentication mechanism",
    "AMQPLAIN": "QPid AMQPLAIN mechanism",
}


def open_descriptors() -> int | None:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            # listing the folder opens one descriptor, which the listing shows too
            return len(os.listdir(folder)) - 1
        except OSError:
            continue
    return None


def exchange_types() -> list[dict]:
    return [{"name": name, "description": EXCHANGE_DESCRIPTIONS.get(name, ""), "enabled": True}
            for name in EXCHANGE_TYPES]


def contexts(broker, node: str) -> list[dict]:
    """The HTTP contexts, as RabbitMQ lists its management listener (port as a string)."""
    return [{"node": node, "description": "RabbitMQ Management", "path": "/",
             "ip": broker.mgmt_host, "port": str(broker.mgmt_port)}]


def describe(broker, node: str, started: float) -> dict:
    body = {
        "name": node,
        "type": "disc",
        "running": True,
        "uptime": int((time.monotonic() - started) * 1000),
        "os_pid": str(os.getpid()),  # a string in RabbitMQ too
        "processors": os.cpu_count() or 1,
        "partitions": [],
        "cluster_links": [],
        "mem_alarm": MEMORY in broker.alarms.active,
        "disk_free_alarm": DISK in broker.alarms.active,
        "mem_limit": broker.alarms.memory_limit,
        "disk_free_limit": broker.alarms.disk_free_limit,
        "fd_total": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "sockets_used": len(broker.connections),
        # asyncio tasks stand for Erlang processes: the units of concurrency of this node
        "proc_used": len(asyncio.all_tasks()),
        "exchange_types": exchange_types(),
        "auth_mechanisms": [
            {"name": name, "description": MECHANISM_DESCRIPTIONS.get(name, ""), "enabled": True}
            for name in MECHANISMS
        ],
        "contexts": contexts(broker, node),
    }
    memory = resident_memory()
    if memory is not None:
        body["mem_used"] = memory
        body["mem_calculation_strategy"] = "rss"
    descriptors = open_descriptors()
    if descriptors is not None:
        body["fd_used"] = descriptors
    if broker.data_dir is not None:  # an in-memory broker has no disk to watch
        body["db_dir"] = str(broker.data_dir)
        body["disk_free"] = shutil.disk_usage(broker.data_dir).free
    return dict(sorted(body.items()))


def routes(broker, node: str) -> list[web.RouteDef]:
    # the management listener starts with the broker (Broker.start), so this is its uptime
    started = time.monotonic()

    async def list_nodes(request: web.Request) -> web.Response:
        return responses.listing(request, [describe(broker, node, started)])

    async def show(request: web.Request) -> web.Response:
        # RabbitMQ 3.10 answers an unknown node with an empty 500; the JSON 404 is the useful one
        if request.match_info["node"] != node:
            return responses.not_found()
        return responses.json_response(describe(broker, node, started))

    return [web.get("/api/nodes", list_nodes), web.get("/api/nodes/{node}", show)]
