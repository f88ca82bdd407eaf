"""Definitions export and import (/api/definitions, /api/definitions/{vhost}).

tests/data/rabbitmq-3.10-definitions.json is a real export of RabbitMQ 3.10.8 (GET
/api/definitions after creating users, a vhost, permissions, a policy, exchanges, queues and
bindings through its API), trimmed to those objects; -vhost.json is the same vhost's
GET /api/definitions/{vhost}. Importing them into our broker must give users that log in with
their RabbitMQ passwords and queues that routes reach. The round trips against a live
RabbitMQ run when MGMT_REFERENCE_URL is set.
"""
from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

import pika
import pytest

from helpers.broker import BrokerThread
from helpers.mgmt import MGMT_REFERENCE_URL, Mgmt

DATA = Path(__file__).parent / "data"
FIXTURE = json.loads((DATA / "rabbitmq-3.10-definitions.json").read_text())
VHOST_FIXTURE = json.loads((DATA / "rabbitmq-3.10-definitions-vhost.json").read_text())
FIXTURE_VHOST = "defs-fixture-vh"
needs_reference = pytest.mark.skipif(not MGMT_REFERENCE_URL,
                                     reason="needs the reference RabbitMQ (MGMT_REFERENCE_URL)")


def bad_request(reason) -> dict:
    return {"error": "bad_request", "reason": reason}


@pytest.fixture
def own():
    """A broker of our own with its management API, for imports that change users."""
    with BrokerThread(mgmt_port=0) as bt:
        yield Mgmt(bt.broker.mgmt_url, bt.url, bt)


def connect(mgmt: Mgmt, vhost: str, user: str, password: str) -> pika.BlockingConnection:
    url = urllib.parse.urlsplit(mgmt.amqp_url)
    return pika.BlockingConnection(pika.ConnectionParameters(
        url.hostname, url.port, vhost, pika.PlainCredentials(user, password), connection_attempts=1))


def ready(ch, queue: str) -> int:
    return ch.queue_declare(queue, passive=True).method.message_count


def keyed(items: list[dict], *keys: str) -> dict:
    return {tuple(item[k] for k in keys): item for item in items}


# -- the RabbitMQ export imported into ours ------------------------------------------------------

def test_rabbitmq_export_imports_into_ours(own: Mgmt):
    assert own.post("/api/definitions", FIXTURE).status == 204

    # users log in with the passwords they had on RabbitMQ (stored as RabbitMQ's hashes)
    assert own.get("/api/whoami", auth=("defs-admin", "admin-pw")).json["tags"] == ["administrator", "management"]
    conn = connect(own, FIXTURE_VHOST, "defs-alice", "alice-pw")
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("orders", "eu.paris", b"order")  # orders.eu, and via audit to audit.log
        ch.basic_publish("orders", "us.nyc", b"order")  # only audit.log
        assert ready(ch, "orders.eu") == 1
        assert ready(ch, "audit.log") == 2
    finally:
        conn.close()
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect(own, FIXTURE_VHOST, "defs-bob", "wrong")

    shown = own.get(f"/api/vhosts/{FIXTURE_VHOST}")
    assert shown.status == 200
    assert own.get(f"/api/queues/{FIXTURE_VHOST}/ttl.q").json["policy"] == "ttl"
    assert own.get(f"/api/queues/{FIXTURE_VHOST}/orders.eu").json["arguments"] == {"x-max-length": 100}

    # what we export holds what was imported, in the same shape
    exported = own.get("/api/definitions").json
    assert {"rabbit_version", "rabbitmq_version", "product_name", "product_version"} <= set(exported)
    for section, keys in (("users", ("name",)), ("permissions", ("vhost", "user")), ("policies", ("vhost", "name")),
                          ("queues", ("vhost", "name")), ("exchanges", ("vhost", "name")),
                          ("bindings", ("vhost", "source", "destination", "routing_key"))):
        ours = keyed(exported[section], *keys)
        for key, item in keyed(FIXTURE[section], *keys).items():
            assert ours.get(key) == item, (section, key)
    assert {"name": FIXTURE_VHOST} in exported["vhosts"]
    assert exported["topic_permissions"] == [] and exported["parameters"] == []


