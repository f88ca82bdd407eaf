"""/api/policies over real HTTP, against our broker or a real RabbitMQ's (helpers.mgmt): the
statuses, the objects, and the 400 bodies of invalid policies, which are RabbitMQ 3.10's
(HTML-escaped, one failing field a line, missing keys as an Erlang term)."""
from __future__ import annotations

import pika
import pytest

from helpers.mgmt import Mgmt, polled

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}


@pytest.fixture
def policy(mgmt: Mgmt, uid: str):
    name = f"mgmt-pol-{uid}"
    yield name
    mgmt.delete(f"/api/policies/%2F/{name}")


def nomatch(uid: str) -> str:
    """A pattern no queue or exchange of any other test matches."""
    return f"^mgmt-nomatch-{uid}$"


def test_put_get_list_delete(mgmt: Mgmt, policy: str, uid: str):
    body = {"pattern": nomatch(uid), "definition": {"max-length": 5}, "priority": 1, "apply-to": "queues"}
    assert mgmt.put(f"/api/policies/%2F/{policy}", body).status == 201
    assert mgmt.put(f"/api/policies/%2F/{policy}", body).status == 204  # replaced
    expected = {"vhost": "/", "name": policy, "pattern": nomatch(uid), "apply-to": "queues",
                "definition": {"max-length": 5}, "priority": 1}
    reply = mgmt.get(f"/api/policies/%2F/{policy}")
    assert reply.status == 200
    assert reply.json == expected
    assert expected in mgmt.get("/api/policies").json
    assert expected in mgmt.get("/api/policies/%2F").json
    assert mgmt.delete(f"/api/policies/%2F/{policy}").status == 204
    assert mgmt.get(f"/api/policies/%2F/{policy}").json == NOT_FOUND
    reply = mgmt.delete(f"/api/policies/%2F/{policy}")
    assert reply.status == 404
    assert reply.json == NOT_FOUND


def test_defaults_and_ignored_keys(mgmt: Mgmt, policy: str, uid: str):
    body = {"pattern": nomatch(uid), "definition": {"message-ttl": 100}, "extra": 1}
    assert mgmt.put(f"/api/policies/%2F/{policy}", body).status == 201
    assert mgmt.get(f"/api/policies/%2F/{policy}").json == {
        "vhost": "/", "name": policy, "pattern": nomatch(uid), "apply-to": "all",
        "definition": {"message-ttl": 100}, "priority": 0,
    }


def test_unknown_vhost(mgmt: Mgmt, policy: str, uid: str):
    reply = mgmt.put(f"/api/policies/no-such-vhost/{policy}", {"pattern": "x", "definition": {"max-length": 1}})
    assert reply.status == 404
    assert reply.json == {"error": "not_found", "reason": "vhost_not_found"}
    assert mgmt.get("/api/policies/no-such-vhost").json == NOT_FOUND
    assert mgmt.get(f"/api/policies/no-such-vhost/{policy}").json == NOT_FOUND


def validation(*lines: str) -> str:
    return "Validation failed\n\n" + "".join(line + "\n" for line in lines)


@pytest.mark.parametrize("body,reason", [
    ({"pattern": "x", "definition": {"bogus": 5}},
     validation("[{&lt;&lt;\"bogus\"&gt;&gt;,5}] are not recognised policy settings")),
    ({"pattern": "x", "definition": {"max-length": 5}, "apply-to": "bad"},
     validation("apply-to 'bad' unrecognised; should be 'queues', 'exchanges' or 'all'")),
    ({"pattern": "x", "definition": {"max-length": 5}, "apply-to": "classic_queues"},
     validation("apply-to 'classic_queues' unrecognised; should be 'queues', 'exchanges' or 'all'")),
    ({"definition": {"max-length": 5}}, "[{key_missing,pattern}]"),
    ({"pattern": "x"}, "[{key_missing,definition}]"),
    ({}, "[{key_missing,pattern},{key_missing,definition}]"),
    ({"pattern": "x", "definition": {}}, validation("no policy provided")),
    ({"pattern": "x", "definition": {"max-length": "a"}},
     validation("&lt;&lt;\"a\"&gt;&gt; is not a valid maximum length")),
    ({"pattern": "x", "definition": {"queue-mode": "<a&b>"}},
     validation("&lt;&lt;\"&lt;a&amp;b&gt;\"&gt;&gt; is not a valid queue-mode value")),
    ({"pattern": "x", "definition": {"max-length": 5}, "priority": "3"},
     validation("priority should be a number, actually was &lt;&lt;\"3\"&gt;&gt;")),
    ({"pattern": 5, "definition": {"max-length": 5}}, validation("pattern should be a binary but was 5")),
    ({"pattern": "x", "definition": {"max-length": 5}, "apply-to": None, "priority": None},
     validation("apply-to 'null' unrecognised; should be 'queues', 'exchanges' or 'all'",
                "priority should be a number, actually was null")),
    ({"pattern": 5, "definition": {"bogus": 1, "max-length": "a"}, "apply-to": "bad", "priority": "x"},
     validation("&lt;&lt;\"a\"&gt;&gt; is not a valid maximum length",
                "apply-to 'bad' unrecognised; should be 'queues', 'exchanges' or 'all'",
                "pattern should be a binary but was 5",
                "priority should be a number, actually was &lt;&lt;\"x\"&gt;&gt;")),
    (b"not json", "not_json"),
    ([1], "not_json"),
])
def test_invalid_policy_is_a_400_and_not_stored(mgmt: Mgmt, policy: str, body, reason: str):
    reply = mgmt.put(f"/api/policies/%2F/{policy}", body)
    assert reply.status == 400
    assert reply.json == {"error": "bad_request", "reason": reason}
    assert mgmt.get(f"/api/policies/%2F/{policy}").status == 404


def test_invalid_pattern(mgmt: Mgmt, policy: str):
    # the regular expression engines differ (PCRE there, Python's re here): same shape and
    # prefix, the engine's own message
    reply = mgmt.put(f"/api/policies/%2F/{policy}", {"pattern": "(", "definition": {"max-length": 5}})
    assert reply.status == 400
    assert reply.json["reason"].startswith(
        "Validation failed\n\npattern should be regular expression but is invalid: {\"missing )")


def test_float_priority_is_accepted(mgmt: Mgmt, policy: str, uid: str):
    body = {"pattern": nomatch(uid), "definition": {"max-length": 5}, "priority": 1.5}
    assert mgmt.put(f"/api/policies/%2F/{policy}", body).status == 201
    assert mgmt.get(f"/api/policies/%2F/{policy}").json["priority"] == 1.5


def test_policy_shows_on_the_queue(mgmt: Mgmt, policy: str, uid: str):
    queue = f"mgmt-polq-{uid}"
    conn = pika.BlockingConnection(pika.URLParameters(mgmt.amqp_url))
    try:
        conn.channel().queue_declare(queue, auto_delete=True)
        body = {"pattern": f"^{queue}$", "definition": {"max-length": 5, "message-ttl": 1000},
                "apply-to": "queues"}
        assert mgmt.put(f"/api/policies/%2F/{policy}", body).status == 201
        item = polled(mgmt, f"/api/queues/%2F/{queue}", lambda q: q.get("policy") == policy)
        assert item["effective_policy_definition"] == {"max-length": 5, "message-ttl": 1000}
        assert item["operator_policy"] is None
    finally:
        conn.close()
