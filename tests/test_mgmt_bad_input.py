"""Bad input to the management API's write endpoints, across all of them: a body that is not
JSON or not a JSON object, an unknown vhost, a queue name over 255 bytes. Each gets RabbitMQ
3.10's status and body, and nothing is stored. Runs against ours and, with MGMT_REFERENCE_URL,
against RabbitMQ's own API, so every expected answer here is the reference's.

(Endpoint-specific checks - wrong field types, missing keys, bad regexes, unknown ackmodes -
are in the endpoint's own test module.)
"""
from __future__ import annotations

import pytest

from helpers.mgmt import Mgmt

NOT_JSON = {"error": "bad_request", "reason": "not_json"}
VHOST_NOT_FOUND = {"error": "not_found", "reason": "vhost_not_found"}

# (method, path template, where to look afterwards that nothing was stored or None)
WRITES = [
    ("PUT", "/api/queues/%2F/{name}", "/api/queues/%2F/{name}"),
    ("PUT", "/api/exchanges/%2F/{name}", "/api/exchanges/%2F/{name}"),
    ("PUT", "/api/vhosts/{name}", "/api/vhosts/{name}"),
    ("PUT", "/api/users/{name}", "/api/users/{name}"),
    ("PUT", "/api/permissions/%2F/guest", None),
    ("PUT", "/api/policies/%2F/{name}", "/api/policies/%2F/{name}"),
    ("POST", "/api/exchanges/%2F/amq.direct/publish", None),
    ("POST", "/api/queues/%2F/{name}/get", None),
    ("POST", "/api/users/bulk-delete", None),
]


@pytest.mark.parametrize("body", [b"{bad", b"[1]", b'"text"[', b"NaN"], ids=["broken", "array", "garbage", "nan"])
@pytest.mark.parametrize(("method", "path", "stored"), WRITES, ids=[f"{m} {p}" for m, p, _s in WRITES])
def test_a_body_that_is_no_json_object_is_not_json(mgmt: Mgmt, uid, method, path, stored, body):
    name = f"bad-input-{uid}"
    reply = mgmt.request(method, path.format(name=name), body)
    assert (reply.status, reply.json) == (400, NOT_JSON)
    if stored is not None:
        assert mgmt.get(stored.format(name=name)).status == 404


QUEUE_BODY = {}
EXCHANGE_BODY = {"type": "direct"}
POLICY_BODY = {"pattern": "^x", "definition": {"max-length": 1}}
BINDING_BODY = {"routing_key": "k"}


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PUT", "/api/queues/{vhost}/q", QUEUE_BODY),
    ("PUT", "/api/exchanges/{vhost}/x", EXCHANGE_BODY),
    ("PUT", "/api/policies/{vhost}/p", POLICY_BODY),
    ("POST", "/api/bindings/{vhost}/e/amq.direct/q/q", BINDING_BODY),
])
def test_writes_into_an_unknown_vhost_are_404_vhost_not_found(mgmt: Mgmt, uid, method, path, body):
    vhost = f"no-such-vhost-{uid}"
    reply = mgmt.request(method, path.format(vhost=vhost), body)
    assert (reply.status, reply.json) == (404, VHOST_NOT_FOUND)
    assert mgmt.get(f"/api/vhosts/{vhost}").status == 404


@pytest.mark.parametrize("body", [{"configure": "", "write": "", "read": ""}, b"{bad"], ids=["valid", "broken"])
@pytest.mark.parametrize("path", ["no-such-vhost-{uid}/guest", "%2F/no-such-user-{uid}"])
def test_permissions_of_an_unknown_vhost_or_user(mgmt: Mgmt, uid, path, body):
    """The path is checked before the body."""
    reply = mgmt.request("PUT", f"/api/permissions/{path.format(uid=uid)}", body)
    assert (reply.status, reply.json) == (400, {"error": "bad_request", "reason": "vhost_or_user_not_found"})


@pytest.mark.parametrize("path", ["/api/queues/no-such-vhost-{uid}/q", "/api/queues/no-such-vhost-{uid}/q/contents"])
def test_deletes_in_an_unknown_vhost_are_not_found(mgmt: Mgmt, uid, path):
    reply = mgmt.delete(path.format(uid=uid))
    assert (reply.status, reply.json) == (404, {"error": "Object Not Found", "reason": "Not Found"})


def test_a_queue_name_over_255_bytes(mgmt: Mgmt):
    name = "q" * 256
    reply = mgmt.put(f"/api/queues/%2F/{name}", {})
    assert (reply.status, reply.json) == (
        400, {"error": "bad_request", "reason": "queue should be less than 255 bytes, actually was 256\n"})
    assert mgmt.get(f"/api/queues/%2F/{name}").status == 404
