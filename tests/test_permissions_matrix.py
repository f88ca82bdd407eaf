"""Permissions, operation by operation: a user allowed to configure names starting with "c",
write names starting with "w" and read names starting with "r" (or "cr") gets ok or RabbitMQ's
refusal with its exact text, over AMQP and over the management API.

Runs against our broker, or against the reference RabbitMQ with MGMT_REFERENCE_URL and
AMQP_REFERENCE_URL set (the users, vhost and permissions are made through the management
API either way, and removed afterwards).
"""
from __future__ import annotations

import re
import urllib.parse
import uuid
from dataclasses import dataclass

import pika
import pytest
from pika.exceptions import ChannelClosedByBroker, ProbableAccessDeniedError

from helpers.mgmt import Mgmt

PASSWORD = "secret"


@dataclass
class World:
    mgmt: Mgmt
    vhost: str
    user: str
    uid: str

    def n(self, prefix: str) -> str:
        """A resource name with the test's suffix: the prefix decides the permissions."""
        return f"{prefix}-{self.uid}"

    def url(self, vhost: str | None = None, user: str | None = None, password: str = PASSWORD) -> str:
        parts = urllib.parse.urlsplit(self.mgmt.amqp_url)
        vhost = self.vhost if vhost is None else vhost
        return (f"amqp://{user or self.user}:{password}@{parts.hostname}:{parts.port}/"
                f"{urllib.parse.quote(vhost, safe='')}")

    def refused(self, kind: str, name: str) -> str:
        return f"ACCESS_REFUSED - access to {kind} '{name}' in vhost '{self.vhost}' refused for user '{self.user}'"

    def path(self, *parts: str) -> str:
        return "/api/" + "/".join(urllib.parse.quote(p, safe="") for p in parts)

    def as_user(self, method: str, path: str, body=None):
        return self.mgmt.request(method, path, body, auth=(self.user, PASSWORD))


@pytest.fixture(scope="module")
def world(mgmt: Mgmt):
    uid = uuid.uuid4().hex[:10]  # one suffix for the module's resources (the uid fixture's)
    w = World(mgmt, f"perm-{uid}", f"perm-user-{uid}", uid)
    assert mgmt.put(w.path("vhosts", w.vhost)).status == 201  # the creator (guest) gets ".*"
    mgmt.add_user(w.user, PASSWORD, ("management",))
    reply = mgmt.put(w.path("permissions", w.vhost, w.user), {"configure": "^c", "write": "^w", "read": "^r|^cr"})
    assert reply.status in (201, 204), reply
    conn = pika.BlockingConnection(pika.URLParameters(w.url(user="guest", password="guest")))
    ch = conn.channel()
    for q in ("cq", "wq", "rq", "xq"):
        ch.queue_declare(w.n(q))
    for x in ("cx", "wx", "rx", "xx"):
        ch.exchange_declare(w.n(x), "direct")
    ch.queue_bind(w.n("xq"), w.n("rx"), "guest-bound")
    conn.close()
    yield w
    mgmt.delete(w.path("vhosts", w.vhost))
    mgmt.remove_user(w.user)


def attempt(world: World, operation) -> tuple[int, str] | None:
    """Run `operation(channel)` as the restricted user: None if it went through, else the
    channel close's (code, text)."""
    conn = pika.BlockingConnection(pika.URLParameters(world.url()))
    try:
        operation(conn.channel())
        return None
    except ChannelClosedByBroker as exc:
        return exc.reply_code, exc.reply_text
    finally:
        if conn.is_open:
            conn.close()


def publish(exchange: str):
    def run(ch):
        ch.confirm_delivery()
        ch.basic_publish(exchange, "k", b"m")
    return run


def consume(queue: str):
    def run(ch):
        ch.basic_consume(queue, lambda *a: None)
    return run


