"""Connections, channels and consumers in the management API (/api/connections,
/api/channels, /api/consumers, and a queue's consumer_details), over real HTTP with pika
clients, against our broker or a real RabbitMQ's (helpers.mgmt). Each test finds its own
connection by the connection_name client property it gave it (other clients may be connected
to a shared reference)."""
from __future__ import annotations

import threading
import time
import urllib.parse

import pika
import pika.exceptions
import pytest

from helpers.mgmt import Mgmt, polled
from helpers.wait import HANG_GUARD, wait_until

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}


def quoted(name: str) -> str:
    """A connection or channel name as a path segment."""
    return urllib.parse.quote(name, safe="")


def params(mgmt: Mgmt, label: str) -> pika.URLParameters:
    p = pika.URLParameters(mgmt.amqp_url)
    p.client_properties = {"connection_name": label}
    p.heartbeat = 30
    return p


@pytest.fixture
def label(uid: str) -> str:
    return f"mgmt-conn-{uid}"


@pytest.fixture
def client(mgmt: Mgmt, label: str):
    conn = pika.BlockingConnection(params(mgmt, label))
    yield conn
    if conn.is_open:
        conn.close()


def listed(mgmt: Mgmt, label: str, pred=lambda c: True) -> dict:
    """Our connection as GET /api/connections shows it, once `pred` holds for it."""
    def ours(c):
        return c.get("client_properties", {}).get("connection_name") == label

    conns = polled(mgmt, "/api/connections", lambda cs: any(ours(c) and pred(c) for c in cs))
    return next(c for c in conns if ours(c))


def test_connection_fields(mgmt: Mgmt, label: str):
    before = int(time.time() * 1000)
    conn = pika.BlockingConnection(params(mgmt, label))
    try:
        item = listed(mgmt, label)
        after = int(time.time() * 1000)
        local = urllib.parse.urlsplit(mgmt.amqp_url)
        assert item["name"] == f"{item['peer_host']}:{item['peer_port']} -> {item['host']}:{item['port']}"
        assert item["port"] == local.port
        assert item["user"] == item["user_who_performed_action"] == "guest"
        assert item["vhost"] == "/"
        assert item["user_provided_name"] == label
        assert item["protocol"] == "AMQP 0-9-1"
        assert item["auth_mechanism"] == "PLAIN"
        assert item["type"] == "network"
        assert item["state"] == "running"
        assert item["ssl"] is False
        assert item["timeout"] == 30
        assert item["frame_max"] == 131072
        assert item["channel_max"] == 2047
        assert item["channels"] == 0
        assert before - 1000 <= item["connected_at"] <= after + 1000  # a wall-clock ms stamp
        props = item["client_properties"]
        assert props["product"] == "Pika Python Client Library"
        assert props["connection_name"] == label
        assert props["capabilities"]["publisher_confirms"] is True
        assert item["node"] == mgmt.get("/api/overview").json["node"]
    finally:
        conn.close()


def test_one_connection_by_its_quoted_name(mgmt: Mgmt, client, label: str):
    client.channel()
    name = listed(mgmt, label, lambda c: c["channels"] == 1)["name"]
    reply = mgmt.get(f"/api/connections/{quoted(name)}")
    assert reply.status == 200
    assert reply.json["name"] == name
    assert reply.json["channels"] == 1


@pytest.mark.parametrize("path", [
    "/api/connections/no-such-connection",
    "/api/channels/no-such-channel",
    "/api/vhosts/no-such-vhost/connections",
    "/api/vhosts/no-such-vhost/channels",
    "/api/consumers/no-such-vhost",
])
def test_unknown_objects_are_404(mgmt: Mgmt, path: str):
    reply = mgmt.get(path)
    assert reply.status == 404
    assert reply.json == NOT_FOUND


def test_connections_of_a_vhost(mgmt: Mgmt, client, label: str):
    name = listed(mgmt, label)["name"]
    reply = mgmt.get("/api/vhosts/%2F/connections")
    assert reply.status == 200
    assert name in [c["name"] for c in reply.json]


def test_channels_of_a_connection(mgmt: Mgmt, client, label: str):
    client.channel()
    client.channel()
    name = listed(mgmt, label, lambda c: c["channels"] == 2)["name"]
    channels = polled(mgmt, f"/api/connections/{quoted(name)}/channels", lambda cs: len(cs) == 2)
    assert sorted(ch["name"] for ch in channels) == [f"{name} (1)", f"{name} (2)"]
    assert sorted(ch["number"] for ch in channels) == [1, 2]


