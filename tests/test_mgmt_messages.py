"""The management API's queue messages: POST /api/queues/{vhost}/{name}/get and DELETE
/api/queues/{vhost}/{name}/contents, over real HTTP against our broker or the reference
(helpers.mgmt): every status and body asserted here is RabbitMQ 3.10's."""
from __future__ import annotations

import pika
import pytest

from helpers.mgmt import Mgmt
from helpers.mgmt_amqp import amqp, bad_request, get, post, publish  # noqa: F401 - amqp is a fixture

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}


@pytest.fixture
def queue(mgmt: Mgmt, uid: str):
    name = f"mgmt-mq-{uid}"
    assert mgmt.put(f"/api/queues/%2F/{name}", {}).status == 201
    yield name
    mgmt.delete(f"/api/queues/%2F/{name}")


def shown(body: str, count: int, redelivered: bool = False, encoding: str = "string", payload: str | None = None,
          properties=None, routing_key: str = "", size: int | None = None) -> dict:
    return {"payload_bytes": len(body) if size is None else size, "redelivered": redelivered, "exchange": "",
            "routing_key": routing_key, "message_count": count,
            "properties": [] if properties is None else properties,
            "payload": body if payload is None else payload, "payload_encoding": encoding}


def test_requeue_modes_leave_the_messages_marked_redelivered(mgmt: Mgmt, queue):
    for body in ("a", "b", "c"):
        assert publish(mgmt, "amq.default", queue, body).json == {"routed": True}
    first = get(mgmt, queue, 2, "ack_requeue_true")
    assert (first.status, first.json) == (200, [shown("a", 2, routing_key=queue), shown("b", 1, routing_key=queue)])
    again = get(mgmt, queue, 2, "reject_requeue_true")
    assert again.json == [shown("a", 2, True, routing_key=queue), shown("b", 1, True, routing_key=queue)]
    taken = get(mgmt, queue, 10, "ack_requeue_false")
    assert [(m["payload"], m["redelivered"], m["message_count"]) for m in taken.json] == [
        ("a", True, 2), ("b", True, 1), ("c", False, 0)]
    assert get(mgmt, queue).json == []


