"""Limits: vhost limits (max-connections, max-queues) through /api/vhost-limits and their
effect on AMQP, against our broker or the reference (helpers.mgmt); the max message size and
the handshake timeout against ours, with a raw socket.

The vhost-limit tests work in a vhost of their own, so the shared reference's "/" is never
limited.
"""
from __future__ import annotations

import socket
import urllib.parse

import pytest
from pamqp import commands

from helpers.broker import BrokerThread
from helpers.mgmt import Mgmt
from helpers.raw import AMQP_091_HEADER, PeerClosed, RawConnection


@pytest.fixture()
def vhost(mgmt: Mgmt, uid: str):
    """A vhost guest may use, deleted afterwards (and its limits with it)."""
    name = f"limits-{uid}"
    quoted = urllib.parse.quote(name, safe="")
    assert mgmt.put(f"/api/vhosts/{quoted}").status in (201, 204)
    assert mgmt.put(f"/api/permissions/{quoted}/{mgmt.user}",
                    {"configure": ".*", "write": ".*", "read": ".*"}).status in (201, 204)
    yield name
    mgmt.delete(f"/api/vhosts/{quoted}")


def path(vhost: str, name: str = "") -> str:
    base = f"/api/vhost-limits/{urllib.parse.quote(vhost, safe='')}"
    return f"{base}/{name}" if name else base


def amqp_url(mgmt: Mgmt, vhost: str) -> str:
    return mgmt.amqp_url.rstrip("/") + "/" + urllib.parse.quote(vhost, safe="")


# -- the API -----------------------------------------------------------------------------------


def test_limits_are_set_listed_and_cleared(mgmt: Mgmt, vhost: str):
    assert mgmt.get(path(vhost)).json == []
    assert mgmt.put(path(vhost, "max-queues"), {"value": 5}).status == 204
    assert mgmt.get(path(vhost)).json == [{"vhost": vhost, "value": {"max-queues": 5}}]
    assert mgmt.put(path(vhost, "max-connections"), {"value": -1}).status == 204
    assert mgmt.put(path(vhost, "max-queues"), {"value": 7}).status == 204
    assert mgmt.get(path(vhost)).json == [{"vhost": vhost, "value": {"max-queues": 7, "max-connections": -1}}]
    assert {"vhost": vhost, "value": {"max-queues": 7, "max-connections": -1}} in mgmt.get("/api/vhost-limits").json
    assert mgmt.delete(path(vhost, "max-queues")).status == 204
    assert mgmt.delete(path(vhost, "max-queues")).status == 204  # already gone: still 204
    assert mgmt.get(path(vhost)).json == [{"vhost": vhost, "value": {"max-connections": -1}}]


@pytest.mark.parametrize("name, body, reason", [
    ("max-queues", {"valu": 3}, "[{key_missing,value}]"),
    ("max-queues", {"value": "7"}, 'Validation failed\n\nmax-queues should be a number, actually was <<"7">>\n'),
    ("max-queues", {"value": 2.5}, "Validation failed\n\nmax-queues should be a number, actually was 2.5\n"),
    ("max-bogus", {"value": 1}, 'Validation failed\n\nUnrecognised terms [{<<"max-bogus">>,1}] in limits\n'),
    ("max-queues", b"xx", "not_json"),
])
def test_bad_limits_are_refused(mgmt: Mgmt, vhost: str, name, body, reason):
    reply = mgmt.put(path(vhost, name), body)
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": reason})
    assert mgmt.get(path(vhost)).json == []


def test_limits_of_a_vhost_that_does_not_exist(mgmt: Mgmt, uid: str):
    reply = mgmt.put(path(f"nosuch-{uid}", "max-queues"), {"value": 1})
    assert (reply.status, reply.json) == (404, {"error": "not_found", "reason": "vhost_not_found"})
    reply = mgmt.get(path(f"nosuch-{uid}"))
    assert (reply.status, reply.json) == (404, {"error": "Object Not Found", "reason": "Not Found"})


# -- their effect ------------------------------------------------------------------------------


def test_the_connection_limit_refuses_connection_open(mgmt: Mgmt, vhost: str):
    assert mgmt.put(path(vhost, "max-connections"), {"value": 1}).status == 204
    url = amqp_url(mgmt, vhost)
    with RawConnection.connect(url), RawConnection.from_url(url) as conn:
        conn.handshake(mgmt.user, mgmt.password, vhost, open=False)
        conn.send_frame(commands.Connection.Open(virtual_host=vhost))
        assert conn.expect_close() == (
            530, f"NOT_ALLOWED - access to vhost '{vhost}' refused for user '{mgmt.user}': "
            "connection limit (1) is reached", 10, 40)
    assert mgmt.put(path(vhost, "max-connections"), {"value": 2}).status == 204
    with RawConnection.connect(url), RawConnection.connect(url):
        pass


