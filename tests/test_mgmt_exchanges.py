"""The management API's exchange writes: PUT/DELETE /api/exchanges/{vhost}/{name} and
POST .../publish, over real HTTP against our broker or the reference (helpers.mgmt): every
status and body asserted here is RabbitMQ 3.10's."""
from __future__ import annotations

import pytest

from helpers.mgmt import Mgmt
from helpers.mgmt_amqp import amqp, bad_request, get, post, publish  # noqa: F401 - amqp is a fixture

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}
ACCESS_REFUSED = {"error": "not_authorised", "reason": "Access refused."}


@pytest.fixture
def names(mgmt: Mgmt, uid: str):
    """Exchange and queue names of this test, deleted afterwards."""
    made = {"x": f"mgmt-x-{uid}", "x2": f"mgmt-x2-{uid}", "q": f"mgmt-xq-{uid}", "q2": f"mgmt-xq2-{uid}"}
    yield made
    for kind, name in made.items():
        mgmt.delete(f"/api/{'exchanges' if kind.startswith('x') else 'queues'}/%2F/{name}")


# -- declare -------------------------------------------------------------------------------------

def test_put_creates_then_204_and_get_shows_it(mgmt: Mgmt, names):
    path = f"/api/exchanges/%2F/{names['x']}"
    body = {"type": "topic", "durable": True, "auto_delete": False, "internal": False,
            "arguments": {"a": 1, "b": "s", "c": [1, "x"], "d": {"e": True}, "f": 1.5}}
    assert mgmt.put(path, body).status == 201
    assert mgmt.put(path, body).status == 204
    shown = mgmt.get(path).json
    assert {k: shown[k] for k in ("name", "vhost", "type", "durable", "auto_delete", "internal", "arguments")} == {
        "name": names["x"], "vhost": "/", "type": "topic", "durable": True, "auto_delete": False,
        "internal": False, "arguments": body["arguments"]}
    assert names["x"] in [x["name"] for x in mgmt.get("/api/exchanges/%2F").json]


def test_put_empty_body_declares_a_direct_exchange(mgmt: Mgmt, names):
    path = f"/api/exchanges/%2F/{names['x']}"
    assert mgmt.put(path, {}).status == 201
    shown = mgmt.get(path).json
    assert (shown["type"], shown["durable"], shown["auto_delete"], shown["internal"]) == ("direct", False, False, False)


def test_put_flags_as_strings_are_accepted(mgmt: Mgmt, names):
    path = f"/api/exchanges/%2F/{names['x']}"
    assert mgmt.put(path, {"type": "fanout", "durable": "true"}).status == 201
    assert mgmt.get(path).json["durable"] is True


def test_put_inequivalent_is_400_with_the_amqp_text(mgmt: Mgmt, names):
    path = f"/api/exchanges/%2F/{names['x']}"
    assert mgmt.put(path, {"type": "direct"}).status == 201
    reply = mgmt.put(path, {"type": "fanout"})
    assert (reply.status, reply.json) == (400, bad_request(
        f"inequivalent arg 'type' for exchange '{names['x']}' in vhost '/': received 'fanout' but current is 'direct'"))
    assert mgmt.get(path).json["type"] == "direct"


@pytest.mark.parametrize("body,reason", [
    ({"type": "nope"}, "invalid exchange type 'nope'"),
    ({"type": 1}, "invalid exchange type '1'"),
    ({"type": "direct", "durable": "yes"}, ["not_boolean", "yes"]),
    ({"type": "direct", "internal": 1}, ["not_boolean", 1]),
    ({"type": "direct", "arguments": {"g": None}}, "null_not_allowed"),
    ("xx", "not_json"),
    ("[1]", "not_json"),
])
def test_put_bad_input_is_400_and_stores_nothing(mgmt: Mgmt, names, body, reason):
    path = f"/api/exchanges/%2F/{names['x']}"
    reply = mgmt.put(path, body.encode() if isinstance(body, str) else body)
    assert (reply.status, reply.json) == (400, bad_request(reason))
    assert (mgmt.get(path).status, mgmt.get(path).json) == (404, NOT_FOUND)


def test_put_reserved_and_default_names_are_refused(mgmt: Mgmt, uid):
    for name in (f"amq.mgmt-{uid}", "amq.default"):
        reply = mgmt.put(f"/api/exchanges/%2F/{name}", {"type": "direct"})
        assert (reply.status, reply.json) == (401, ACCESS_REFUSED), name
    redeclared = mgmt.put("/api/exchanges/%2F/amq.direct", {"type": "direct"})
    assert (redeclared.status, redeclared.json) == (400, bad_request(
        "inequivalent arg 'durable' for exchange 'amq.direct' in vhost '/': received 'false' but current is 'true'"))


