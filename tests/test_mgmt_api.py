"""The management HTTP API (RabbitMQ's `/api`), over real HTTP.

Runs against our broker's management listener, or against a real RabbitMQ's when
MGMT_REFERENCE_URL is set (helpers.mgmt): every status and error body asserted here is the
reference's. RabbitMQ refreshes its statistics every few seconds, so counts are polled.
"""
from __future__ import annotations

import pika
import pytest

from helpers.mgmt import Mgmt, polled

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}


@pytest.fixture
def queue_name(mgmt: Mgmt, uid: str):
    name = f"mgmt-q-{uid}"
    yield name
    mgmt.delete(f"/api/queues/%2F/{name}")


# -- authentication ----------------------------------------------------------------------------

def test_no_credentials_is_an_empty_401_asking_for_basic_auth(mgmt: Mgmt):
    reply = mgmt.get("/api/overview", auth=None)
    assert reply.status == 401
    assert reply.text == ""
    assert reply.headers["www-authenticate"] == 'Basic realm="RabbitMQ Management"'


@pytest.mark.parametrize("user,password", [("guest", "wrong"), ("no-such-user", "x")])
def test_wrong_credentials_login_failed(mgmt: Mgmt, user, password):
    reply = mgmt.get("/api/whoami", auth=(user, password))
    assert reply.status == 401
    assert reply.json == {"error": "not_authorized", "reason": "Login failed"}


def test_user_without_management_tag_is_refused(mgmt: Mgmt, uid):
    name = f"mgmt-u-{uid}"
    mgmt.add_user(name, "pw", ())
    try:
        reply = mgmt.get("/api/whoami", auth=(name, "pw"))
        assert reply.status == 401
        assert reply.json == {"error": "not_authorised", "reason": "Not management user"}
    finally:
        mgmt.remove_user(name)


def test_monitoring_tag_is_enough(mgmt: Mgmt, uid):
    name = f"mgmt-m-{uid}"
    mgmt.add_user(name, "pw", ("monitoring",))
    try:
        reply = mgmt.get("/api/whoami", auth=(name, "pw"))
        assert reply.status == 200
        assert reply.json == {"name": name, "tags": ["monitoring"]}
    finally:
        mgmt.remove_user(name)


def test_whoami(mgmt: Mgmt):
    reply = mgmt.get("/api/whoami")
    assert reply.status == 200
    assert reply.json == {"name": "guest", "tags": ["administrator"]}


# -- overview and vhosts -----------------------------------------------------------------------

def test_overview(mgmt: Mgmt):
    body = mgmt.get("/api/overview").json
    for key in ("product_name", "product_version", "rabbitmq_version", "node"):
        assert isinstance(body[key], str) and body[key]
    assert set(body["object_totals"]) >= {"connections", "channels", "exchanges", "queues", "consumers"}
    assert body["object_totals"]["exchanges"] >= 7  # the predeclared ones of "/"
    assert set(body["queue_totals"]) >= {"messages", "messages_ready", "messages_unacknowledged"}


def test_vhosts(mgmt: Mgmt):
    listed = mgmt.get("/api/vhosts")
    assert listed.status == 200
    assert "/" in [v["name"] for v in listed.json]
    one = mgmt.get("/api/vhosts/%2F")
    assert one.status == 200
    assert one.json["name"] == "/"


def test_unknown_vhost_is_404(mgmt: Mgmt, uid):
    for path in (f"/api/vhosts/nope-{uid}", f"/api/queues/nope-{uid}", f"/api/exchanges/nope-{uid}",
                 f"/api/queues/nope-{uid}/q", f"/api/exchanges/nope-{uid}/x"):
        reply = mgmt.get(path)
        assert (reply.status, reply.json) == (404, NOT_FOUND), path


# -- queues ------------------------------------------------------------------------------------

def test_put_creates_then_204_and_get_shows_it(mgmt: Mgmt, queue_name):
    path = f"/api/queues/%2F/{queue_name}"
    body = {"durable": False, "auto_delete": False, "arguments": {"x-max-length": 5}}
    assert mgmt.put(path, body).status == 201
    assert mgmt.put(path, body).status == 204
    shown = mgmt.get(path)
    assert shown.status == 200
    q = shown.json
    assert (q["name"], q["vhost"], q["durable"], q["auto_delete"], q["exclusive"]) == (queue_name, "/", False, False, False)
    assert q["arguments"] == {"x-max-length": 5}
    assert q["node"] == mgmt.get("/api/overview").json["node"]
    assert queue_name in [x["name"] for x in mgmt.get("/api/queues").json]
    assert queue_name in [x["name"] for x in mgmt.get("/api/queues/%2F").json]


def test_put_inequivalent_is_400_with_the_amqp_text(mgmt: Mgmt, queue_name):
    path = f"/api/queues/%2F/{queue_name}"
    assert mgmt.put(path, {"durable": False}).status == 201
    reply = mgmt.put(path, {"durable": True})
    assert reply.status == 400
    assert reply.json == {
        "error": "bad_request",
        "reason": f"inequivalent arg 'durable' for queue '{queue_name}' in vhost '/': "
                  "received 'true' but current is 'false'",
    }