def test_imported_definitions_survive_a_restart(tmp_path):
    with BrokerThread(mgmt_port=0, data_dir=tmp_path) as bt:
        assert Mgmt(bt.broker.mgmt_url, bt.url, bt).post("/api/definitions", FIXTURE).status == 204
    with BrokerThread(mgmt_port=0, data_dir=tmp_path) as bt:
        again = Mgmt(bt.broker.mgmt_url, bt.url, bt)
        exported = again.get("/api/definitions").json
        for section, keys in (("users", ("name",)), ("permissions", ("vhost", "user")),
                              ("queues", ("vhost", "name")), ("bindings", ("vhost", "source", "destination"))):
            assert keyed(FIXTURE[section], *keys).keys() <= keyed(exported[section], *keys).keys(), section
        conn = connect(again, FIXTURE_VHOST, "defs-bob", "bob-pw")
        conn.close()


def test_vhost_export_imports_into_another_vhost(own: Mgmt, uid):
    target = f"defs-copy-{uid}"
    assert own.put(f"/api/vhosts/{target}", {}).status == 201
    assert own.post(f"/api/definitions/{target}", VHOST_FIXTURE).status == 204
    exported = own.get(f"/api/definitions/{target}").json
    assert set(exported) == {"rabbit_version", "parameters", "policies", "queues", "exchanges", "bindings"}
    assert sorted(q["name"] for q in exported["queues"]) == ["audit.log", "orders.eu", "ttl.q"]
    assert all("vhost" not in q for q in exported["queues"])
    assert [p["vhost"] for p in exported["policies"]] == [target]
    assert len(exported["bindings"]) == 3


def test_multipart_upload_as_the_management_ui_sends_it(own: Mgmt, uid):
    boundary = "defs-boundary"
    doc = json.dumps({"vhosts": [{"name": f"defs-up-{uid}"}]})
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"defs.json\"\r\n"
            f"Content-Type: application/json\r\n\r\n{doc}\r\n--{boundary}--\r\n").encode()
    req = urllib.request.Request(own.base + "/api/definitions", data=body, method="POST")
    req.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    req.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 204
    assert own.get(f"/api/vhosts/defs-up-{uid}").status == 200


def test_download_header(mgmt: Mgmt):
    reply = mgmt.get("/api/definitions?download=defs.json")
    assert reply.status == 200
    assert reply.headers["content-disposition"] == "attachment; filename=defs.json"


# -- refused imports -------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"not json", b"[1]"])
def test_import_of_non_json_is_refused(mgmt: Mgmt, raw):
    reply = mgmt.post("/api/definitions", raw)
    assert (reply.status, reply.json) == (400, bad_request("failed_to_parse_json"))


def test_import_naming_an_unknown_vhost_is_refused_as_a_whole(mgmt: Mgmt, uid):
    doc = {"users": [{"name": f"defs-none-{uid}", "password": "x", "tags": ""}],
           "queues": [{"name": "q", "vhost": f"nope-{uid}", "durable": True, "auto_delete": False, "arguments": {}}]}
    reply = mgmt.post("/api/definitions", doc)
    assert (reply.status, reply.json) == (400, bad_request(["no_such_vhost", f"nope-{uid}"]))
    mgmt.delete(f"/api/users/defs-none-{uid}")  # RabbitMQ applies the users first
    if mgmt.own is not None:  # ours checks the whole document before applying any of it
        assert mgmt.get(f"/api/users/defs-none-{uid}").status == 404


def test_import_with_unknown_exchange_type_is_refused(own: Mgmt, uid):
    doc = {"vhosts": [{"name": f"defs-bad-{uid}"}],
           "exchanges": [{"name": "x", "vhost": f"defs-bad-{uid}", "type": "no-such-type", "durable": True,
                          "auto_delete": False, "internal": False, "arguments": {}}]}
    reply = own.post("/api/definitions", doc)
    assert reply.status == 400
    assert own.get(f"/api/vhosts/defs-bad-{uid}").status == 404  # nothing applied


def test_import_of_user_without_tags_is_refused(mgmt: Mgmt, uid):
    reply = mgmt.post("/api/definitions", {"users": [{"name": f"defs-nt-{uid}"}]})
    assert (reply.status, reply.json) == (400, bad_request("tags_not_present"))
    assert mgmt.get(f"/api/users/defs-nt-{uid}").status == 404


def test_binding_with_missing_ends_is_skipped(mgmt: Mgmt, uid):
    doc = {"bindings": [{"source": f"nox-{uid}", "vhost": "/", "destination": f"noq-{uid}",
                         "destination_type": "queue", "routing_key": "k", "arguments": {}}]}
    assert mgmt.post("/api/definitions", doc).status == 204