# (operation, the resource it needs: (kind, prefix) refused when the prefix is "x", None: ok)
AMQP_CASES = {
    "queue.declare allowed": (lambda w: lambda ch: ch.queue_declare(w.n("cq-new")), None),
    "queue.declare refused": (lambda w: lambda ch: ch.queue_declare(w.n("xq")), ("queue", "xq")),
    "queue.declare passive needs nothing": (lambda w: lambda ch: ch.queue_declare(w.n("xq"), passive=True), None),
    "queue.delete refused": (lambda w: lambda ch: ch.queue_delete(w.n("xq")), ("queue", "xq")),
    "queue.delete of a missing queue refused": (lambda w: lambda ch: ch.queue_delete(w.n("xnone")), ("queue", "xnone")),
    "queue.delete allowed": (lambda w: lambda ch: (ch.queue_declare(w.n("cdel")), ch.queue_delete(w.n("cdel"))), None),
    "queue.purge allowed": (lambda w: lambda ch: ch.queue_purge(w.n("rq")), None),
    "queue.purge refused": (lambda w: lambda ch: ch.queue_purge(w.n("xq")), ("queue", "xq")),
    "basic.get allowed": (lambda w: lambda ch: ch.basic_get(w.n("rq")), None),
    "basic.get refused": (lambda w: lambda ch: ch.basic_get(w.n("xq")), ("queue", "xq")),
    "basic.consume allowed": (lambda w: consume(w.n("rq")), None),
    "basic.consume refused": (lambda w: consume(w.n("xq")), ("queue", "xq")),
    "basic.consume of a missing queue refused": (lambda w: consume(w.n("xnone")), ("queue", "xnone")),
    "basic.publish allowed": (lambda w: publish(w.n("wx")), None),
    "basic.publish refused": (lambda w: publish(w.n("xx")), ("exchange", "xx")),
    "basic.publish to a missing exchange refused": (lambda w: publish(w.n("xnone")), ("exchange", "xnone")),
    "exchange.declare allowed": (lambda w: lambda ch: ch.exchange_declare(w.n("cx-new"), "direct"), None),
    "exchange.declare refused": (lambda w: lambda ch: ch.exchange_declare(w.n("xx"), "direct"), ("exchange", "xx")),
    "exchange.declare passive needs nothing":
        (lambda w: lambda ch: ch.exchange_declare(w.n("xx"), "direct", passive=True), None),
    "exchange.delete refused": (lambda w: lambda ch: ch.exchange_delete(w.n("xx")), ("exchange", "xx")),
    "exchange.delete allowed":
        (lambda w: lambda ch: (ch.exchange_declare(w.n("cdel"), "direct"), ch.exchange_delete(w.n("cdel"))), None),
    "queue.bind allowed": (lambda w: lambda ch: ch.queue_bind(w.n("wq"), w.n("rx"), "k"), None),
    "queue.bind refused on the queue": (lambda w: lambda ch: ch.queue_bind(w.n("xq"), w.n("rx"), "k"), ("queue", "xq")),
    "queue.bind refused on the exchange":
        (lambda w: lambda ch: ch.queue_bind(w.n("wq"), w.n("xx"), "k"), ("exchange", "xx")),
    "queue.unbind refused":
        (lambda w: lambda ch: ch.queue_unbind(w.n("xq"), w.n("rx"), "guest-bound"), ("queue", "xq")),
    "queue.unbind allowed": (lambda w: lambda ch: ch.queue_unbind(w.n("wq"), w.n("rx"), "none"), None),
    "exchange.bind allowed": (lambda w: lambda ch: ch.exchange_bind(w.n("wx"), w.n("rx"), "k"), None),
    "exchange.bind refused on the source":
        (lambda w: lambda ch: ch.exchange_bind(w.n("wx"), w.n("xx"), "k"), ("exchange", "xx")),
    "exchange.bind refused on the destination":
        (lambda w: lambda ch: ch.exchange_bind(w.n("xx"), w.n("rx"), "k"), ("exchange", "xx")),
    "exchange.unbind refused": (lambda w: lambda ch: ch.exchange_unbind(w.n("xx"), w.n("rx"), "k"), ("exchange", "xx")),
    "dead-letter exchange needs read on the queue":
        (lambda w: lambda ch: ch.queue_declare(w.n("cdl"), arguments={"x-dead-letter-exchange": w.n("wx")}),
         ("queue", "cdl")),
    "dead-letter exchange needs write on it":
        (lambda w: lambda ch: ch.queue_declare(w.n("crdl"), arguments={"x-dead-letter-exchange": w.n("xx")}),
         ("exchange", "xx")),
    "dead-letter exchange allowed":
        (lambda w: lambda ch: ch.queue_declare(w.n("crdl"), arguments={"x-dead-letter-exchange": w.n("wx")}), None),
    "alternate exchange needs read on the exchange":
        (lambda w: lambda ch: ch.exchange_declare(w.n("cae"), "direct", arguments={"alternate-exchange": w.n("wx")}),
         ("exchange", "cae")),
    "alternate exchange needs write on it":
        (lambda w: lambda ch: ch.exchange_declare(w.n("crae"), "direct", arguments={"alternate-exchange": w.n("xx")}),
         ("exchange", "xx")),
    "alternate exchange allowed":
        (lambda w: lambda ch: ch.exchange_declare(w.n("crae"), "direct", arguments={"alternate-exchange": w.n("wx")}),
         None),
}