def test_put_into_unknown_vhost_is_404(mgmt: Mgmt, uid):
    reply = mgmt.put(f"/api/exchanges/nope-{uid}/x", {"type": "direct"})
    assert (reply.status, reply.json) == (404, {"error": "not_found", "reason": "vhost_not_found"})


def test_put_exchange_is_the_amqp_declare(mgmt: Mgmt, amqp, names):
    assert mgmt.put(f"/api/exchanges/%2F/{names['x']}", {"type": "headers", "durable": True}).status == 201
    amqp.exchange_declare(names["x"], "headers", durable=True)  # equivalent: no close
    amqp.exchange_declare(names["x"], passive=True)


# -- delete --------------------------------------------------------------------------------------

def test_delete(mgmt: Mgmt, names):
    path = f"/api/exchanges/%2F/{names['x']}"
    assert mgmt.put(path, {"type": "direct"}).status == 201
    assert mgmt.delete(path).status == 204
    assert (mgmt.get(path).status, mgmt.delete(path).status) == (404, 404)
    assert mgmt.delete(path).json == NOT_FOUND


def test_delete_system_exchanges_is_refused(mgmt: Mgmt, uid):
    for name in ("amq.direct", "amq.default"):
        reply = mgmt.delete(f"/api/exchanges/%2F/{name}")
        assert (reply.status, reply.json) == (401, ACCESS_REFUSED), name
    assert mgmt.delete(f"/api/exchanges/nope-{uid}/x").status == 404


def test_delete_if_unused(mgmt: Mgmt, names):
    path = f"/api/exchanges/%2F/{names['x']}"
    assert mgmt.put(path, {"type": "direct"}).status == 201
    assert mgmt.put(f"/api/queues/%2F/{names['q']}", {}).status == 201
    assert post(mgmt, f"/api/bindings/%2F/e/{names['x']}/q/{names['q']}", {"routing_key": "k"}).status == 201
    in_use = mgmt.delete(path + "?if-unused=true")
    assert (in_use.status, in_use.json) == (400, bad_request(f"exchange '{names['x']}' in vhost '/' in use"))
    assert mgmt.delete(path).status == 204


# -- publish -------------------------------------------------------------------------------------

def test_publish_routed_or_not(mgmt: Mgmt, names):
    assert mgmt.put(f"/api/queues/%2F/{names['q']}", {}).status == 201
    routed = publish(mgmt, "amq.default", names["q"], "hello")
    assert (routed.status, routed.json) == (200, {"routed": True})
    assert publish(mgmt, "amq.default", f"nowhere-{names['q']}").json == {"routed": False}
    assert [m["payload"] for m in get(mgmt, names["q"]).json] == ["hello"]


def test_published_message_reaches_an_amqp_client_with_its_properties(mgmt: Mgmt, amqp, names):
    amqp.queue_declare(names["q"])
    props = {"delivery_mode": 2, "headers": {"h1": "v", "h2": 5, "h3": [1, "a"], "h4": {"x": True}},
             "content_type": "text/plain", "content_encoding": "gz", "priority": 3, "correlation_id": "c1",
             "reply_to": "r", "expiration": "60000", "message_id": "m1", "timestamp": 1700000000, "type": "t",
             "user_id": "guest", "app_id": "a", "cluster_id": "cl"}
    assert publish(mgmt, "amq.default", names["q"], "/w==", props, "base64").json == {"routed": True}
    method, got, body = amqp.basic_get(names["q"], auto_ack=True)
    assert (body, method.exchange, method.routing_key, method.redelivered) == (b"\xff", "", names["q"], False)
    assert (got.delivery_mode, got.content_type, got.content_encoding, got.priority) == (2, "text/plain", "gz", 3)
    assert (got.correlation_id, got.reply_to, got.expiration, got.message_id) == ("c1", "r", "60000", "m1")
    assert (got.timestamp, got.type, got.user_id, got.app_id, got.cluster_id) == (1700000000, "t", "guest", "a", "cl")
    assert got.headers == {"h1": "v", "h2": 5, "h3": [1, "a"], "h4": {"x": True}}


def test_publish_follows_the_alternate_exchange(mgmt: Mgmt, names):
    assert mgmt.put(f"/api/exchanges/%2F/{names['x2']}", {"type": "fanout"}).status == 201
    assert mgmt.put(f"/api/exchanges/%2F/{names['x']}",
                    {"type": "direct", "arguments": {"alternate-exchange": names["x2"]}}).status == 201
    assert mgmt.put(f"/api/queues/%2F/{names['q']}", {}).status == 201
    assert post(mgmt, f"/api/bindings/%2F/e/{names['x2']}/q/{names['q']}", {}).status == 201
    assert publish(mgmt, names["x"], "unbound", "via-ae").json == {"routed": True}
    assert [m["payload"] for m in get(mgmt, names["q"]).json] == ["via-ae"]


