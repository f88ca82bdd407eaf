"""The access endpoints of the management API: /api/users, /api/vhosts PUT/DELETE,
/api/permissions, over real HTTP.

Runs against our broker, or a real RabbitMQ 3.10 when MGMT_REFERENCE_URL is set
(helpers.mgmt): every status and body asserted here is the reference's answer.
"""
from __future__ import annotations

import base64
import hashlib
import urllib.parse

import pika
import pytest

from helpers.mgmt import Mgmt

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}
SHA256 = "rabbit_password_hashing_sha256"


def q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def bad_request(reason) -> dict:
    return {"error": "bad_request", "reason": reason}


@pytest.fixture
def user(mgmt: Mgmt, uid: str):
    name = f"acc-u-{uid}"
    yield name
    mgmt.delete(f"/api/users/{q(name)}")


@pytest.fixture
def vhost(mgmt: Mgmt, uid: str):
    name = f"acc-v-{uid}"
    yield name
    mgmt.delete(f"/api/vhosts/{q(name)}")


def amqp_params(mgmt: Mgmt, vhost: str, user: str, password: str) -> pika.ConnectionParameters:
    url = urllib.parse.urlsplit(mgmt.amqp_url)
    return pika.ConnectionParameters(url.hostname, url.port, vhost, pika.PlainCredentials(user, password),
                                     connection_attempts=1, socket_timeout=5)


# -- users -------------------------------------------------------------------------------------

def test_put_user_creates_then_updates_and_shows_rabbitmq_fields(mgmt: Mgmt, user):
    assert mgmt.put(f"/api/users/{user}", {"password": "pw", "tags": "monitoring, foo"}).status == 201
    shown = mgmt.get(f"/api/users/{user}").json
    assert shown["name"] == user and shown["tags"] == ["monitoring", "foo"] and shown["limits"] == {}
    assert shown["hashing_algorithm"] == SHA256
    raw = base64.b64decode(shown["password_hash"])
    assert len(raw) == 4 + 32 and hashlib.sha256(raw[:4] + b"pw").digest() == raw[4:]
    assert mgmt.put(f"/api/users/{user}", {"password": "pw2", "tags": ["a", " b"]}).status == 204
    assert mgmt.get(f"/api/users/{user}").json["tags"] == ["a", "b"]
    assert user in [u["name"] for u in mgmt.get("/api/users").json]


def test_user_with_imported_hash_logs_in_with_its_password(mgmt: Mgmt, user):
    salt = b"\x01\x02\x03\x04"
    password_hash = base64.b64encode(salt + hashlib.sha256(salt + b"secret").digest()).decode()
    reply = mgmt.put(f"/api/users/{user}", {"password_hash": password_hash, "tags": "management",
                                            "hashing_algorithm": SHA256})
    assert reply.status == 201
    assert mgmt.get(f"/api/users/{user}").json["password_hash"] == password_hash
    assert mgmt.get("/api/whoami", auth=(user, "secret")).json == {"name": user, "tags": ["management"]}
    assert mgmt.get("/api/whoami", auth=(user, "other")).status == 401


def test_sha512_hash_is_kept_with_its_algorithm(mgmt: Mgmt, user):
    salt = b"salt"
    password_hash = base64.b64encode(salt + hashlib.sha512(salt + b"pw").digest()).decode()
    body = {"password_hash": password_hash, "hashing_algorithm": "rabbit_password_hashing_sha512", "tags": "monitoring"}
    assert mgmt.put(f"/api/users/{user}", body).status == 201
    shown = mgmt.get(f"/api/users/{user}").json
    assert (shown["password_hash"], shown["hashing_algorithm"]) == (password_hash, "rabbit_password_hashing_sha512")
    assert mgmt.get("/api/whoami", auth=(user, "pw")).status == 200


def test_user_without_password_cannot_log_in(mgmt: Mgmt, user):
    assert mgmt.put(f"/api/users/{user}", {"tags": "administrator"}).status == 201
    assert mgmt.get("/api/whoami", auth=(user, "")).status == 401
    # an existing user updated without a password loses it
    assert mgmt.put(f"/api/users/{user}", {"password": "pw", "tags": "administrator"}).status == 204
    assert mgmt.get("/api/whoami", auth=(user, "pw")).status == 200
    assert mgmt.put(f"/api/users/{user}", {"tags": "administrator"}).status == 204
    assert mgmt.get(f"/api/users/{user}").json["password_hash"] == ""
    assert mgmt.get("/api/whoami", auth=(user, "pw")).status == 401