def test_put_invalid_argument_is_400(mgmt: Mgmt, queue_name):
    reply = mgmt.put(f"/api/queues/%2F/{queue_name}", {"arguments": {"x-max-length": "abc"}})
    assert reply.status == 400
    assert reply.json == {
        "error": "bad_request",
        "reason": f"invalid arg 'x-max-length' for queue '{queue_name}' in vhost '/': "
                  '"expected integer, got longstr"',
    }


def test_put_flag_not_boolean_is_400(mgmt: Mgmt, queue_name):
    reply = mgmt.put(f"/api/queues/%2F/{queue_name}", {"durable": "yes"})
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": ["not_boolean", "yes"]})


def test_put_empty_body_declares_with_defaults(mgmt: Mgmt, queue_name):
    path = f"/api/queues/%2F/{queue_name}"
    assert mgmt.request("PUT", path).status == 201
    q = mgmt.get(path).json
    assert (q["durable"], q["auto_delete"], q["arguments"]) == (False, False, {})


def test_put_not_json_is_400(mgmt: Mgmt, queue_name):
    reply = mgmt.put(f"/api/queues/%2F/{queue_name}", b"not json")
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": "not_json"})


def test_put_reserved_name_is_refused(mgmt: Mgmt, uid):
    reply = mgmt.put(f"/api/queues/%2F/amq.mgmt-{uid}", {})
    assert (reply.status, reply.json) == (401, {"error": "not_authorised", "reason": "Access refused."})


def test_put_into_unknown_vhost_is_404(mgmt: Mgmt, uid):
    reply = mgmt.put(f"/api/queues/nope-{uid}/q", {})
    assert (reply.status, reply.json) == (404, {"error": "not_found", "reason": "vhost_not_found"})


def test_delete(mgmt: Mgmt, queue_name):
    path = f"/api/queues/%2F/{queue_name}"
    assert mgmt.put(path, {}).status == 201
    assert mgmt.delete(path).status == 204
    assert (mgmt.get(path).status, mgmt.get(path).json) == (404, NOT_FOUND)
    missing = mgmt.delete(path)
    assert (missing.status, missing.json) == (404, NOT_FOUND)


@pytest.fixture
def amqp_channel(mgmt: Mgmt):
    conn = pika.BlockingConnection(pika.URLParameters(mgmt.amqp_url))
    yield conn.channel()
    conn.close()


def test_exclusive_queue_of_a_connection_is_locked(mgmt: Mgmt, amqp_channel, queue_name):
    amqp_channel.queue_declare(queue_name, exclusive=True)
    locked = {
        "error": "bad_request",
        "reason": f"cannot obtain exclusive access to locked queue '{queue_name}' in vhost '/'. It could be "
                  "originally declared on another connection or the exclusive property value does not "
                  "match that of the original declaration.",
    }
    path = f"/api/queues/%2F/{queue_name}"
    put = mgmt.put(path, {})
    assert (put.status, put.json) == (400, locked)
    deleted = mgmt.delete(path)
    assert (deleted.status, deleted.json) == (400, locked)


def test_delete_if_unused_and_if_empty(mgmt: Mgmt, amqp_channel, queue_name):
    amqp_channel.queue_declare(queue_name)
    amqp_channel.basic_publish("", queue_name, b"x")
    tag = amqp_channel.basic_consume(queue_name, lambda *a: None)
    path = f"/api/queues/%2F/{queue_name}"
    in_use = mgmt.delete(path + "?if-unused=true")
    assert (in_use.status, in_use.json) == (
        400, {"error": "bad_request", "reason": f"queue '{queue_name}' in vhost '/' in use"})
    amqp_channel.basic_cancel(tag)
    amqp_channel.queue_purge(queue_name)
    amqp_channel.basic_publish("", queue_name, b"y")
    amqp_channel.queue_declare(queue_name, passive=True)  # round trip: the publish arrived
    not_empty = mgmt.delete(path + "?if-empty=true")
    assert (not_empty.status, not_empty.json) == (
        400, {"error": "bad_request", "reason": f"queue '{queue_name}' in vhost '/' not empty"})
    assert mgmt.delete(path + "?if-unused=true").status == 204


def test_put_queue_is_equivalent_to_the_same_amqp_declare(mgmt: Mgmt, amqp_channel, queue_name):
    args = {"x-message-ttl": 60000, "x-max-length": 10, "x-overflow": "reject-publish"}
    assert mgmt.put(f"/api/queues/%2F/{queue_name}", {"durable": True, "arguments": args}).status == 201
    ok = amqp_channel.queue_declare(queue_name, durable=True, arguments=args)
    assert ok.method.queue == queue_name
    assert mgmt.get(f"/api/queues/%2F/{queue_name}").json["arguments"] == args


