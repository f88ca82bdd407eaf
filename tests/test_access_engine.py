"""Permissions in the session engine, frame by frame: connection.open without a permission
entry, a refused operation costing only its channel, and permissions read again when they
change (the texts are RabbitMQ's; tests/test_permissions_matrix.py runs them against it)."""
from __future__ import annotations

from pamqp import commands as C

from amqp_broker.permissions import FULL
from helpers.engine import EngineClient, make_broker


def _closes(frames):
    return [(number, obj) for number, obj in frames if isinstance(obj, (C.Connection.Close, C.Channel.Close))]


def _login(client: EngineClient, vhost: str) -> list:
    client.send_bytes(b"AMQP\x00\x00\x09\x01")
    client.send(C.Connection.StartOk(mechanism="PLAIN", response="\x00guest\x00guest"))
    client.send(C.Connection.TuneOk(channel_max=2047, frame_max=131072, heartbeat=0))
    client.send(C.Connection.Open(virtual_host=vhost))
    return client.frames()


def test_open_without_a_permission_entry_is_530_and_counts_no_connection():
    broker = make_broker()
    broker.permissions.delete("/", "guest")
    client = EngineClient(broker)
    [(number, close)] = _closes(_login(client, "/"))
    assert number == 0
    assert (close.reply_code, close.reply_text, close.class_id, close.method_id) == (
        530, "NOT_ALLOWED - access to vhost '/' refused for user 'guest'", 10, 40)
    assert broker.churn.connections_opened == 0
    assert client.session.vhost is None


def test_any_permission_entry_lets_the_connection_open():
    broker = make_broker()
    broker.permissions.set("guest", "/", "", "", "")
    client = EngineClient(broker)
    frames = _login(client, "/")
    assert any(isinstance(obj, C.Connection.OpenOk) for _n, obj in frames)


def test_a_refused_operation_closes_its_channel_only():
    broker = make_broker()
    broker.permissions.set("guest", "/", "^c", "^w", "^r")
    client = EngineClient(broker).open(channels=(1, 2))
    client.send(C.Queue.Declare(queue="xq"), 1)
    [(number, close)] = _closes(client.frames())
    assert (number, close.reply_code, close.class_id, close.method_id) == (1, 403, 50, 10)
    assert close.reply_text == "ACCESS_REFUSED - access to queue 'xq' in vhost '/' refused for user 'guest'"
    client.send(C.Queue.Declare(queue="cq"), 2)
    assert any(isinstance(obj, C.Queue.DeclareOk) for _n, obj in client.frames())


def test_publish_refusal_names_the_publish_and_the_default_exchange():
    broker = make_broker()
    broker.permissions.set("guest", "/", FULL, "^w", FULL)
    client = EngineClient(broker).open()
    client.publish(1, b"m", "q")
    [(number, close)] = _closes(client.frames())
    assert (number, close.reply_code, close.class_id, close.method_id) == (1, 403, 60, 40)
    assert close.reply_text == "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'guest'"


def test_permissions_granted_after_open_apply_to_new_checks():
    broker = make_broker()
    broker.permissions.set("guest", "/", "", "", "")
    client = EngineClient(broker).open(channels=(1, 2))
    client.send(C.Queue.Declare(queue="q"), 1)
    assert _closes(client.frames())
    broker.permissions.set("guest", "/", FULL, FULL, FULL)
    client.send(C.Queue.Declare(queue="q"), 2)
    assert any(isinstance(obj, C.Queue.DeclareOk) for _n, obj in client.frames())