def test_publish_expired_message_is_dead_lettered(mgmt: Mgmt, names):
    assert mgmt.put(f"/api/queues/%2F/{names['q2']}", {}).status == 201
    assert mgmt.put(f"/api/queues/%2F/{names['q']}", {"arguments": {
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": names["q2"]}}).status == 201
    assert publish(mgmt, "amq.default", names["q"], "ttl", {"expiration": "0"}).json == {"routed": True}
    dead = get(mgmt, names["q2"]).json
    assert [(m["payload"], m["properties"]["headers"]["x-death"][0]["reason"]) for m in dead] == [("ttl", "expired")]


def test_publish_refused_by_a_full_queue(mgmt: Mgmt, names):
    assert mgmt.put(f"/api/queues/%2F/{names['q']}",
                    {"arguments": {"x-max-length": 1, "x-overflow": "reject-publish"}}).status == 201
    assert publish(mgmt, "amq.default", names["q"], "1").json == {"routed": True}
    refused = publish(mgmt, "amq.default", names["q"], "2")
    assert (refused.status, refused.json) == (400, bad_request("rejected Unable to publish message. Check queue limits."))


@pytest.mark.parametrize("body,reason", [
    ({}, "[{key_missing,routing_key},\n {key_missing,properties},\n {key_missing,payload},\n"
         " {key_missing,payload_encoding}]"),
    ({"payload": "x", "properties": {}}, "[{key_missing,routing_key},{key_missing,payload_encoding}]"),
    ({"properties": {}, "routing_key": "k", "payload": "x"}, "[{key_missing,payload_encoding}]"),
    ({"properties": {}, "routing_key": "k", "payload": 1, "payload_encoding": "string"}, "payload_not_string"),
    ({"properties": {}, "routing_key": "k", "payload": "!!!", "payload_encoding": "base64"}, ["not_base64", "!!!"]),
    ({"properties": {}, "routing_key": "k", "payload": "x", "payload_encoding": "hex"}, ["unsupported_encoding", "hex"]),
    ({"properties": {"delivery_mode": "2"}, "routing_key": "k", "payload": "x", "payload_encoding": "string"},
     ["not_int", "delivery_mode"]),
    ({"properties": {"content_type": 5}, "routing_key": "k", "payload": "x", "payload_encoding": "string"},
     ["not_string", "content_type"]),
    ({"properties": {"headers": {"a": None}}, "routing_key": "k", "payload": "x", "payload_encoding": "string"},
     "null_not_allowed"),
    ({"properties": {"delivery_mode": 7}, "routing_key": "k", "payload": "x", "payload_encoding": "string"},
     "406 PRECONDITION_FAILED - invalid message: {delivery_mode_unknown,7}"),
    ({"properties": {"expiration": "abc"}, "routing_key": "k", "payload": "x", "payload_encoding": "string"},
     "406 PRECONDITION_FAILED - invalid expiration 'abc': no_integer"),
    ({"properties": {"user_id": "bob"}, "routing_key": "k", "payload": "x", "payload_encoding": "string"},
     "406 PRECONDITION_FAILED - user_id property set to 'bob' but authenticated user was 'guest'"),
    ("zz", "not_json"),
])
def test_publish_bad_input_is_400(mgmt: Mgmt, body, reason):
    reply = post(mgmt, "/api/exchanges/%2F/amq.default/publish", body.encode() if isinstance(body, str) else body)
    assert (reply.status, reply.json) == (400, bad_request(reason))


def test_publish_to_missing_or_internal_exchange(mgmt: Mgmt, names, uid):
    missing = publish(mgmt, f"nosuch-{uid}", "k")
    assert (missing.status, missing.json) == (400, bad_request(f"404 NOT_FOUND - no exchange 'nosuch-{uid}' in vhost '/'"))
    assert mgmt.put(f"/api/exchanges/%2F/{names['x']}", {"type": "fanout", "internal": True}).status == 201
    internal = publish(mgmt, names["x"], "k")
    assert (internal.status, internal.json) == (400, bad_request(
        f"403 ACCESS_REFUSED - cannot publish to internal exchange '{names['x']}' in vhost '/'"))
    vhost = post(mgmt, f"/api/exchanges/nope-{uid}/amq.default/publish",
                 {"properties": {}, "routing_key": "k", "payload": "x", "payload_encoding": "string"})
    assert (vhost.status, vhost.json) == (401, ACCESS_REFUSED)