def test_administrator_flag_stands_for_tags(mgmt: Mgmt, user):
    assert mgmt.put(f"/api/users/{user}", {"password": "x", "administrator": True}).status == 201
    assert mgmt.get(f"/api/users/{user}").json["tags"] == ["administrator"]
    reply = mgmt.put(f"/api/users/{user}", {"password": "x", "administrator": "maybe"})
    assert (reply.status, reply.json) == (400, bad_request(["not_boolean", "maybe"]))


@pytest.mark.parametrize("body,reason", [
    ({}, "tags_not_present"),
    ({"password": "x"}, "tags_not_present"),
    ({"password": "a", "password_hash": "abc", "tags": ""}, "both_password_and_password_hash_are_provided"),
    ({"password_hash": "abc", "tags": ""}, ["not_base64", "abc"]),
    ({"password_hash": 5, "tags": ""}, ["not_base64", 5]),
])
def test_bad_user_bodies_are_refused_and_store_nothing(mgmt: Mgmt, user, body, reason):
    reply = mgmt.put(f"/api/users/{user}", body)
    assert (reply.status, reply.json) == (400, bad_request(reason))
    assert mgmt.get(f"/api/users/{user}").status == 404


DOUBLY_ENCODED = "invalid payload: the request body JSON-decoded to a string. Is the input doubly-JSON-encoded?"


@pytest.mark.parametrize("raw,reason", [(b"not json", "not_json"), (b"[1]", "not_json"), (b'"text"', DOUBLY_ENCODED)])
def test_user_body_not_json(mgmt: Mgmt, user, raw, reason):
    reply = mgmt.put(f"/api/users/{user}", raw)
    assert (reply.status, reply.json) == (400, bad_request(reason))
    assert mgmt.get(f"/api/users/{user}").status == 404


def test_unknown_user_is_404(mgmt: Mgmt, uid):
    for method in ("GET", "DELETE"):
        reply = mgmt.request(method, f"/api/users/nobody-{uid}")
        assert (reply.status, reply.json) == (404, NOT_FOUND)
    reply = mgmt.get(f"/api/users/nobody-{uid}/permissions")
    assert (reply.status, reply.json) == (404, NOT_FOUND)


def test_delete_user(mgmt: Mgmt, user):
    mgmt.add_user(user, "pw", ("monitoring",))
    assert mgmt.delete(f"/api/users/{user}").status == 204
    assert mgmt.get(f"/api/users/{user}").status == 404
    assert mgmt.get("/api/whoami", auth=(user, "pw")).status == 401


def test_bulk_delete(mgmt: Mgmt, uid):
    names = [f"acc-bulk{i}-{uid}" for i in range(3)]
    for name in names:
        mgmt.add_user(name, "pw", ())
    try:
        assert mgmt.post("/api/users/bulk-delete", {"users": names[:2]}).status == 204
        assert [mgmt.get(f"/api/users/{n}").status for n in names] == [404, 404, 200]
        reply = mgmt.post("/api/users/bulk-delete", {"users": [f"nobody-{uid}"]})
        assert (reply.status, reply.json) == (400, bad_request(["no_such_user", f"nobody-{uid}"]))
        reply = mgmt.post("/api/users/bulk-delete", {})
        assert (reply.status, reply.json) == (400, bad_request("[{key_missing,users}]"))
        reply = mgmt.post("/api/users/bulk-delete", b"nope")
        assert (reply.status, reply.json) == (400, bad_request("not_json"))
        assert mgmt.get("/api/users/bulk-delete").status == 405
        assert mgmt.put("/api/users/without-permissions", {"password": "x", "tags": ""}).status == 405
    finally:
        for name in names:
            mgmt.delete(f"/api/users/{name}")


