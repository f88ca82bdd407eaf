"""RabbitMQ's own rabbitmqadmin (3.10, Debian's rabbitmq-server ships it as /usr/bin/rabbitmqadmin)
run as a subprocess against our management API: list, declare, delete, publish, get, export,
import. .ci/run installs it; with MGMT_REFERENCE_URL the same tests run against RabbitMQ.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse

import pytest

from helpers.cli import eventually
from helpers.mgmt import Mgmt

RABBITMQADMIN = shutil.which("rabbitmqadmin") or "/usr/bin/rabbitmqadmin"

pytestmark = pytest.mark.skipif(
    shutil.which("rabbitmqadmin") is None,
    reason="rabbitmqadmin is not installed (Debian: apt-get install rabbitmq-server; .ci/run does it as root)",
)


class RabbitmqAdmin:
    def __init__(self, mgmt: Mgmt):
        parts = urllib.parse.urlsplit(mgmt.base)
        self.base_args = [RABBITMQADMIN, "-H", parts.hostname, "-P", str(parts.port),
                          "-u", mgmt.user, "-p", mgmt.password]

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.base_args + list(args), capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)

    def ok(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 0, (args, proc.returncode, proc.stdout, proc.stderr)
        return proc.stdout

    def list(self, *args: str) -> list:
        return json.loads(self.ok("-f", "raw_json", "list", *args))


@pytest.fixture
def rmq(mgmt: Mgmt) -> RabbitmqAdmin:
    return RabbitmqAdmin(mgmt)


@pytest.fixture
def names(mgmt: Mgmt, uid: str):
    queue, exchange = f"rma-q-{uid}", f"rma-x-{uid}"
    yield queue, exchange
    mgmt.delete(f"/api/queues/%2F/{queue}")
    mgmt.delete(f"/api/exchanges/%2F/{exchange}")


def test_list_queues_exchanges_connections_users_vhosts(rmq: RabbitmqAdmin, mgmt: Mgmt, names):
    queue, _ = names
    assert mgmt.put(f"/api/queues/%2F/{queue}").status in (201, 204)
    assert queue in [q["name"] for q in rmq.list("queues", "name")]
    assert queue in rmq.ok("list", "queues")  # the table form
    exchanges = rmq.list("exchanges", "name", "type")
    assert {"name": "amq.topic", "type": "topic"} in exchanges
    assert isinstance(rmq.list("connections"), list)
    assert "guest" in [u["name"] for u in rmq.list("users")]
    assert "/" in [v["name"] for v in rmq.list("vhosts")]


def test_declare_bind_publish_get_delete(rmq: RabbitmqAdmin, mgmt: Mgmt, names):
    queue, exchange = names
    assert "queue declared" in rmq.ok("declare", "queue", f"name={queue}", "durable=false")
    assert "exchange declared" in rmq.ok("declare", "exchange", f"name={exchange}", "type=direct")
    assert "binding declared" in rmq.ok("declare", "binding", f"source={exchange}", f"destination={queue}",
                                        "routing_key=rk")
    bindings = [b for b in rmq.list("bindings") if b["source"] == exchange]
    assert [(b["destination"], b["routing_key"]) for b in bindings] == [(queue, "rk")]
    assert "Message published" in rmq.ok("publish", f"exchange={exchange}", "routing_key=rk", "payload=hello")
    got = json.loads(rmq.ok("-f", "raw_json", "get", f"queue={queue}", "ackmode=ack_requeue_false"))
    assert [(m["payload"], m["routing_key"], m["exchange"]) for m in got] == [("hello", "rk", exchange)]
    assert json.loads(rmq.ok("-f", "raw_json", "get", f"queue={queue}")) == []
    assert "binding deleted" in rmq.ok("delete", "binding", f"source={exchange}", f"destination={queue}",
                                       "destination_type=queue", "properties_key=rk")
    assert "exchange deleted" in rmq.ok("delete", "exchange", f"name={exchange}")
    assert "queue deleted" in rmq.ok("delete", "queue", f"name={queue}")
    assert mgmt.get(f"/api/queues/%2F/{queue}").status == 404


def test_delete_missing_queue_fails_with_not_found(rmq: RabbitmqAdmin, names):
    queue, _ = names
    proc = rmq.run("delete", "queue", f"name={queue}")
    assert proc.returncode != 0 and "Not found" in proc.stdout + proc.stderr


def test_export_import(rmq: RabbitmqAdmin, mgmt: Mgmt, names, tmp_path):
    queue, exchange = names
    rmq.ok("declare", "queue", f"name={queue}")
    rmq.ok("declare", "exchange", f"name={exchange}", "type=fanout")
    target = tmp_path / "defs.json"
    assert "Exported definitions" in rmq.ok("export", str(target))
    exported = json.loads(target.read_text())
    assert queue in [q["name"] for q in exported["queues"]]
    mine = {
        "queues": [q for q in exported["queues"] if q["name"] == queue],
        "exchanges": [x for x in exported["exchanges"] if x["name"] == exchange],
        "bindings": [{"source": exchange, "vhost": "/", "destination": queue, "destination_type": "queue",
                      "routing_key": "", "arguments": {}}],
    }
    assert mgmt.delete(f"/api/queues/%2F/{queue}").status == 204
    assert mgmt.delete(f"/api/exchanges/%2F/{exchange}").status == 204
    source = tmp_path / "mine.json"
    source.write_text(json.dumps(mine))
    assert "Uploaded definitions" in rmq.ok("import", str(source))
    bindings = eventually(lambda: [b for b in rmq.list("bindings") if b["source"] == exchange], bool)
    assert [b["destination"] for b in bindings] == [queue]
    assert mgmt.get(f"/api/exchanges/%2F/{exchange}").json["type"] == "fanout"
