"""Memory and disk alarms (amqp_broker/alarms.py): the state machine and size parsing, the
engine's blocked/unblocked rules, and a real broker whose watermark is lowered at run time:
publishers are blocked (pika sees connection.blocked, then connection.unblocked), a consumer
keeps receiving, and the health checks, /api/nodes and Prometheus report the alarm.

Our broker only: the reference cannot be put into alarm from a test.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

import pika
import pytest
from pamqp import commands as C

from amqp_broker.alarms import (
    DISK, MEMORY, ResourceAlarms, SizeError, Watermark, blocked_reason, parse_size,
)
from amqp_broker.session import effects, throttle
from helpers.broker import BrokerThread
from helpers.engine import EngineClient
from helpers.wait import wait_until

# -- sizes and watermarks ------------------------------------------------------------------------


@pytest.mark.parametrize("text, size", [
    ("50000000", 50000000), (1024, 1024), ("50MB", 50_000_000), ("200kB", 200_000), ("2GB", 2_000_000_000),
    ("1GiB", 1 << 30), ("3M", 3 << 20), ("3MiB", 3 << 20), ("4k", 4096), (" 7 kiB ", 7168),
])
def test_sizes_parse_as_rabbitmq_writes_them(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MB", "-1", "1.5GB", "12 parsecs", -5])
def test_bad_sizes_are_refused(text):
    with pytest.raises(SizeError):
        parse_size(text)


def test_watermarks():
    assert Watermark.parse("0.4") == Watermark(relative=0.4)
    assert Watermark.parse(0) == Watermark(relative=0.0)
    assert Watermark.parse("200MB") == Watermark(absolute=200_000_000)
    assert Watermark.parse("209715200") == Watermark(absolute=209715200)
    assert Watermark.parse("0.5").limit(1000) == 500
    assert Watermark.parse("1kB").limit(1 << 40) == 1000
    for bad in ("1.5", "-0.1", "nan", "lots"):
        with pytest.raises(SizeError):
            Watermark.parse(bad)


def test_alarm_state_sets_and_clears_each_resource():
    state = ResourceAlarms(memory_limit=100, disk_free_limit=50)
    assert state.update(100, 50) == (frozenset(), frozenset())  # at the limits: no alarm
    assert state.update(101, 50) == ({MEMORY}, frozenset())
    assert state.update(101, 49) == ({DISK}, frozenset())
    assert state.active == {MEMORY, DISK}
    assert state.update(None, None) == (frozenset(), frozenset())  # nothing measured: unchanged
    assert state.update(10, 49) == (frozenset(), {MEMORY})
    assert state.update(10, 1000) == (frozenset(), {DISK})
    assert state.active == frozenset()


def test_blocked_reasons_are_rabbitmqs():
    assert blocked_reason(frozenset({MEMORY})) == "low on memory"
    assert blocked_reason(frozenset({DISK})) == "low on disk"
    assert blocked_reason(frozenset({DISK, MEMORY})) == "low on memory & disk"


# -- the engine ------------------------------------------------------------------------------------


def notices(frames) -> list:
    """connection.blocked (its reason) and connection.unblocked ("unblocked") among frames."""
    return [obj.reason if isinstance(obj, C.Connection.Blocked) else "unblocked"
            for channel, obj in frames if isinstance(obj, (C.Connection.Blocked, C.Connection.Unblocked))]


def blocked_capable(client: EngineClient) -> EngineClient:
    client.open()
    client.session.capabilities = {"connection.blocked": True}
    return client


def test_a_publish_under_an_alarm_blocks_the_connection():
    client = blocked_capable(EngineClient())
    throttle.alarms_changed(client.session, frozenset({MEMORY}))
    assert client.frames() == [] and not client.session.blocked  # not publishing yet: not blocked
    client.send(C.Queue.Declare(queue="q"), 1)
    client.publish(1, b"m", "q")
    assert notices(client.frames()) == ["low on memory"]
    assert client.session.blocked
    assert effects.ALARM_BLOCK in client.effects
    assert client.broker.vhosts["/"].queues["q"].message_count == 1  # the publish itself went through
    client.publish(1, b"m2", "q")  # already blocked: told once
    assert notices(client.frames()) == []
    throttle.alarms_changed(client.session, frozenset())
    assert notices(client.frames()) == ["unblocked"]
    assert effects.ALARM_UNBLOCK in client.effects
    assert not client.session.blocked


def test_a_change_of_alarms_while_blocked_keeps_it_blocked():
    client = blocked_capable(EngineClient())
    throttle.alarms_changed(client.session, frozenset({MEMORY}))
    client.publish(1, b"m", "")
    client.frames()
    throttle.alarms_changed(client.session, frozenset({DISK}))
    assert client.frames() == [] and client.session.blocked
    throttle.alarms_changed(client.session, frozenset())
    assert notices(client.frames()) == ["unblocked"]


def test_a_client_without_the_capability_is_blocked_without_being_told():
    client = EngineClient().open()
    throttle.alarms_changed(client.session, frozenset({DISK}))
    client.publish(1, b"m", "")
    assert client.frames() == []
    assert client.session.blocked and effects.ALARM_BLOCK in client.effects
    throttle.alarms_changed(client.session, frozenset())
    assert client.frames() == [] and effects.ALARM_UNBLOCK in client.effects


def test_a_blocked_connection_is_not_dropped_for_missed_heartbeats():
    client = blocked_capable(EngineClient())
    client.session.start_heartbeat(10)  # as a tune-ok asking for 10 s would
    throttle.alarms_changed(client.session, frozenset({MEMORY}))
    client.publish(1, b"m", "")
    client.frames()
    for _ in range(10):  # 50 s of silence: nothing is read from a blocked connection
        client.advance(5)
    assert effects.ABORT_SOCKET not in client.effects


# -- a running broker ------------------------------------------------------------------------------


@pytest.fixture()
def broker():
    with BrokerThread(mgmt_port=0, prometheus_port=0) as bt:
        yield bt


def set_watermark(bt: BrokerThread, value) -> None:
    async def apply():
        bt.broker.alarms.set_memory_high_watermark(value)

    bt.call(apply)


def set_disk_limit(bt: BrokerThread, value) -> None:
    async def apply():
        bt.broker.alarms.set_disk_free_limit(value)

    bt.call(apply)


def get_json(url: str):
    """(status, body) of a GET as guest."""
    request = urllib.request.Request(url, headers={"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q="})
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def metric(bt: BrokerThread, name: str) -> float:
    with urllib.request.urlopen(bt.broker.prometheus_url + "/metrics", timeout=15) as resp:
        text = resp.read().decode()
    [line] = [line for line in text.splitlines() if line.startswith(name + " ")]
    return float(line.split()[1])


def test_lowering_the_watermark_blocks_publishers_and_consumers_go_on(broker, uid, caplog):
    params = pika.URLParameters(broker.url)
    consumer = pika.BlockingConnection(params)
    publisher = pika.BlockingConnection(params)
    try:
        queue = f"alarm-{uid}"
        cch = consumer.channel()
        cch.queue_declare(queue)
        received = []
        cch.basic_consume(queue, lambda ch, method, props, body: (received.append(body),
                                                                  ch.basic_ack(method.delivery_tag)))
        events = []
        publisher.add_on_connection_blocked_callback(lambda conn, frame: events.append(frame.method))
        publisher.add_on_connection_unblocked_callback(lambda conn, frame: events.append(frame.method))
        pch = publisher.channel()
        pch.basic_publish("", queue, b"before")
        assert wait_until(lambda: consumer.process_data_events(0.05) or received == [b"before"])

        with caplog.at_level(logging.WARNING, logger="amqp_broker.alarms"):
            set_watermark(broker, 0)  # RabbitMQ's way to block all publishing
        assert "memory resource limit alarm set" in caplog.text
        pch.basic_publish("", queue, b"during")
        assert wait_until(lambda: publisher.process_data_events(0.05) or events)
        assert isinstance(events[0], pika.spec.Connection.Blocked)
        assert events[0].reason == "low on memory"
        # the consumer, which never published, is not blocked: it gets the message and acks
        assert wait_until(lambda: consumer.process_data_events(0.05) or len(received) == 2)
        assert received[1] == b"during"
        pch.basic_publish("", queue, b"held")  # not read until the alarm clears

        with caplog.at_level(logging.WARNING, logger="amqp_broker.alarms"):
            set_watermark(broker, 0.4)
        assert "memory resource limit alarm cleared" in caplog.text
        assert wait_until(lambda: publisher.process_data_events(0.05) or len(events) == 2)
        assert isinstance(events[1], pika.spec.Connection.Unblocked)
        assert wait_until(lambda: consumer.process_data_events(0.05) or len(received) == 3)
        assert received[2] == b"held"
    finally:
        publisher.close()
        consumer.close()


def test_the_alarm_is_reported_by_health_checks_nodes_and_metrics(broker):
    base = broker.broker.mgmt_url
    assert get_json(base + "/api/health/checks/alarms") == (200, {"status": "ok"})
    assert metric(broker, "rabbitmq_alarms_memory_used_watermark") == 0
    [node] = get_json(base + "/api/nodes")[1]
    assert node["mem_alarm"] is False and node["disk_free_alarm"] is False
    assert node["mem_limit"] > 0 and node["disk_free_limit"] == 50_000_000
    assert metric(broker, "rabbitmq_resident_memory_limit_bytes") == node["mem_limit"]
    assert metric(broker, "rabbitmq_disk_space_available_limit_bytes") == 50_000_000
    try:
        set_watermark(broker, 0)
        set_disk_limit(broker, "1000000TB")
        status, body = get_json(base + "/api/health/checks/alarms")
        assert status == 503
        assert body == {"status": "failed", "reason": "There are alarms in effect in the cluster",
                        "alarms": [{"resource": "memory", "node": node["name"]},
                                   {"resource": "disk space", "node": node["name"]}]}
        status, body = get_json(base + "/api/health/checks/local-alarms")
        assert status == 503 and body["reason"] == "There are alarms in effect on the node"
        [node] = get_json(base + "/api/nodes")[1]
        assert node["mem_alarm"] is True and node["disk_free_alarm"] is True
        assert node["mem_limit"] == 0 and node["disk_free_limit"] == 10 ** 18
        assert metric(broker, "rabbitmq_alarms_memory_used_watermark") == 1
        assert metric(broker, "rabbitmq_alarms_free_disk_space_watermark") == 1
    finally:
        set_watermark(broker, 0.4)
        set_disk_limit(broker, "50MB")
    assert get_json(base + "/api/health/checks/alarms") == (200, {"status": "ok"})
    assert metric(broker, "rabbitmq_alarms_free_disk_space_watermark") == 0


def test_a_connection_opened_during_an_alarm_is_blocked_on_its_first_publish(broker, uid):
    set_watermark(broker, "1kB")
    try:
        conn = pika.BlockingConnection(pika.URLParameters(broker.url))
        events = []
        conn.add_on_connection_blocked_callback(lambda c, frame: events.append(frame.method.reason))
        conn.channel().basic_publish("", f"nowhere-{uid}", b"x")
        assert wait_until(lambda: conn.process_data_events(0.05) or events)
        assert events == ["low on memory"]
    finally:
        set_watermark(broker, 0.4)
    conn.close()
