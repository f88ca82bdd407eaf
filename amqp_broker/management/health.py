"""Health checks (/api/health/checks/...) and /api/aliveness-test/{vhost}, with RabbitMQ
3.10's answers: 200 {"status":"ok",...} when the check passes, 503 {"status":"failed",
"reason":...} when it does not (rabbit_mgmt_wm_health_check_*).

The alarm checks fail while a memory or disk alarm is in effect (amqp_broker/alarms.py), with
the alarms listed as rabbit_alarm:format_as_maps/1 lists them; every vhost of this single node
runs whenever the broker does.
"""
from __future__ import annotations

import re
import struct

from aiohttp import web

from .. import errors
from ..alarms import DISK, MEMORY
from ..args import Arguments
from ..message import Message
from ..publish import publish
from . import responses

ALIVENESS_QUEUE = "aliveness-test"
ALIVENESS_BODY = b"test_message"
# our listeners as RabbitMQ names their protocols, in the order it lists them
PROTOCOLS = ("http", "amqp")
# rabbit_mgmt_wm_health_check_protocol_listener:normalize_protocol/1, for the names that
# mean a protocol we serve (others are compared as given, lower case)
PROTOCOL_ALIASES = {
    "amqp091": "amqp", "amqp0.9.1": "amqp", "amqp0-9-1": "amqp", "amqp0_9_1": "amqp",
    "amqp10": "amqp", "amqp1.0": "amqp", "amqp1-0": "amqp", "amqp1_0": "amqp",
    "amqps": "amqp/ssl", "management": "http", "http/management": "http",
}
# rabbit_alarm's resource names (format_as_map/1)
ALARM_RESOURCES = {MEMORY: "memory", DISK: "disk space"}
_INTEGER = re.compile(r"[+-]?[0-9]+")  # what Erlang's binary_to_integer/1 accepts
_NO_PROPERTIES = struct.Struct(">HHQH")  # content header: class, weight, body size, no flags


def ok(**extra) -> web.Response:
    return responses.json_response({"status": "ok", **extra})


def failed(reason: str, **extra) -> web.Response:
    return responses.json_response({"status": "failed", "reason": reason, **extra}, 503)


def listening_ports(broker) -> list[int]:
    return sorted({port for port in (broker.port, broker.mgmt_port) if port is not None})


async def aliveness(vhost, delayed) -> bool:
    """Declare the test queue, publish to it and get the message back, as the aliveness test
    does (the queue stays, so a test run every few seconds creates nothing new)."""
    vhost.declare_queue(ALIVENESS_QUEUE, False, False, False, False, Arguments.from_plain({}), None)
    queue = vhost.queues[ALIVENESS_QUEUE]
    header = _NO_PROPERTIES.pack(60, 0, len(ALIVENESS_BODY), 0)
    publish(vhost, vhost.get_exchange(""), Message("", ALIVENESS_QUEUE, header, ALIVENESS_BODY), delayed)
    entry = queue.take()
    if entry is None and queue.needs_page_in:  # its head is on disk: read it back first
        await queue.wait_paged_in()
        entry = queue.take()
    if entry is None:
        return False
    queue.forget(entry)  # no_ack: gone once taken
    return True


def alarm_maps(active, node: str) -> list[dict]:
    return [{"resource": ALARM_RESOURCES[r], "node": node} for r in (MEMORY, DISK) if r in active]


def routes(broker, node: str) -> list[web.RouteDef]:
    def alarm_check(reason: str) -> web.Response:
        active = broker.alarms.active
        if not active:
            return ok()
        return failed(reason, alarms=alarm_maps(active, node))

    async def alarms(request: web.Request) -> web.Response:
        # rabbit_mgmt_wm_health_check_alarms (this node is the whole cluster)
        return alarm_check("There are alarms in effect in the cluster")

    async def local_alarms(request: web.Request) -> web.Response:
        return alarm_check("There are alarms in effect on the node")

    async def node_check(request: web.Request) -> web.Response:
        # the pre-3.8 node health check (deprecated, still served by 3.10 and used by clients
        # such as AMQPStorm): this node is healthy when it answers; another node is unknown
        if request.match_info.get("node", node) != node:
            return responses.not_found()
        return ok()

    async def virtual_hosts(request: web.Request) -> web.Response:
        return ok()

    async def port_listener(request: web.Request) -> web.Response:
        text = request.match_info["port"]
        if not _INTEGER.fullmatch(text):
            return responses.bad_request("Invalid port")
        port, ports = int(text), listening_ports(broker)
        if port in ports:
            return ok(port=port)
        return failed("No active listener", missing=port, ports=ports)

    async def protocol_listener(request: web.Request) -> web.Response:
        name = request.match_info["protocol"].lower()
        protocol = PROTOCOL_ALIASES.get(name, name)
        if protocol in PROTOCOLS:
            return ok(protocol=protocol)
        return failed("No active listener", missing=protocol, protocols=list(PROTOCOLS))

    async def aliveness_test(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.not_found()
        try:
            alive = await aliveness(vhost, broker.delayed)
        except errors.AMQPError as exc:  # e.g. a policy made the queue refuse the message
            return failed(exc.text)
        return ok() if alive else failed("aliveness-test queue is empty")

    return [
        web.get("/api/health/checks/alarms", alarms),
        web.get("/api/health/checks/local-alarms", local_alarms),
        web.get("/api/health/checks/virtual-hosts", virtual_hosts),
        web.get("/api/health/checks/port-listener/{port}", port_listener),
        web.get("/api/health/checks/protocol-listener/{protocol}", protocol_listener),
        web.get("/api/aliveness-test/{vhost}", aliveness_test),
        web.get("/api/healthchecks/node", node_check),
        web.get("/api/healthchecks/node/{node}", node_check),
    ]