def test_reject_without_requeue_dead_letters(mgmt: Mgmt, uid):
    dead, source = f"mgmt-mdead-{uid}", f"mgmt-msrc-{uid}"
    try:
        assert mgmt.put(f"/api/queues/%2F/{dead}", {}).status == 201
        assert mgmt.put(f"/api/queues/%2F/{source}", {"arguments": {
            "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead}}).status == 201
        assert publish(mgmt, "amq.default", source, "r").json == {"routed": True}
        assert [m["payload"] for m in get(mgmt, source, 1, "reject_requeue_false").json] == ["r"]
        assert get(mgmt, source).json == []
        [died] = get(mgmt, dead).json
        assert died["payload"] == "r"
        assert died["properties"]["headers"]["x-death"][0]["reason"] == "rejected"
    finally:
        mgmt.delete(f"/api/queues/%2F/{dead}")
        mgmt.delete(f"/api/queues/%2F/{source}")


def test_encodings_and_truncation(mgmt: Mgmt, queue):
    assert publish(mgmt, "amq.default", queue, "hello").status == 200
    assert publish(mgmt, "amq.default", queue, "/w==", encoding="base64").status == 200
    auto = get(mgmt, queue, 2, "ack_requeue_true", truncate=3).json
    assert auto == [shown("hel", 1, size=5, routing_key=queue), shown("", 0, encoding="base64", payload="/w==",
                                                                         size=1, routing_key=queue)]
    as_base64 = get(mgmt, queue, 1, "ack_requeue_true", "base64").json
    assert as_base64 == [shown("hello", 1, True, "base64", "aGVsbG8=", routing_key=queue)]
    counted = get(mgmt, queue, "2", "ack_requeue_false").json  # a count may be a string
    assert [m["payload"] for m in counted] == ["hello", "/w=="]


def test_properties_of_an_amqp_message(mgmt: Mgmt, amqp, queue):
    props = pika.BasicProperties(content_type="text/plain", delivery_mode=2, priority=4, message_id="m",
                                 timestamp=1700000000, headers={"s": "v", "n": 5, "l": [1, "x"], "t": {"b": True}})
    amqp.basic_publish("", queue, b"body", props)
    amqp.queue_declare(queue, passive=True)  # a round trip: the publish arrived
    [message] = get(mgmt, queue).json
    assert message["properties"] == {"timestamp": 1700000000, "message_id": "m", "priority": 4, "delivery_mode": 2,
                                     "headers": {"s": "v", "n": 5, "l": [1, "x"], "t": {"b": True}},
                                     "content_type": "text/plain"}
    assert list(message["properties"]) == ["timestamp", "message_id", "priority", "delivery_mode", "headers",
                                           "content_type"]


def test_purge(mgmt: Mgmt, queue, uid):
    for body in ("1", "2"):
        publish(mgmt, "amq.default", queue, body)
    assert mgmt.delete(f"/api/queues/%2F/{queue}/contents").status == 204
    assert get(mgmt, queue).json == []
    for path in (f"/api/queues/%2F/nosuch-{uid}/contents", f"/api/queues/nope-{uid}/q/contents"):
        reply = mgmt.delete(path)
        assert (reply.status, reply.json) == (404, NOT_FOUND)


@pytest.mark.parametrize("body,reason", [
    ({}, "[{key_missing,ackmode},{key_missing,count},{key_missing,encoding}]"),
    ({"count": 1}, "[{key_missing,ackmode},{key_missing,encoding}]"),
    ({"count": 1, "ackmode": "ack_requeue_true", "encoding": "hex"}, "Unsupported encoding. Please use auto or base64."),
    ({"count": "x", "ackmode": "ack_requeue_true", "encoding": "auto"}, ["not_integer", "x"]),
    ({"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": "x"}, ["not_integer", "x"]),
    ("zz", "not_json"),
])
def test_get_bad_input_is_400_and_takes_nothing(mgmt: Mgmt, queue, body, reason):
    publish(mgmt, "amq.default", queue, "kept")
    reply = post(mgmt, f"/api/queues/%2F/{queue}/get", body.encode() if isinstance(body, str) else body)
    assert (reply.status, reply.json) == (400, bad_request(reason))
    assert [(m["payload"], m["redelivered"]) for m in get(mgmt, queue).json] == [("kept", False)]


def test_get_from_unknown_queue_or_vhost(mgmt: Mgmt, uid):
    missing = get(mgmt, f"nosuch-{uid}")
    assert (missing.status, missing.json) == (
        404, {"error": "not_found", "reason": f"NOT_FOUND - no queue 'nosuch-{uid}' in vhost '/'"})
    vhost = post(mgmt, f"/api/queues/nope-{uid}/q/get", {"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"})
    assert (vhost.status, vhost.json) == (401, {"error": "not_authorised", "reason": "Access refused."})


def test_persistent_messages_of_a_durable_queue(mgmt: Mgmt, uid):
    name = f"mgmt-mdur-{uid}"
    try:
        assert mgmt.put(f"/api/queues/%2F/{name}", {"durable": True}).status == 201
        for i in range(5):
            assert publish(mgmt, "amq.default", name, f"p{i}", {"delivery_mode": 2}).json == {"routed": True}
        requeued = get(mgmt, name, 2, "ack_requeue_true").json
        assert [(m["payload"], m["properties"]) for m in requeued] == [("p0", {"delivery_mode": 2}),
                                                                        ("p1", {"delivery_mode": 2})]
        assert [m["payload"] for m in get(mgmt, name, -1).json] == [f"p{i}" for i in range(5)]
    finally:
        mgmt.delete(f"/api/queues/%2F/{name}")


def test_exclusive_queue_of_a_connection_is_locked(mgmt: Mgmt, amqp, uid):
    name = f"mgmt-mexcl-{uid}"
    amqp.queue_declare(name, exclusive=True)
    amqp.basic_publish("", name, b"x")
    locked = (f"cannot obtain exclusive access to locked queue '{name}' in vhost '/'. It could be originally "
              "declared on another connection or the exclusive property value does not match that of the "
              "original declaration.")
    got = get(mgmt, name, 1, "ack_requeue_true")
    assert (got.status, got.json) == (400, bad_request(f"405 RESOURCE_LOCKED - {locked}"))
    purged = mgmt.delete(f"/api/queues/%2F/{name}/contents")
    assert (purged.status, purged.json) == (400, bad_request(locked))
    assert publish(mgmt, "amq.default", name).json == {"routed": True}  # publishing to it is allowed
    assert amqp.queue_declare(name, passive=True).method.message_count == 2
