"""`message_stats` and `churn_rates` in the management API, over real HTTP.

Runs against our broker or, with MGMT_REFERENCE_URL, against RabbitMQ's management API (its
statistics lag a few seconds: every count is polled). The expected counts are the ones RabbitMQ
3.10 shows for the same traffic.
"""
from __future__ import annotations

import re

import pika
import pytest

from helpers.mgmt import Mgmt, polled

QUEUE_DELIVERY_KEYS = ("ack", "deliver", "deliver_get", "deliver_no_ack", "get", "get_empty", "get_no_ack", "redeliver")
VHOST_KEYS = ("publish", "confirm", "return_unroutable", "drop_unroutable") + QUEUE_DELIVERY_KEYS
CHURN_KEYS = ("channel_closed", "channel_created", "connection_closed", "connection_created",
              "queue_created", "queue_declared", "queue_deleted")


@pytest.fixture
def channel(mgmt: Mgmt):
    conn = pika.BlockingConnection(pika.URLParameters(mgmt.amqp_url))
    yield conn.channel()
    if conn.is_open:
        conn.close()


@pytest.fixture
def names(mgmt: Mgmt, uid: str):
    """Queue and exchange names of this test, deleted at the end."""
    created = {"queues": [], "exchanges": []}

    def name(kind: str, base: str) -> str:
        full = f"stats-{base}-{uid}"
        created[kind].append(full)
        return full

    yield name
    for queue in created["queues"]:
        mgmt.delete(f"/api/queues/%2F/{queue}")
    for exchange in created["exchanges"]:
        mgmt.delete(f"/api/exchanges/%2F/{exchange}")


def assert_shape(stats: dict, keys) -> None:
    for key in keys:
        assert isinstance(stats[key], int), key
        rate = stats[key + "_details"]["rate"]
        assert isinstance(rate, float) and rate >= 0.0, key


def test_queue_message_stats_count_publish_deliveries_gets_acks_and_redeliveries(mgmt: Mgmt, channel, names):
    queue = names("queues", "q")
    channel.queue_declare(queue)
    for _ in range(10):
        channel.basic_publish("", queue, b"m")
    method, _props, _body = channel.basic_get(queue, auto_ack=False)
    channel.basic_nack(method.delivery_tag, requeue=True)  # back: redelivered next time
    channel.basic_get(queue, auto_ack=True)
    method, _props, _body = channel.basic_get(queue, auto_ack=False)
    channel.basic_ack(method.delivery_tag)
    consumed = 0
    for method, _props, _body in channel.consume(queue, inactivity_timeout=1):
        if method is None:
            break
        channel.basic_ack(method.delivery_tag)
        consumed += 1
    channel.cancel()
    assert consumed == 8
    assert channel.basic_get(queue)[0] is None  # get_empty

    expected = {"publish": 10, "ack": 9, "deliver": 8, "deliver_get": 11, "deliver_no_ack": 0, "get": 2,
                "get_empty": 1, "get_no_ack": 1, "redeliver": 1}
    body = polled(mgmt, f"/api/queues/%2F/{queue}",
                  lambda q: {k: q.get("message_stats", {}).get(k) for k in expected} == expected)
    assert_shape(body["message_stats"], ("publish",) + QUEUE_DELIVERY_KEYS)


def test_no_ack_consumers_count_as_deliver_no_ack(mgmt: Mgmt, channel, names):
    queue = names("queues", "noack")
    channel.queue_declare(queue)
    for _ in range(3):
        channel.basic_publish("", queue, b"m")
    received = 0
    for method, _props, _body in channel.consume(queue, auto_ack=True, inactivity_timeout=1):
        if method is None:
            break
        received += 1
    channel.cancel()
    assert received == 3
    expected = {"deliver_no_ack": 3, "deliver": 0, "deliver_get": 3, "ack": 0}
    polled(mgmt, f"/api/queues/%2F/{queue}",
           lambda q: {k: q.get("message_stats", {}).get(k) for k in expected} == expected)


def test_queues_and_exchanges_without_traffic_have_no_message_stats(mgmt: Mgmt, channel, names):
    queue = names("queues", "idle")
    exchange = names("exchanges", "idle")
    channel.queue_declare(queue)
    channel.exchange_declare(exchange, "direct")
    assert "message_stats" not in mgmt.get(f"/api/queues/%2F/{queue}").json
    assert "message_stats" not in mgmt.get(f"/api/exchanges/%2F/{exchange}").json