def test_queue_declared_over_amqp_shows_its_messages(mgmt: Mgmt, queue_name):
    conn = pika.BlockingConnection(pika.URLParameters(mgmt.amqp_url))
    try:
        ch = conn.channel()
        ch.queue_declare(queue_name, arguments={"x-max-priority": 3})
        for i in range(3):
            ch.basic_publish("", queue_name, b"m%d" % i)
        ch.basic_get(queue_name, auto_ack=False)  # one unacknowledged
        q = polled(mgmt, f"/api/queues/%2F/{queue_name}",
                   lambda q: q.get("messages") == 3 and q.get("messages_unacknowledged") == 1 and "consumers" in q)
        assert (q["messages_ready"], q["consumers"], q["state"]) == (2, 0, "running")
        assert q["arguments"] == {"x-max-priority": 3}

        def ours(c: dict) -> bool:
            return c.get("user") == "guest" and c.get("vhost") == "/" and c.get("peer_host") == "127.0.0.1"

        conns = polled(mgmt, "/api/connections", lambda cs: any(ours(c) and c.get("channels", 0) >= 1 for c in cs))
        mine = [c for c in conns if ours(c) and c.get("channels", 0) >= 1]
        assert all(c["state"] == "running" and isinstance(c["peer_port"], int) and c["name"] for c in mine)
    finally:
        conn.close()


# -- exchanges ---------------------------------------------------------------------------------

def test_exchanges(mgmt: Mgmt):
    listed = mgmt.get("/api/exchanges").json
    assert {"amq.direct", "amq.topic", "amq.fanout", ""} <= {x["name"] for x in listed if x["vhost"] == "/"}
    assert {"amq.direct", ""} <= {x["name"] for x in mgmt.get("/api/exchanges/%2F").json}
    topic = mgmt.get("/api/exchanges/%2F/amq.topic")
    assert topic.status == 200
    want = {"name": "amq.topic", "vhost": "/", "type": "topic", "durable": True,
            "auto_delete": False, "internal": False, "arguments": {}}
    assert {k: topic.json[k] for k in want} == want


def test_default_exchange_is_amq_default_in_paths(mgmt: Mgmt):
    reply = mgmt.get("/api/exchanges/%2F/amq.default")
    assert reply.status == 200
    assert (reply.json["name"], reply.json["type"]) == ("", "direct")


def test_lists_are_sorted_by_name(mgmt: Mgmt, uid):
    names = [f"mgmt-s-{uid}-{c}" for c in "bca"]
    try:
        for name in names:
            assert mgmt.put(f"/api/queues/%2F/{name}", {}).status == 201
        listed = [q["name"] for q in mgmt.get("/api/queues/%2F").json]
        assert listed == sorted(listed)
        exchanges = [x["name"] for x in mgmt.get("/api/exchanges/%2F").json]
        assert exchanges == sorted(exchanges)
    finally:
        for name in names:
            mgmt.delete(f"/api/queues/%2F/{name}")


def test_unknown_path_is_404_and_wrong_method_405(mgmt: Mgmt):
    missing = mgmt.get("/api/no-such-thing")
    assert (missing.status, missing.json) == (404, NOT_FOUND)
    wrong = mgmt.request("POST", "/api/overview", body={})
    assert (wrong.status, wrong.text) == (405, "")


def test_unknown_exchange_is_404(mgmt: Mgmt, uid):
    reply = mgmt.get(f"/api/exchanges/%2F/nope-{uid}")
    assert (reply.status, reply.json) == (404, NOT_FOUND)


def test_overview_lists_listeners_and_contexts(mgmt: Mgmt):
    body = mgmt.get("/api/overview").json
    node = body["node"]
    amqp_port = int(mgmt.amqp_url.rsplit(":", 1)[1].split("/")[0])
    assert {"node": node, "protocol": "amqp", "port": amqp_port}.items() <= \
        next(l for l in body["listeners"] if l["protocol"] == "amqp").items()
    assert any(l["protocol"] == "http" for l in body["listeners"])
    assert body["contexts"][0]["node"] == node and body["contexts"][0]["path"] == "/"
    assert {"name": "topic", "description": "AMQP topic exchange, as per the AMQP specification",
            "enabled": True} in body["exchange_types"]
    assert body["rates_mode"] == "basic"


def test_overview_of_a_plain_management_user_shows_no_node(mgmt: Mgmt, uid):
    name = f"mgmt-ov-{uid}"
    mgmt.add_user(name, "pw", ("management",))
    try:
        body = mgmt.get("/api/overview", auth=(name, "pw")).json
        assert "node" not in body and "listeners" not in body and "contexts" not in body
        # no vhost access, no connections of its own: nothing to count
        assert body["object_totals"] == {"channels": 0, "connections": 0, "exchanges": 0, "queues": 0}
        assert body["product_name"] and body["rabbitmq_version"]
    finally:
        mgmt.remove_user(name)


def test_paths_answer_with_a_trailing_slash_too(mgmt: Mgmt, queue_name):
    """As RabbitMQ's router: `/api/overview/` is `/api/overview`, writes included."""
    assert mgmt.get("/api/overview/").json["rabbitmq_version"]
    assert mgmt.put(f"/api/queues/%2F/{queue_name}/", {"durable": False}).status == 201
    assert mgmt.get(f"/api/queues/%2F/{queue_name}/").json["name"] == queue_name
    assert mgmt.delete(f"/api/queues/%2F/{queue_name}/").status == 204
