"""AMQP beside the management API under test (ours, or the reference's AMQP_REFERENCE_URL), and
the POST helpers of the message endpoints: what the tests of exchanges, bindings and queue
messages share."""
from __future__ import annotations

import pika
import pytest

from helpers.mgmt import Mgmt, Reply


@pytest.fixture
def amqp(mgmt: Mgmt):
    """A pika channel on the broker whose management API is under test."""
    conn = pika.BlockingConnection(pika.URLParameters(mgmt.amqp_url))
    yield conn.channel()
    conn.close()


def post(mgmt: Mgmt, path: str, body) -> Reply:
    return mgmt.request("POST", path, body)


def publish(mgmt: Mgmt, exchange: str, routing_key: str, payload: str = "m", properties: dict | None = None,
            encoding: str = "string") -> Reply:
    return post(mgmt, f"/api/exchanges/%2F/{exchange}/publish", {
        "properties": properties or {}, "routing_key": routing_key,
        "payload": payload, "payload_encoding": encoding})


def get(mgmt: Mgmt, queue: str, count: int = 10, ackmode: str = "ack_requeue_false", encoding: str = "auto",
        **extra) -> Reply:
    return post(mgmt, f"/api/queues/%2F/{queue}/get",
                {"count": count, "ackmode": ackmode, "encoding": encoding, **extra})


def bad_request(reason) -> dict:
    return {"error": "bad_request", "reason": reason}