@pytest.mark.parametrize("case", list(AMQP_CASES))
def test_amqp_operation(world: World, case: str):
    make, needs = AMQP_CASES[case]
    outcome = attempt(world, make(world))
    if needs is None:
        assert outcome is None
    else:
        kind, prefix = needs
        assert outcome == (403, world.refused(kind, world.n(prefix)))


def test_publish_to_the_default_exchange_needs_write_on_amq_default(world: World):
    assert attempt(world, publish("")) == (403, world.refused("exchange", "amq.default"))


def test_server_named_queue_is_checked_under_its_generated_name(world: World):
    code, text = attempt(world, lambda ch: ch.queue_declare(""))
    assert code == 403
    assert re.fullmatch(world.refused("queue", "amq.gen-[A-Za-z0-9_-]{22}"), text), text


def test_reserved_prefix_and_default_exchange_are_refused_before_the_permission(world: World):
    assert attempt(world, lambda ch: ch.queue_declare("amq.x")) == (
        403, "ACCESS_REFUSED - queue name 'amq.x' contains reserved prefix 'amq.*'")
    assert attempt(world, lambda ch: ch.exchange_declare("", "direct")) == (
        403, "ACCESS_REFUSED - operation not permitted on the default exchange")
    assert attempt(world, lambda ch: ch.queue_bind(world.n("wq"), "", "k")) == (
        403, "ACCESS_REFUSED - operation not permitted on the default exchange")
    assert attempt(world, lambda ch: ch.exchange_delete("amq.direct")) == (
        403, f"ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '{world.vhost}' not allowed")


def test_binding_with_a_missing_destination_passes_the_checks_then_is_not_found(world: World):
    assert attempt(world, lambda ch: ch.exchange_bind(world.n("wnone"), world.n("rx"), "k")) == (
        404, f"NOT_FOUND - no exchange '{world.n('wnone')}' in vhost '{world.vhost}'")


def test_connection_to_a_vhost_without_permissions_is_not_allowed(world: World):
    with pytest.raises(ProbableAccessDeniedError) as info:
        pika.BlockingConnection(pika.URLParameters(world.url(vhost="/")))
    assert f"(530) \"NOT_ALLOWED - access to vhost '/' refused for user '{world.user}'\"" in str(info.value)


# -- the management API: its writes run with the logged-in user's permissions -------------

ACCESS_REFUSED = {"error": "not_authorised", "reason": "Access refused."}


def test_mgmt_queue_declare_and_delete(world: World):
    assert world.as_user("PUT", world.path("queues", world.vhost, world.n("xq-new")), {}).json == ACCESS_REFUSED
    assert world.as_user("PUT", world.path("queues", world.vhost, world.n("cq-mgmt")), {}).status == 201
    assert world.as_user("DELETE", world.path("queues", world.vhost, world.n("cq-mgmt"))).status == 204
    reply = world.as_user("DELETE", world.path("queues", world.vhost, world.n("xq")))
    assert (reply.status, reply.json) == (401, ACCESS_REFUSED)
    assert world.as_user("DELETE", world.path("queues", world.vhost, world.n("xnone"))).status == 404