def test_users_without_permissions(mgmt: Mgmt, user):
    mgmt.add_user(user, "pw", ())
    assert user in [u["name"] for u in mgmt.get("/api/users/without-permissions").json]
    assert mgmt.put(f"/api/permissions/%2F/{user}", {"configure": "", "write": "", "read": ""}).status == 201
    assert user not in [u["name"] for u in mgmt.get("/api/users/without-permissions").json]
    assert "guest" not in [u["name"] for u in mgmt.get("/api/users/without-permissions").json]


def test_user_list_uses_listing_rules(mgmt: Mgmt):
    reply = mgmt.get("/api/users?columns=name")
    assert reply.status == 200
    assert {"name": "guest"} in reply.json and all(set(u) == {"name"} for u in reply.json)


# -- vhosts ------------------------------------------------------------------------------------

def test_put_vhost_creates_with_metadata_and_standard_exchanges(mgmt: Mgmt, vhost):
    body = {"description": "d1", "tags": "a,b", "tracing": True}
    assert mgmt.put(f"/api/vhosts/{vhost}", body).status == 201
    shown = mgmt.get(f"/api/vhosts/{vhost}").json
    assert (shown["name"], shown["description"], shown["tags"], shown["tracing"]) == (vhost, "d1", ["a", "b"], True)
    assert shown["metadata"] == {"description": "d1", "tags": ["a", "b"]}
    assert shown["default_queue_type"] == "undefined"
    names = {x["name"] for x in mgmt.get(f"/api/exchanges/{vhost}").json}
    assert names >= {"", "amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match", "amq.rabbitmq.trace"}
    # the creator gets full permissions on it
    perm = mgmt.get(f"/api/permissions/{vhost}/{mgmt.user}").json
    assert (perm["configure"], perm["write"], perm["read"]) == (".*", ".*", ".*")
    # an update replaces description and tags, keeps tracing unless given
    assert mgmt.put(f"/api/vhosts/{vhost}", {"description": "d2"}).status == 204
    shown = mgmt.get(f"/api/vhosts/{vhost}").json
    assert (shown["description"], shown["tags"], shown["tracing"]) == ("d2", [], True)
    assert mgmt.put(f"/api/vhosts/{vhost}", {"tags": ["x", "y"], "tracing": False}).status == 204
    shown = mgmt.get(f"/api/vhosts/{vhost}").json
    assert (shown["description"], shown["tags"], shown["tracing"]) == ("", ["x", "y"], False)


def test_put_vhost_with_empty_body(mgmt: Mgmt, vhost):
    assert mgmt.put(f"/api/vhosts/{vhost}", b"").status == 201
    assert mgmt.get(f"/api/vhosts/{vhost}").json["description"] == ""


@pytest.mark.parametrize("raw,reason", [
    (b"bad", "not_json"),
    (b"[1]", "not_json"),
    (b'{"tracing": "yes"}', ["not_boolean", "yes"]),
])
def test_bad_vhost_bodies(mgmt: Mgmt, vhost, raw, reason):
    reply = mgmt.put(f"/api/vhosts/{vhost}", raw)
    assert (reply.status, reply.json) == (400, bad_request(reason))
    assert mgmt.get(f"/api/vhosts/{vhost}").status == 404


def test_delete_unknown_vhost_is_404(mgmt: Mgmt, uid):
    reply = mgmt.delete(f"/api/vhosts/nope-{uid}")
    assert (reply.status, reply.json) == (404, NOT_FOUND)