def test_the_queue_limit_refuses_new_queues_only(mgmt: Mgmt, vhost: str, uid: str):
    assert mgmt.put(path(vhost, "max-queues"), {"value": 1}).status == 204
    with RawConnection.connect(amqp_url(mgmt, vhost)) as conn:
        conn.open_channel(1)
        conn.rpc(commands.Queue.Declare(queue=f"q1-{uid}"), 1, commands.Queue.DeclareOk)
        conn.rpc(commands.Queue.Declare(queue=f"q1-{uid}"), 1, commands.Queue.DeclareOk)  # exists: fine
        conn.send_frame(commands.Queue.Declare(queue=f"q2-{uid}"), 1)
        assert conn.expect_channel_close(1) == (
            406, f"PRECONDITION_FAILED - cannot declare queue 'q2-{uid}': queue limit in vhost '{vhost}' (1) is reached",
            50, 10)
    reply = mgmt.put(f"/api/queues/{urllib.parse.quote(vhost, safe='')}/q3-{uid}", {})
    assert (reply.status, reply.json) == (400, {
        "error": "bad_request",
        "reason": f"cannot declare queue 'q3-{uid}': queue limit in vhost '{vhost}' (1) is reached"})
    assert mgmt.put(path(vhost, "max-queues"), {"value": -1}).status == 204  # negative: no limit
    assert mgmt.put(f"/api/queues/{urllib.parse.quote(vhost, safe='')}/q3-{uid}", {}).status == 201


# -- max message size and handshake timeout (ours) ------------------------------------------------


@pytest.fixture(scope="module")
def small_broker():
    with BrokerThread(max_message_size=1000, handshake_timeout=0.5) as bt:
        yield bt


def test_a_message_over_the_max_size_closes_the_channel(small_broker):
    with RawConnection.connect(small_broker.url) as conn:
        conn.open_channel(1)
        conn.publish(1, b"x" * 1000, "", "nowhere")  # at the limit: accepted
        conn.publish(1, b"x" * 1001, "", "nowhere")
        assert conn.expect_channel_close(1) == (
            406, "PRECONDITION_FAILED - message size 1001 is larger than configured max size 1000", 60, 40)


def test_a_client_that_does_not_finish_the_handshake_is_disconnected(small_broker):
    port = small_broker.broker.port
    # a read timeout of 5 s: with the 10 s default the broker would not close in time
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(AMQP_091_HEADER)
        received = b""
        while True:  # connection.start, then the end of the stream
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        assert received.startswith(b"\x01\x00\x00")  # connection.start was sent


def test_a_silent_client_is_disconnected_too(small_broker):
    conn = RawConnection.from_url(small_broker.url)
    with pytest.raises((PeerClosed, ConnectionError)):
        conn.recv_frame()
    conn.close()


def test_limits_are_read_by_vhost_users_and_set_by_administrators(mgmt: Mgmt, vhost: str, uid: str):
    user = f"limits-user-{uid}"
    mgmt.add_user(user, "pw", ("management",))
    try:
        quoted = urllib.parse.quote(vhost, safe="")
        assert mgmt.put(f"/api/permissions/{quoted}/{user}",
                        {"configure": ".*", "write": ".*", "read": ".*"}).status in (201, 204)
        assert mgmt.put(path(vhost, "max-queues"), {"value": 3}).status == 204
        assert mgmt.get(path(vhost), auth=(user, "pw")).json == [{"vhost": vhost, "value": {"max-queues": 3}}]
        assert {"vhost": vhost, "value": {"max-queues": 3}} in mgmt.get("/api/vhost-limits", auth=(user, "pw")).json
        assert mgmt.put(path(vhost, "max-queues"), {"value": 9}, auth=(user, "pw")).status == 401
        assert mgmt.delete(path(vhost, "max-queues"), auth=(user, "pw")).status == 401
        assert mgmt.get(path(vhost)).json == [{"vhost": vhost, "value": {"max-queues": 3}}]
    finally:
        mgmt.remove_user(user)


def test_limits_survive_a_restart(tmp_path, uid):
    import json
    import urllib.request

    def call(bt, method, path_, body=None):
        request = urllib.request.Request(bt.broker.mgmt_url + path_, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q=",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=15) as resp:
            return json.loads(resp.read() or b"null")

    with BrokerThread(data_dir=str(tmp_path), mgmt_port=0) as bt:
        call(bt, "PUT", path("/", "max-queues"), {"value": 4})
        call(bt, "PUT", path("/", "max-connections"), {"value": 9})
        call(bt, "DELETE", path("/", "max-connections"))
    with BrokerThread(data_dir=str(tmp_path), mgmt_port=0) as bt:
        assert call(bt, "GET", path("/")) == [{"vhost": "/", "value": {"max-queues": 4}}]
        assert bt.broker.vhosts["/"].limits.reached("max-queues", 4) == 4