def test_mgmt_purge_and_get(world: World):
    reply = world.as_user("DELETE", world.path("queues", world.vhost, world.n("xq"), "contents"))
    assert (reply.status, reply.json) == (401, ACCESS_REFUSED)
    assert world.as_user("DELETE", world.path("queues", world.vhost, world.n("rq"), "contents")).status == 204
    body = {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}
    reply = world.as_user("POST", world.path("queues", world.vhost, world.n("xq"), "get"), body)
    refused = {"error": "not_authorised", "reason": world.refused("queue", world.n("xq"))}
    assert (reply.status, reply.json) == (401, refused)
    reply = world.as_user("POST", world.path("queues", world.vhost, world.n("rq"), "get"), body)
    assert (reply.status, reply.json) == (200, [])


def test_mgmt_exchange_declare_and_delete(world: World):
    reply = world.as_user("PUT", world.path("exchanges", world.vhost, world.n("xx-new")), {"type": "direct"})
    assert (reply.status, reply.json) == (401, ACCESS_REFUSED)
    reply = world.as_user("PUT", world.path("exchanges", world.vhost, world.n("cx-mgmt")), {"type": "direct"})
    assert reply.status == 201
    assert world.as_user("DELETE", world.path("exchanges", world.vhost, world.n("cx-mgmt"))).status == 204
    reply = world.as_user("DELETE", world.path("exchanges", world.vhost, world.n("xx")))
    assert (reply.status, reply.json) == (401, ACCESS_REFUSED)
    assert world.as_user("DELETE", world.path("exchanges", world.vhost, world.n("xnone"))).status == 404


@pytest.mark.parametrize("exchange, allowed", [("wx", True), ("xx", False), ("amq.default", False)])
def test_mgmt_publish(world: World, exchange: str, allowed: bool):
    name = exchange if exchange == "amq.default" else world.n(exchange)
    body = {"properties": {}, "routing_key": "k", "payload": "m", "payload_encoding": "string"}
    reply = world.as_user("POST", world.path("exchanges", world.vhost, name, "publish"), body)
    if allowed:
        assert (reply.status, reply.json) == (200, {"routed": False})
    else:
        assert (reply.status, reply.json) == (400, {"error": "bad_request",
                                                    "reason": "403 " + world.refused("exchange", name)})


def test_mgmt_bindings(world: World):
    def binding(source: str, dest: str, *rest: str) -> str:
        return world.path("bindings", world.vhost, "e", world.n(source), "q", world.n(dest), *rest)

    reply = world.as_user("POST", binding("rx", "xq"), {"routing_key": "k"})
    assert (reply.status, reply.json) == (401, ACCESS_REFUSED)
    reply = world.as_user("POST", binding("xx", "wq"), {"routing_key": "k"})
    assert (reply.status, reply.json) == (401, ACCESS_REFUSED)
    assert world.as_user("POST", binding("rx", "wq"), {"routing_key": "mk"}).status == 201
    assert world.as_user("DELETE", binding("rx", "wq", "mk")).status == 204
    reply = world.as_user("DELETE", binding("rx", "xq", "guest-bound"))
    assert (reply.status, reply.json) == (401, ACCESS_REFUSED)


def test_mgmt_administrator_without_a_permission_entry_is_refused(mgmt: Mgmt):
    vhost = f"perm-admin-{uuid.uuid4().hex[:10]}"
    quoted = urllib.parse.quote(vhost, safe="")
    assert mgmt.put(f"/api/vhosts/{quoted}").status == 201
    try:
        assert mgmt.put(f"/api/queues/{quoted}/q", {}).status == 201
        assert mgmt.put(f"/api/exchanges/{quoted}/x", {"type": "direct"}).status == 201
        assert mgmt.delete(f"/api/permissions/{quoted}/{mgmt.user}").status == 204
        body = {"properties": {}, "routing_key": "k", "payload": "m", "payload_encoding": "string"}
        get = {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"}
        for reply in (mgmt.post(f"/api/exchanges/{quoted}/x/publish", body),
                      mgmt.post(f"/api/queues/{quoted}/q/get", get),
                      mgmt.put(f"/api/queues/{quoted}/q2", {}),
                      mgmt.delete(f"/api/queues/{quoted}/q/contents"),
                      mgmt.delete(f"/api/exchanges/{quoted}/x")):
            assert (reply.status, reply.json) == (401, ACCESS_REFUSED)
    finally:
        mgmt.delete(f"/api/vhosts/{quoted}")
