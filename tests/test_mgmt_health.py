"""Nodes, health checks and the aliveness test of the management API, over real HTTP, against
our broker or a real RabbitMQ's (helpers.mgmt)."""
from __future__ import annotations

import urllib.parse

import pytest

from helpers.mgmt import Mgmt

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}


def amqp_port(mgmt: Mgmt) -> int:
    return urllib.parse.urlsplit(mgmt.amqp_url).port


def mgmt_port(mgmt: Mgmt) -> int:
    return urllib.parse.urlsplit(mgmt.base).port


# -- nodes -------------------------------------------------------------------------------------

def test_nodes(mgmt: Mgmt):
    reply = mgmt.get("/api/nodes")
    assert reply.status == 200
    [node] = reply.json
    assert node["name"] == mgmt.get("/api/overview").json["node"]
    assert node["type"] == "disc"
    assert node["running"] is True
    assert node["partitions"] == []
    assert node["mem_alarm"] is False
    assert node["disk_free_alarm"] is False
    assert node["os_pid"].isdigit()
    for key in ("uptime", "processors", "mem_used", "fd_used", "fd_total", "sockets_used",
                "proc_used", "disk_free"):
        assert isinstance(node[key], int) and not isinstance(node[key], bool), key
    assert node["uptime"] > 0
    assert node["processors"] >= 1
    assert node["mem_used"] > 0
    assert 0 < node["fd_used"] <= node["fd_total"]
    assert node["disk_free"] > 0
    assert {"name": "topic", "description": "AMQP topic exchange, as per the AMQP specification",
            "enabled": True} in node["exchange_types"]
    assert {"name": "PLAIN", "description": "SASL PLAIN authentication mechanism",
            "enabled": True} in node["auth_mechanisms"]
    assert {"description": "RabbitMQ Management", "path": "/", "port": str(mgmt_port(mgmt))}.items() \
        <= node["contexts"][0].items()


def test_one_node(mgmt: Mgmt):
    name = mgmt.get("/api/overview").json["node"]
    reply = mgmt.get(f"/api/nodes/{urllib.parse.quote(name, safe='')}")
    assert reply.status == 200
    assert reply.json["name"] == name
    assert reply.json["running"] is True


def test_node_listing_takes_columns(mgmt: Mgmt):
    reply = mgmt.get("/api/nodes?columns=name,type")
    assert reply.status == 200
    assert [sorted(n) for n in reply.json] == [["name", "type"]]


# -- health checks -----------------------------------------------------------------------------

@pytest.mark.parametrize("check", ["alarms", "local-alarms", "virtual-hosts"])
def test_passing_checks(mgmt: Mgmt, check: str):
    reply = mgmt.get(f"/api/health/checks/{check}")
    assert reply.status == 200
    assert reply.json == {"status": "ok"}


def test_node_health_check_of_this_node(mgmt: Mgmt):
    """The deprecated /api/healthchecks/node (RabbitMQ 3.10 still serves it; AMQPStorm uses it)."""
    name = mgmt.get("/api/overview").json["node"]
    assert mgmt.get("/api/healthchecks/node").json == {"status": "ok"}
    assert mgmt.get(f"/api/healthchecks/node/{urllib.parse.quote(name, safe='')}").json == {"status": "ok"}
    reply = mgmt.get("/api/healthchecks/node/nosuch%40nowhere")
    assert (reply.status, reply.json) == (404, {"error": "Object Not Found", "reason": "Not Found"})


def test_port_listener(mgmt: Mgmt):
    port = amqp_port(mgmt)
    reply = mgmt.get(f"/api/health/checks/port-listener/{port}")
    assert reply.status == 200
    assert reply.json == {"status": "ok", "port": port}
    assert mgmt.get(f"/api/health/checks/port-listener/{mgmt_port(mgmt)}").status == 200


def test_port_without_listener(mgmt: Mgmt):
    reply = mgmt.get("/api/health/checks/port-listener/1")
    assert reply.status == 503
    body = reply.json
    assert {k: body[k] for k in ("status", "reason", "missing")} == \
        {"status": "failed", "reason": "No active listener", "missing": 1}
    assert {amqp_port(mgmt), mgmt_port(mgmt)} <= set(body["ports"])


def test_port_that_is_not_a_number(mgmt: Mgmt):
    reply = mgmt.get("/api/health/checks/port-listener/abc")
    assert reply.status == 400
    assert reply.json == {"error": "bad_request", "reason": "Invalid port"}


@pytest.mark.parametrize("given,protocol", [
    ("amqp", "amqp"), ("AMQP091", "amqp"), ("amqp0-9-1", "amqp"), ("http", "http"), ("management", "http"),
])
def test_protocol_listener(mgmt: Mgmt, given: str, protocol: str):
    reply = mgmt.get(f"/api/health/checks/protocol-listener/{given}")
    assert reply.status == 200
    assert reply.json == {"status": "ok", "protocol": protocol}


@pytest.mark.parametrize("given,missing", [("mqtt", "mqtt"), ("amqps", "amqp/ssl"), ("bogus", "bogus")])
def test_protocol_without_listener(mgmt: Mgmt, given: str, missing: str):
    reply = mgmt.get(f"/api/health/checks/protocol-listener/{given}")
    assert reply.status == 503
    body = reply.json
    assert {k: body[k] for k in ("status", "reason", "missing")} == \
        {"status": "failed", "reason": "No active listener", "missing": missing}
    assert {"amqp", "http"} <= set(body["protocols"])


# -- aliveness test ----------------------------------------------------------------------------

def test_aliveness_test(mgmt: Mgmt):
    for _ in range(2):  # the second run finds the queue in place
        reply = mgmt.get("/api/aliveness-test/%2F")
        assert reply.status == 200
        assert reply.json == {"status": "ok"}
    queue = mgmt.get("/api/queues/%2F/aliveness-test")
    assert queue.status == 200
    assert (queue.json["durable"], queue.json["auto_delete"], queue.json["exclusive"]) == (False, False, False)


def test_aliveness_test_of_unknown_vhost(mgmt: Mgmt):
    reply = mgmt.get("/api/aliveness-test/no-such-vhost")
    assert reply.status == 404
    assert reply.json == NOT_FOUND