def test_vhost_definitions_of_unknown_vhost(mgmt: Mgmt, uid):
    reply = mgmt.get(f"/api/definitions/nope-{uid}")
    assert (reply.status, reply.json) == (400, bad_request("vhost_not_found"))
    reply = mgmt.post(f"/api/definitions/nope-{uid}", {})
    assert (reply.status, reply.json) == (404, {"error": "not_found", "reason": "vhost_not_found"})


# -- live round trips with the reference ---------------------------------------------------------

def _create_sample(target: Mgmt, uid: str) -> tuple[str, str]:
    vhost, user = f"rt-v-{uid}", f"rt-u-{uid}"
    assert target.put(f"/api/vhosts/{vhost}", {"description": "round trip"}).status == 201
    assert target.put(f"/api/users/{user}", {"password": "rt-pw", "tags": "monitoring"}).status == 201
    assert target.put(f"/api/permissions/{vhost}/{user}", {"configure": ".*", "write": ".*", "read": ".*"}).status == 201
    assert target.put(f"/api/queues/{vhost}/rt.q", {"durable": True, "arguments": {"x-max-length": 5}}).status == 201
    conn = connect(target, vhost, target.user, target.password)
    try:
        ch = conn.channel()
        ch.exchange_declare("rt.x", "topic", durable=True)
        ch.queue_bind("rt.q", "rt.x", "rt.#")
    finally:
        conn.close()
    if target.own is None:
        body = {"pattern": "^rt\\.", "definition": {"max-length": 10}, "apply-to": "queues", "priority": 0}
        assert target.put(f"/api/policies/{vhost}/rt-policy", body).status in (201, 204)
    else:  # the broker's policy API (the /api/policies endpoints are not part of this module)
        policies = target.own.broker.policies

        async def set_policy():
            policies.set(vhost, "rt-policy", "^rt\\.", {"max-length": 10}, 0, "queues")

        target.own.call(set_policy)
    return vhost, user


def _only(doc: dict, vhost: str, user: str) -> dict:
    """The parts of a full export that belong to the sample."""
    out = {key: doc[key] for key in ("rabbit_version", "rabbitmq_version", "product_name", "product_version")}
    out["users"] = [u for u in doc["users"] if u["name"] == user]
    out["vhosts"] = [v for v in doc["vhosts"] if v["name"] == vhost]
    out["permissions"] = [p for p in doc["permissions"] if p["vhost"] == vhost and p["user"] == user]
    for key in ("policies", "queues", "exchanges", "bindings"):
        out[key] = [o for o in doc[key] if o["vhost"] == vhost]
    return out


def _check_sample(target: Mgmt, vhost: str, user: str) -> None:
    conn = connect(target, vhost, user, "rt-pw")
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.basic_publish("rt.x", "rt.one", b"m")
        assert ready(ch, "rt.q") == 1
    finally:
        conn.close()
    policies = target.get(f"/api/definitions/{urllib.parse.quote(vhost, safe='')}").json["policies"]
    assert [(p["name"], p["definition"]) for p in policies] == [("rt-policy", {"max-length": 10})]


def _cleanup(target: Mgmt, vhost: str, user: str) -> None:
    target.delete(f"/api/vhosts/{vhost}")
    target.delete(f"/api/users/{user}")


@needs_reference
def test_round_trip_ours_to_reference(own: Mgmt, mgmt: Mgmt, uid):
    vhost, user = _create_sample(own, uid)
    doc = _only(own.get("/api/definitions").json, vhost, user)
    try:
        assert mgmt.post("/api/definitions", doc).status == 204
        # RabbitMQ does not grant the importer anything: the sample's user has its permissions
        _check_sample(mgmt, vhost, user)
    finally:
        _cleanup(mgmt, vhost, user)


@needs_reference
def test_round_trip_reference_to_ours(own: Mgmt, mgmt: Mgmt, uid):
    try:
        vhost, user = _create_sample(mgmt, uid)
        doc = _only(mgmt.get("/api/definitions").json, vhost, user)
    finally:
        _cleanup(mgmt, f"rt-v-{uid}", f"rt-u-{uid}")
    assert own.post("/api/definitions", doc).status == 204
    _check_sample(own, vhost, user)