def test_exchange_publish_in_counts_messages_and_publish_out_counts_copies(mgmt: Mgmt, channel, names):
    exchange = names("exchanges", "fan")
    channel.exchange_declare(exchange, "fanout")
    for base in ("f1", "f2"):
        queue = names("queues", base)
        channel.queue_declare(queue)
        channel.queue_bind(queue, exchange)
    for _ in range(5):
        channel.basic_publish(exchange, "", b"m")
    expected = {"publish_in": 5, "publish_out": 10}
    body = polled(mgmt, f"/api/exchanges/%2F/{exchange}",
                  lambda x: {k: x.get("message_stats", {}).get(k) for k in expected} == expected)
    assert_shape(body["message_stats"], ("publish_in", "publish_out"))
    queue_body = polled(mgmt, f"/api/queues/%2F/{names('queues', 'f1')}",
                        lambda q: q.get("message_stats", {}).get("publish") == 5)
    assert set(queue_body["message_stats"]) == {"publish", "publish_details"}  # nothing delivered


def test_an_exchange_that_routes_nothing_shows_publish_in_only(mgmt: Mgmt, channel, names):
    exchange = names("exchanges", "nowhere")
    channel.exchange_declare(exchange, "direct")
    channel.basic_publish(exchange, "no-such-key", b"m")
    body = polled(mgmt, f"/api/exchanges/%2F/{exchange}", lambda x: "message_stats" in x)
    assert set(body["message_stats"]) == {"publish_in", "publish_in_details"}
    assert body["message_stats"]["publish_in"] == 1


def test_vhost_counts_confirms_and_unroutable_publishes(mgmt: Mgmt, channel, names):
    before = mgmt.get("/api/vhosts/%2F").json.get("message_stats", {})
    exchange = names("exchanges", "unroutable")
    channel.exchange_declare(exchange, "direct")
    channel.confirm_delivery()
    channel.basic_publish(exchange, "nowhere", b"m")  # dropped
    with pytest.raises(pika.exceptions.UnroutableError):
        channel.basic_publish(exchange, "nowhere", b"m", mandatory=True)  # returned

    def grew(v: dict) -> bool:
        stats = v.get("message_stats", {})
        return all(stats.get(k, 0) >= before.get(k, 0) + 1 for k in ("drop_unroutable", "return_unroutable")) \
            and stats.get("confirm", 0) >= before.get("confirm", 0) + 2 \
            and stats.get("publish", 0) >= before.get("publish", 0) + 2

    body = polled(mgmt, "/api/vhosts/%2F", grew)
    assert_shape(body["message_stats"], ("publish", "confirm", "return_unroutable", "drop_unroutable"))


def test_overview_has_message_stats_and_churn_rates(mgmt: Mgmt, channel, names):
    queue = names("queues", "ov")
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"m")
    channel.basic_get(queue, auto_ack=True)
    body = polled(mgmt, "/api/overview", lambda o: o.get("message_stats", {}).get("deliver_get", 0) >= 1)
    assert_shape(body["message_stats"], VHOST_KEYS)
    assert_shape(body["churn_rates"], CHURN_KEYS)
    assert body["churn_rates"]["queue_created"] >= 1 and body["churn_rates"]["connection_created"] >= 1


def test_queues_sort_by_a_message_stat(mgmt: Mgmt, channel, names):
    busy, quiet = names("queues", "busy"), names("queues", "quiet")
    channel.queue_declare(busy)
    channel.queue_declare(quiet)
    for _ in range(3):
        channel.basic_publish("", busy, b"m")
    channel.basic_publish("", quiet, b"m")
    polled(mgmt, f"/api/queues/%2F/{busy}", lambda q: q.get("message_stats", {}).get("publish") == 3)
    polled(mgmt, f"/api/queues/%2F/{quiet}", lambda q: q.get("message_stats", {}).get("publish") == 1)
    listed = mgmt.get("/api/queues/%2F?sort=message_stats.publish&sort_reverse=true"
                      "&columns=name,message_stats.publish").json
    order = [q["name"] for q in listed if q["name"] in (busy, quiet)]
    assert order == [busy, quiet]
    assert next(q for q in listed if q["name"] == busy) == {"name": busy, "message_stats": {"publish": 3}}


IDLE_SINCE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00")


def test_idle_queue_with_a_consumer_that_keeps_up(mgmt: Mgmt, channel, names):
    """A queue nothing happens in shows `idle_since` (3.10's format); its consumer has nothing
    left waiting, so it could take every message at once: utilisation 1.0."""
    queue = names("queues", "idle")
    channel.queue_declare(queue)
    channel.basic_consume(queue, lambda *args: None, auto_ack=True)
    body = polled(mgmt, f"/api/queues/%2F/{queue}",
                  lambda q: "idle_since" in q and q.get("consumer_utilisation") == 1.0)
    assert IDLE_SINCE.fullmatch(body["idle_since"]), body["idle_since"]
    assert body["consumer_capacity"] == 1.0


def test_messages_waiting_without_consumers_is_no_utilisation(mgmt: Mgmt, channel, names):
    queue = names("queues", "waiting")
    channel.queue_declare(queue)
    channel.basic_publish("", queue, b"m")
    body = polled(mgmt, f"/api/queues/%2F/{queue}", lambda q: q.get("messages") == 1 and "idle_since" in q)
    assert body["consumer_utilisation"] == 0