def test_delete_closes_the_connection_with_the_default_reason(mgmt: Mgmt, client, label: str):
    name = listed(mgmt, label)["name"]
    reply = mgmt.delete(f"/api/connections/{quoted(name)}")
    assert reply.status == 204
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as caught:
        client.process_data_events(time_limit=HANG_GUARD)
    assert caught.value.reply_code == 320
    assert caught.value.reply_text == "CONNECTION_FORCED - Closed via management plugin"
    assert wait_until(lambda: mgmt.get(f"/api/connections/{quoted(name)}").status == 404)
    assert mgmt.delete(f"/api/connections/{quoted(name)}").json == NOT_FOUND


def test_delete_unknown_connection_is_404(mgmt: Mgmt):
    reply = mgmt.delete("/api/connections/no-such-connection")
    assert reply.status == 404
    assert reply.json == NOT_FOUND


def test_close_callback_sees_the_x_reason(mgmt: Mgmt, label: str):
    """An asynchronous pika client's on_close_callback gets 320 and the X-Reason text."""
    seen: dict = {}

    def on_close(conn, exc):
        seen["exc"] = exc
        conn.ioloop.stop()

    conn = pika.SelectConnection(params(mgmt, label), on_close_callback=on_close)
    loop = threading.Thread(target=conn.ioloop.start, daemon=True)
    loop.start()
    try:
        name = listed(mgmt, label)["name"]
        reply = mgmt.delete(f"/api/connections/{quoted(name)}", headers={"X-Reason": "maintenance <window>"})
        assert reply.status == 204
        loop.join(HANG_GUARD)
        assert not loop.is_alive()
    finally:
        if loop.is_alive():
            conn.ioloop.add_callback_threadsafe(conn.close)
            loop.join(HANG_GUARD)
    exc = seen["exc"]
    assert isinstance(exc, pika.exceptions.ConnectionClosedByBroker)
    assert (exc.reply_code, exc.reply_text) == (320, "CONNECTION_FORCED - maintenance <window>")


# -- channels ----------------------------------------------------------------------------------

def test_channel_fields(mgmt: Mgmt, client, label: str, uid: str):
    ch = client.channel()
    ch.basic_qos(prefetch_count=7)
    ch.basic_qos(prefetch_count=3, global_qos=True)
    queue = ch.queue_declare(f"mgmt-chq-{uid}", auto_delete=True).method.queue
    ch.basic_publish("", queue, b"hello")
    ch.basic_consume(queue, lambda *a: None, consumer_tag=f"ctag-{uid}")
    confirming = client.channel()
    confirming.confirm_delivery()
    transacting = client.channel()
    transacting.tx_select()
    conn = listed(mgmt, label, lambda c: c["channels"] == 3)
    name = conn["name"]
    channels = polled(mgmt, f"/api/connections/{quoted(name)}/channels",
                      lambda cs: any(c["number"] == 1 and c["messages_unacknowledged"] == 1 for c in cs))
    by_number = {c["number"]: c for c in channels}
    first = by_number[1]
    assert first["name"] == f"{name} (1)"
    assert first["connection_details"] == {"name": name, "peer_host": conn["peer_host"],
                                           "peer_port": conn["peer_port"]}
    assert first["user"] == "guest"
    assert first["vhost"] == "/"
    assert first["state"] == "running"
    assert first["consumer_count"] == 1
    assert first["prefetch_count"] == 7
    assert first["global_prefetch_count"] == 3
    assert (first["confirm"], first["transactional"]) == (False, False)
    assert first["messages_unconfirmed"] == first["messages_uncommitted"] == first["acks_uncommitted"] == 0
    assert (by_number[2]["confirm"], by_number[2]["transactional"]) == (True, False)
    assert (by_number[3]["confirm"], by_number[3]["transactional"]) == (False, True)
    assert {c["name"] for c in mgmt.get("/api/channels").json} >= {c["name"] for c in channels}
    assert {c["name"] for c in mgmt.get("/api/vhosts/%2F/channels").json} >= {c["name"] for c in channels}

    one = mgmt.get(f"/api/channels/{quoted(first['name'])}")
    assert one.status == 200
    assert one.json["number"] == 1
    assert [c["consumer_tag"] for c in one.json["consumer_details"]] == [f"ctag-{uid}"]


# -- consumers ---------------------------------------------------------------------------------