def test_delete_vhost_closes_its_connections_and_removes_everything(mgmt: Mgmt, vhost, user):
    assert mgmt.put(f"/api/vhosts/{vhost}", {}).status == 201
    mgmt.add_user(user, "pw", ())
    assert mgmt.put(f"/api/permissions/{vhost}/{user}", {"configure": ".*", "write": ".*", "read": ".*"}).status == 201
    conn = pika.BlockingConnection(amqp_params(mgmt, vhost, mgmt.user, mgmt.password))
    try:
        ch = conn.channel()
        ch.queue_declare("doomed", durable=True)
        ch.queue_bind("doomed", "amq.topic", "k")
        assert mgmt.delete(f"/api/vhosts/{vhost}").status == 204
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
            for _ in range(50):
                conn.process_data_events(0.1)
        assert info.value.reply_code == 320
        assert info.value.reply_text == f"CONNECTION_FORCED - vhost '{vhost}' is deleted"
    finally:
        if conn.is_open:
            conn.close()
    assert mgmt.get(f"/api/vhosts/{vhost}").status == 404
    assert mgmt.get(f"/api/queues/{vhost}").status == 404
    assert [p for p in mgmt.get("/api/permissions").json if p["vhost"] == vhost] == []
    # re-created, it starts empty
    assert mgmt.put(f"/api/vhosts/{vhost}", {}).status == 201
    assert mgmt.get(f"/api/queues/{vhost}").json == []
    assert mgmt.get(f"/api/permissions/{vhost}/{user}").status == 404


def test_new_vhost_is_usable_over_amqp(mgmt: Mgmt, vhost):
    assert mgmt.put(f"/api/vhosts/{vhost}", {}).status == 201
    conn = pika.BlockingConnection(amqp_params(mgmt, vhost, mgmt.user, mgmt.password))
    try:
        ch = conn.channel()
        ch.queue_declare("q", durable=True)
        ch.basic_publish("", "q", b"hi")
        assert ch.basic_get("q", auto_ack=True)[2] == b"hi"
    finally:
        conn.close()


# -- permissions -------------------------------------------------------------------------------

def test_permissions_put_show_list_delete(mgmt: Mgmt, vhost, user):
    assert mgmt.put(f"/api/vhosts/{vhost}", {}).status == 201
    mgmt.add_user(user, "pw", ())
    path = f"/api/permissions/{vhost}/{user}"
    assert mgmt.put(path, {"configure": "^a", "write": ".*", "read": ""}).status == 201
    assert mgmt.put(path, {"configure": "^b", "write": ".*", "read": ""}).status == 204
    expected = {"user": user, "vhost": vhost, "configure": "^b", "write": ".*", "read": ""}
    assert mgmt.get(path).json == expected
    assert mgmt.get(f"/api/users/{user}/permissions").json == [expected]
    assert expected in mgmt.get(f"/api/vhosts/{vhost}/permissions").json
    assert expected in mgmt.get("/api/permissions").json
    assert mgmt.get(f"/api/users/{user}/topic-permissions").json == []
    assert mgmt.get(f"/api/vhosts/{vhost}/topic-permissions").json == []
    assert mgmt.delete(path).status == 204
    assert (mgmt.get(path).status, mgmt.delete(path).status) == (404, 404)
    # deleting the user takes its permissions along
    assert mgmt.put(path, {"configure": "", "write": "", "read": ""}).status == 201
    assert mgmt.delete(f"/api/users/{user}").status == 204
    mgmt.add_user(user, "pw", ())
    assert mgmt.get(path).status == 404


def test_bad_permissions_are_refused(mgmt: Mgmt, vhost, user, uid):
    assert mgmt.put(f"/api/vhosts/{vhost}", {}).status == 201
    mgmt.add_user(user, "pw", ())
    path = f"/api/permissions/{vhost}/{user}"
    full = {"configure": "", "write": "", "read": ""}
    for other in (f"/api/permissions/nope-{uid}/{user}", f"/api/permissions/{vhost}/nobody-{uid}"):
        reply = mgmt.put(other, full)
        assert (reply.status, reply.json) == (400, bad_request("vhost_or_user_not_found"))
    reply = mgmt.put(path, {"configure": "("})
    assert (reply.status, reply.json) == (400, bad_request("[{key_missing,write},{key_missing,read}]"))
    reply = mgmt.put(path, b"bad")
    assert (reply.status, reply.json) == (400, bad_request("not_json"))
    reply = mgmt.put(path, {"configure": "(", "write": "", "read": ""})
    assert reply.status == 400
    assert reply.json["reason"][:2] == ["invalid_regexp", [40]]
    assert reply.json["reason"][2] == [[ord(c) for c in "missing )"], 1]
    assert mgmt.get(path).status == 404
    reply = mgmt.get(f"/api/vhosts/nope-{uid}/permissions")
    assert (reply.status, reply.json) == (404, NOT_FOUND)