def test_consumer_fields(mgmt: Mgmt, client, label: str, uid: str):
    ch = client.channel()
    ch.basic_qos(prefetch_count=5)
    queue = ch.queue_declare(f"mgmt-cq-{uid}", auto_delete=True).method.queue
    tag = f"ctag-{uid}"
    ch.basic_consume(queue, lambda *a: None, consumer_tag=tag, arguments={"x-priority": 4})
    name = listed(mgmt, label)["name"]
    consumers = polled(mgmt, "/api/consumers", lambda cs: any(c["consumer_tag"] == tag for c in cs))
    item = next(c for c in consumers if c["consumer_tag"] == tag)
    assert item["queue"] == {"name": queue, "vhost": "/"}
    details = item["channel_details"]
    assert details["name"] == f"{name} (1)"
    assert details["connection_name"] == name
    assert details["number"] == 1
    assert details["user"] == "guest"
    assert item["ack_required"] is True
    assert item["exclusive"] is False
    assert item["prefetch_count"] == 5
    assert item["arguments"] == {"x-priority": 4}
    assert (item["active"], item["activity_status"]) == (True, "up")
    in_vhost = mgmt.get("/api/consumers/%2F")
    assert in_vhost.status == 200
    assert tag in [c["consumer_tag"] for c in in_vhost.json]


def test_single_active_consumer_and_exclusive_consumer(mgmt: Mgmt, client, uid: str):
    ch = client.channel()
    sac = ch.queue_declare(f"mgmt-sac-{uid}", auto_delete=True,
                           arguments={"x-single-active-consumer": True}).method.queue
    ch.basic_consume(sac, lambda *a: None, consumer_tag=f"first-{uid}")
    ch.basic_consume(sac, lambda *a: None, consumer_tag=f"second-{uid}")
    exc = ch.queue_declare(f"mgmt-exc-{uid}", auto_delete=True).method.queue
    ch.basic_consume(exc, lambda *a: None, consumer_tag=f"only-{uid}", exclusive=True, auto_ack=True)
    mine = {f"first-{uid}", f"second-{uid}", f"only-{uid}"}
    consumers = polled(mgmt, "/api/consumers",
                       lambda cs: mine <= {c["consumer_tag"] for c in cs})
    status = {c["consumer_tag"]: (c["active"], c["activity_status"], c["exclusive"], c["ack_required"])
              for c in consumers if c["consumer_tag"] in mine}
    assert status == {
        f"first-{uid}": (True, "single_active", False, True),
        f"second-{uid}": (False, "waiting", False, True),
        f"only-{uid}": (True, "up", True, False),
    }
    sac_queue = mgmt.get(f"/api/queues/%2F/{sac}").json
    assert sac_queue["single_active_consumer_tag"] == f"first-{uid}"
    assert sac_queue["exclusive_consumer_tag"] is None
    assert sorted(c["consumer_tag"] for c in sac_queue["consumer_details"]) == [f"first-{uid}", f"second-{uid}"]
    exc_queue = mgmt.get(f"/api/queues/%2F/{exc}").json
    assert exc_queue["exclusive_consumer_tag"] == f"only-{uid}"
    assert exc_queue["single_active_consumer_tag"] is None


# -- queue objects -----------------------------------------------------------------------------

def test_queue_message_bytes_and_policy_fields(mgmt: Mgmt, client, uid: str):
    ch = client.channel()
    queue = ch.queue_declare(f"mgmt-qb-{uid}", auto_delete=True).method.queue
    ch.basic_publish("", queue, b"12345")
    ch.basic_publish("", queue, b"123")
    ch.basic_qos(prefetch_count=1)  # one delivered (unacked), one left ready
    method, _props, _body = next(ch.consume(queue, inactivity_timeout=HANG_GUARD))
    assert method is not None
    item = polled(mgmt, f"/api/queues/%2F/{queue}",
                  lambda q: q.get("messages_unacknowledged") == 1 and q.get("messages_ready") == 1
                  and q.get("message_bytes") == 8)  # RabbitMQ reports counts and bytes apart
    assert item["message_bytes_ready"] == 3
    assert item["message_bytes_unacknowledged"] == 5
    assert item["policy"] is None
    assert item["operator_policy"] is None
    assert item["effective_policy_definition"] == {}
    assert len(item["consumer_details"]) == 1
    listed_item = next(q for q in mgmt.get("/api/queues/%2F").json if q["name"] == queue)
    assert "consumer_details" not in listed_item  # only the single-queue answer has them
