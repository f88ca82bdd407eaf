"""Policies (reference doc §3 "Policy vs argument", §5 "Policies"), as RabbitMQ 3.10 applies them.

On the reference broker policies are set with the management HTTP API
(PUT/DELETE /api/policies/%2F/{name}); on our broker with the in-process API
`broker.policies.set(vhost, name, pattern, definition, priority=0, apply_to="all")` /
`broker.policies.delete(vhost, name)`, run on the broker's loop. The `set_policy` fixture hides
the difference and deletes every policy it created at teardown. The reference is shared: policy
names carry the uid and every pattern matches only this test's uid-named objects.

Facts recorded from RabbitMQ 3.10.8 that the reference doc does not spell out:
- A max-length policy applied to an existing queue trims it at once (drop-head, oldest first,
  dead-lettered with reason maxlen when the queue has a DLX).
- A message-ttl policy does NOT expire messages already in the queue (their expiry was fixed
  when they were enqueued); it applies to messages published afterwards. Deleting the policy
  later does not un-expire the messages published while it was in force.
- A dead-letter-routing-key policy without a DLX is accepted (unlike the queue argument).
- In 3.10 `apply-to` accepts only 'queues', 'exchanges' or 'all'.
- The argument DLX and a policy's dead-letter-routing-key combine (each key is resolved
  separately: argument first, then policy).
- HTTP 400 reasons (JSON "reason", HTML-escaped by the management plugin) are recorded in
  INVALID_DEFINITIONS below.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request

import pika
import pika.exceptions
import pytest

from helpers.typed import raw_get
from helpers.broker import REFERENCE
from helpers.dlx import Env, assert_entry, xdeath_entries
from helpers.dlx import env  # noqa: F401 - pytest fixture
from helpers.wait import HANG_GUARD, wait_until

pytestmark = pytest.mark.timeout(60)

MGMT_URL = os.environ.get("AMQP_REFERENCE_MGMT_URL", "http://127.0.0.1:15673")
MGMT_AUTH = "Basic " + base64.b64encode(b"guest:guest").decode()


class PolicyRejected(Exception):
    """The server refused a policy: HTTP status and reason (reference) or ValueError (ours)."""

    def __init__(self, status: int | None, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


def _http(method: str, path: str, body: dict | None = None) -> tuple[int, str]:
    req = urllib.request.Request(
        MGMT_URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": MGMT_AUTH, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Policies:
    """set / delete policies on the server under test; deletes leftovers at close()."""

    def __init__(self, own_broker=None):
        self.own = own_broker
        self.names: list[str] = []

    def _own_call(self, fn, *args, **kw):
        async def run():
            return fn(*args, **kw)

        return asyncio.run_coroutine_threadsafe(run(), self.own.loop).result(10)

    def __call__(self, name: str, pattern: str, definition: dict, priority: int = 0,
                 apply_to: str = "all") -> None:
        if REFERENCE:
            status, body = _http(
                "PUT", f"/api/policies/%2F/{urllib.parse.quote(name, safe='')}",
                {"pattern": pattern, "definition": definition, "priority": priority,
                 "apply-to": apply_to})
            if status not in (201, 204):
                raise PolicyRejected(status, json.loads(body).get("reason", body))
        else:
            try:
                self._own_call(self.own.broker.policies.set, "/", name, pattern, definition,
                               priority=priority, apply_to=apply_to)
            except ValueError as exc:
                raise PolicyRejected(None, str(exc)) from exc
        if name not in self.names:
            self.names.append(name)

    def delete(self, name: str) -> None:
        if REFERENCE:
            status, body = _http("DELETE",
                                 f"/api/policies/%2F/{urllib.parse.quote(name, safe='')}")
            assert status in (204, 404), (status, body)
        else:
            self._own_call(self.own.broker.policies.delete, "/", name)
        if name in self.names:
            self.names.remove(name)

    def close(self) -> None:
        for name in list(self.names):
            try:
                self.delete(name)
            except Exception:
                pass


@pytest.fixture
def set_policy(request):
    """set_policy(name, pattern, definition, priority=0, apply_to="all"); .delete(name)."""
    own = None if REFERENCE else request.getfixturevalue("own_broker")
    pol = Policies(own)
    yield pol
    pol.close()


def pq(env: Env, uid: str, suffix: str, args: dict | None = None, **kw) -> str:
    """Declare queue `pol-{uid}-{suffix}` (matched by the `^pol-{uid}` patterns)."""
    return env.queue(f"pol-{uid}-{suffix}", args, exact=True, **kw)


def px(env: Env, uid: str, suffix: str, type: str = "fanout", **kw) -> str:
    """Declare exchange `pol-{uid}-{suffix}`."""
    return env.exchange(f"pol-{uid}-{suffix}", type, exact=True, **kw)


def pname(uid: str, tag: str = "p") -> str:
    return f"{tag}-{uid}"


def settle() -> None:
    """Policy changes reach queue processes asynchronously on RabbitMQ; give them a moment."""
    time.sleep(0.15)


# ============================================================================================
# each definition key


def test_policy_message_ttl_and_dead_letter_exchange(env, set_policy, uid):
    dlx, dlq = env.dlx_pair()
    set_policy(pname(uid), f"^pol-{uid}", {"message-ttl": 100, "dead-letter-exchange": dlx})
    q = pq(env, uid, "ttl")
    env.publish("", q, b"t")
    msg = raw_get(env.url, dlq, wait=HANG_GUARD)
    assert msg.body == b"t"
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange="", routing_keys=[q])
    assert env.count(q) == 0


def test_policy_message_ttl_applies_to_new_messages_only(env, set_policy, uid):
    q = pq(env, uid, "ttlold")
    for body in [b"old1", b"old2"]:
        env.publish("", q, body)
    set_policy(pname(uid), f"^pol-{uid}", {"message-ttl": 100})
    settle()
    time.sleep(0.3)
    assert env.count(q) == 2
    assert env.bodies(q) == [b"old1", b"old2"]
    env.publish("", q, b"new")
    assert wait_until(lambda: env.count(q) == 0)
    assert env.get(q)[0] is None


def test_policy_message_ttl_sticks_to_messages_after_policy_deletion(env, set_policy, uid):
    q = pq(env, uid, "ttlsticky")
    set_policy(pname(uid), f"^pol-{uid}", {"message-ttl": 300})
    settle()
    env.publish("", q, b"during")
    set_policy.delete(pname(uid))
    settle()
    env.publish("", q, b"after")
    time.sleep(0.5)
    assert env.bodies(q) == [b"after"]


def test_policy_expires(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}", {"expires": 300})
    q = pq(env, uid, "exp")
    time.sleep(0.8)
    assert not env.exists(q)


def test_policy_expires_on_existing_queue(env, set_policy, uid):
    q = pq(env, uid, "exp2")
    set_policy(pname(uid), f"^pol-{uid}", {"expires": 300})
    time.sleep(0.9)
    assert not env.exists(q)


def test_policy_dead_letter_exchange_and_routing_key(env, set_policy, uid):
    dlx = px(env, uid, "dlx", "direct")
    target = pq(env, uid, "target")
    env.bind(target, dlx, "routed")
    set_policy(pname(uid), f"^pol-{uid}-src$",
               {"dead-letter-exchange": dlx, "dead-letter-routing-key": "routed"})
    q = f"pol-{uid}-src"
    env.ch.queue_declare(q)
    env.queues.append(q)
    env.publish("", q, b"d")
    m, _p, _b = env.get(q, auto_ack=False)
    env.ch.basic_reject(m.delivery_tag, requeue=False)
    msg = raw_get(env.url, target, wait=HANG_GUARD)
    assert msg.method.routing_key == "routed"
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="rejected", queue=q, exchange="", routing_keys=[q])


def test_policy_dead_letter_routing_key_without_dlx_is_accepted(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}", {"dead-letter-routing-key": "k"})
    q = pq(env, uid, "rkonly")
    env.publish("", q, b"x")
    m, _p, _b = env.get(q, auto_ack=False)
    env.ch.basic_reject(m.delivery_tag, requeue=False)
    assert wait_until(lambda: env.count(q) == 0)  # dropped (the reject has no reply to wait for)


def test_policy_max_length(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": 2})
    q = pq(env, uid, "ml")
    for body in [b"1", b"2", b"3"]:
        env.publish("", q, body)
    assert env.bodies(q) == [b"2", b"3"]


def test_policy_max_length_trims_existing_queue_at_once(env, set_policy, uid):
    dlx, dlq = env.dlx_pair()
    q = pq(env, uid, "trim", {"x-dead-letter-exchange": dlx})
    for i in range(10):
        env.publish("", q, str(i).encode())
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": 3})
    assert env.wait_count(q, 3) == 3
    assert env.wait_count(dlq, 7) == 7
    msg = raw_get(env.url, dlq)
    assert msg.body == b"0"
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="maxlen", queue=q, exchange="", routing_keys=[q])
    assert env.bodies(q) == [b"7", b"8", b"9"]


def test_policy_max_length_on_existing_queue_ignores_expired_messages(env, set_policy, uid):
    """Messages that already expired (dead-lettered at the head) are not counted when a
    length limit arrives with a policy: the live ones fit, nothing more is trimmed."""
    dlx, dlq = env.dlx_pair()
    q = pq(env, uid, "trim-expired", {"x-message-ttl": 60000, "x-dead-letter-exchange": dlx})
    for _ in range(2):
        env.publish("", q, b"dies", expiration="300")
    assert env.wait_count(dlq, 2) == 2
    for body in (b"a", b"b"):
        env.publish("", q, body)
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": 2})
    settle()
    assert env.count(q) == 2
    assert env.count(dlq) == 2
    assert env.bodies(q) == [b"a", b"b"]


def test_policy_max_length_bytes(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}", {"max-length-bytes": 25})
    q = pq(env, uid, "mlb")
    for i in range(3):
        env.publish("", q, b"%010d" % i)
    assert env.bodies(q) == [b"0000000001", b"0000000002"]


def test_policy_max_length_bytes_trims_existing_queue(env, set_policy, uid):
    q = pq(env, uid, "mlb2")
    for i in range(5):
        env.publish("", q, b"%010d" % i)
    set_policy(pname(uid), f"^pol-{uid}", {"max-length-bytes": 20})
    assert env.wait_count(q, 2) == 2
    assert env.bodies(q) == [b"0000000003", b"0000000004"]


def test_policy_overflow_reject_publish(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": 1, "overflow": "reject-publish"})
    q = pq(env, uid, "rp")
    env.publish("", q, b"1")
    with pytest.raises(pika.exceptions.NackError):
        env.publish("", q, b"2")
    assert env.bodies(q) == [b"1"]


def test_policy_overflow_reject_publish_dlx(env, set_policy, uid):
    dlx, dlq = env.dlx_pair()
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": 1, "overflow": "reject-publish-dlx",
                                           "dead-letter-exchange": dlx})
    q = pq(env, uid, "rpdlx")
    env.publish("", q, b"1")
    with pytest.raises(pika.exceptions.NackError):
        env.publish("", q, b"2")
    msg = raw_get(env.url, dlq, wait=HANG_GUARD)
    assert msg.body == b"2"
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="maxlen", queue=q, exchange="", routing_keys=[q])


def test_policy_alternate_exchange(env, set_policy, uid):
    ae = env.exchange("ae", "fanout")
    caught = env.queue("ae-caught")
    env.bind(caught, ae)
    set_policy(pname(uid), f"^pol-{uid}", {"alternate-exchange": ae}, apply_to="exchanges")
    x = px(env, uid, "x", "direct")
    env.publish(x, "nowhere", b"u")
    assert env.bodies(caught) == [b"u"]


def test_policy_alternate_exchange_on_existing_exchange_and_removal(env, set_policy, uid):
    ae = env.exchange("ae2", "fanout")
    caught = env.queue("ae2-caught")
    env.bind(caught, ae)
    x = px(env, uid, "x2", "direct")
    env.publish(x, "nowhere", b"before")
    set_policy(pname(uid), f"^pol-{uid}", {"alternate-exchange": ae}, apply_to="exchanges")
    settle()
    env.publish(x, "nowhere", b"during")
    set_policy.delete(pname(uid))
    settle()
    env.publish(x, "nowhere", b"after")
    assert env.bodies(caught) == [b"during"]


def test_policy_alternate_exchange_makes_mandatory_routed(env, set_policy, uid):
    ae = env.exchange("ae3", "fanout")
    caught = env.queue("ae3-caught")
    env.bind(caught, ae)
    set_policy(pname(uid), f"^pol-{uid}", {"alternate-exchange": ae}, apply_to="exchanges")
    x = px(env, uid, "x3", "direct")
    env.ch.basic_publish(x, "nowhere", b"m", mandatory=True)  # no UnroutableError
    assert env.bodies(caught) == [b"m"]


# ============================================================================================
# apply-to, pattern, priority


def test_apply_to_queues_ignores_exchanges(env, set_policy, uid):
    ae = env.exchange("aeq", "fanout")
    caught = env.queue("aeq-caught")
    env.bind(caught, ae)
    set_policy(pname(uid), f"^pol-{uid}", {"alternate-exchange": ae}, apply_to="queues")
    x = px(env, uid, "xq", "direct")
    env.publish(x, "nowhere", b"lost")
    time.sleep(0.1)
    assert env.count(caught) == 0


def test_apply_to_exchanges_ignores_queues(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": 1}, apply_to="exchanges")
    q = pq(env, uid, "qx")
    for body in [b"1", b"2", b"3"]:
        env.publish("", q, body)
    assert env.count(q) == 3


def test_apply_to_all_covers_queues_and_exchanges(env, set_policy, uid):
    ae = env.exchange("aeall", "fanout")
    caught = env.queue("aeall-caught")
    env.bind(caught, ae)
    set_policy(pname(uid), f"^pol-{uid}", {"alternate-exchange": ae, "max-length": 1},
               apply_to="all")
    x = px(env, uid, "xall", "direct")
    q = pq(env, uid, "qall")
    env.publish(x, "nowhere", b"u")
    env.publish("", q, b"1")
    env.publish("", q, b"2")
    assert env.bodies(caught) == [b"u"]
    assert env.bodies(q) == [b"2"]


def test_pattern_is_an_unanchored_regex(env, set_policy, uid):
    set_policy(pname(uid), f"pol-{uid}", {"max-length": 1})
    q = f"head-pol-{uid}-tail"
    env.ch.queue_declare(q)
    env.queues.append(q)
    for body in [b"1", b"2"]:
        env.publish("", q, body)
    assert env.bodies(q) == [b"2"]


def test_anchored_pattern_does_not_match_elsewhere(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}$", {"max-length": 1})
    q = f"x-pol-{uid}"
    env.ch.queue_declare(q)
    env.queues.append(q)
    exact = f"pol-{uid}"
    env.ch.queue_declare(exact)
    env.queues.append(exact)
    for body in [b"1", b"2"]:
        env.publish("", q, body)
        env.publish("", exact, body)
    assert env.count(q) == 2
    assert env.bodies(exact) == [b"2"]


def test_pattern_regex_features(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}-(a|b)[0-9]+$", {"max-length": 1})
    matched, unmatched = f"pol-{uid}-b42", f"pol-{uid}-c42"
    for q in (matched, unmatched):
        env.ch.queue_declare(q)
        env.queues.append(q)
        env.publish("", q, b"1")
        env.publish("", q, b"2")
    assert env.count(matched) == 1
    assert env.count(unmatched) == 2


def test_highest_priority_policy_wins_alone(env, set_policy, uid):
    """Only one policy applies: the winner's definition is NOT merged with the loser's."""
    set_policy(pname(uid, "lo"), f"^pol-{uid}", {"message-ttl": 100}, priority=1)
    set_policy(pname(uid, "hi"), f"^pol-{uid}", {"max-length": 2}, priority=5)
    q = pq(env, uid, "prio")
    for body in [b"1", b"2", b"3"]:
        env.publish("", q, body)
    time.sleep(0.4)  # the lower-priority TTL must not apply
    assert env.bodies(q) == [b"2", b"3"]


def test_priority_order_independent_of_creation_order(env, set_policy, uid):
    set_policy(pname(uid, "hi"), f"^pol-{uid}", {"max-length": 1}, priority=10)
    set_policy(pname(uid, "lo"), f"^pol-{uid}", {"max-length": 3}, priority=0)
    q = pq(env, uid, "prio2")
    for body in [b"1", b"2", b"3"]:
        env.publish("", q, body)
    assert env.bodies(q) == [b"3"]


def test_deleting_winning_policy_falls_back_to_next(env, set_policy, uid):
    set_policy(pname(uid, "lo"), f"^pol-{uid}", {"max-length": 3}, priority=0)
    set_policy(pname(uid, "hi"), f"^pol-{uid}", {"max-length": 1}, priority=10)
    q = pq(env, uid, "fallback")
    for body in [b"1", b"2"]:
        env.publish("", q, body)
    assert env.count(q) == 1
    set_policy.delete(pname(uid, "hi"))
    settle()
    for body in [b"3", b"4", b"5"]:
        env.publish("", q, body)
    assert env.bodies(q) == [b"3", b"4", b"5"]


def test_deleting_policy_removes_its_effect(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": 1})
    q = pq(env, uid, "del")
    env.publish("", q, b"1")
    env.publish("", q, b"2")
    assert env.count(q) == 1
    set_policy.delete(pname(uid))
    settle()
    for body in [b"3", b"4"]:
        env.publish("", q, body)
    assert env.bodies(q) == [b"2", b"3", b"4"]


def test_updating_policy_definition_applies_at_once(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": 5})
    q = pq(env, uid, "upd")
    for i in range(5):
        env.publish("", q, str(i).encode())
    assert env.count(q) == 5
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": 2})
    assert env.wait_count(q, 2) == 2
    assert env.bodies(q) == [b"3", b"4"]


def test_policy_pattern_change_moves_the_policy(env, set_policy, uid):
    a = f"pol-{uid}-a"
    b = f"pol-{uid}-b"
    for q in (a, b):
        env.ch.queue_declare(q)
        env.queues.append(q)
    set_policy(pname(uid), f"^pol-{uid}-a$", {"max-length": 1})
    set_policy(pname(uid), f"^pol-{uid}-b$", {"max-length": 1})
    settle()
    for q in (a, b):
        env.publish("", q, b"1")
        env.publish("", q, b"2")
    assert env.count(a) == 2
    assert env.count(b) == 1


def test_policy_for_other_vhost_objects_does_not_leak_to_unmatched(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}-only$", {"max-length": 1})
    q = pq(env, uid, "other")
    env.publish("", q, b"1")
    env.publish("", q, b"2")
    assert env.count(q) == 2


# ============================================================================================
# argument vs policy


@pytest.mark.parametrize("arg,pol", [(5000, 100), (100, 5000)])
def test_message_ttl_minimum_of_argument_and_policy(env, set_policy, uid, arg, pol):
    set_policy(pname(uid), f"^pol-{uid}", {"message-ttl": pol})
    q = pq(env, uid, "minttl", {"x-message-ttl": arg})
    marker = env.queue("marker", {"x-message-ttl": 1000})  # no policy applies to it
    t0 = time.monotonic()
    env.publish("", q, b"t")
    assert env.count(q) == 1 or time.monotonic() - t0 >= 0.1  # not expired before 100 ms
    # The 100 ms minimum applies, not 5 s: the message is gone by the time a 1 s marker
    # published after it has expired (an order on the broker's clock, not a time bound).
    env.publish("", marker, b"marker")
    assert wait_until(lambda: env.count(marker) == 0)
    assert env.count(q) == 0


@pytest.mark.parametrize("arg,pol", [(5, 2), (2, 5)])
def test_max_length_minimum_of_argument_and_policy(env, set_policy, uid, arg, pol):
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": pol})
    q = pq(env, uid, "minml", {"x-max-length": arg})
    for i in range(6):
        env.publish("", q, str(i).encode())
    assert env.bodies(q) == [b"4", b"5"]


@pytest.mark.parametrize("arg,pol", [(100, 20), (20, 100)])
def test_max_length_bytes_minimum_of_argument_and_policy(env, set_policy, uid, arg, pol):
    set_policy(pname(uid), f"^pol-{uid}", {"max-length-bytes": pol})
    q = pq(env, uid, "minmlb", {"x-max-length-bytes": arg})
    for i in range(4):
        env.publish("", q, b"%010d" % i)
    assert env.bodies(q) == [b"0000000002", b"0000000003"]


@pytest.mark.parametrize("arg,pol", [(300, 60000), (60000, 300)])
def test_expires_minimum_of_argument_and_policy(env, set_policy, uid, arg, pol):
    set_policy(pname(uid), f"^pol-{uid}", {"expires": pol})
    q = pq(env, uid, "minexp", {"x-expires": arg})
    time.sleep(0.9)
    assert not env.exists(q)


def test_dead_letter_exchange_argument_beats_policy(env, set_policy, uid):
    arg_x, arg_q = env.dlx_pair("arg")
    pol_x, pol_q = env.dlx_pair("pol")
    set_policy(pname(uid), f"^pol-{uid}", {"dead-letter-exchange": pol_x})
    q = pq(env, uid, "dlxarg", {"x-dead-letter-exchange": arg_x})
    env.publish("", q, b"d")
    m, _p, _b = env.get(q, auto_ack=False)
    env.ch.basic_reject(m.delivery_tag, requeue=False)
    assert raw_get(env.url, arg_q, wait=HANG_GUARD).body == b"d"
    assert env.count(pol_q) == 0


def test_dead_letter_routing_key_argument_beats_policy(env, set_policy, uid):
    dlx = env.exchange("rkx", "direct")
    by_arg = env.queue("rk-arg")
    by_pol = env.queue("rk-pol")
    env.bind(by_arg, dlx, "from-arg")
    env.bind(by_pol, dlx, "from-pol")
    set_policy(pname(uid), f"^pol-{uid}", {"dead-letter-exchange": dlx,
                                           "dead-letter-routing-key": "from-pol"})
    q = pq(env, uid, "rkarg", {"x-dead-letter-exchange": dlx,
                                "x-dead-letter-routing-key": "from-arg"})
    env.publish("", q, b"d")
    m, _p, _b = env.get(q, auto_ack=False)
    env.ch.basic_reject(m.delivery_tag, requeue=False)
    assert raw_get(env.url, by_arg, wait=HANG_GUARD).body == b"d"
    assert env.count(by_pol) == 0


def test_argument_dlx_combines_with_policy_routing_key(env, set_policy, uid):
    dlx = env.exchange("combx", "direct")
    target = env.queue("comb-target")
    env.bind(target, dlx, "from-pol")
    set_policy(pname(uid), f"^pol-{uid}", {"dead-letter-routing-key": "from-pol"})
    q = pq(env, uid, "comb", {"x-dead-letter-exchange": dlx})
    env.publish("", q, b"d")
    m, _p, _b = env.get(q, auto_ack=False)
    env.ch.basic_reject(m.delivery_tag, requeue=False)
    msg = raw_get(env.url, target, wait=HANG_GUARD)
    assert msg.method.routing_key == "from-pol"


def test_overflow_argument_beats_policy(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}", {"overflow": "reject-publish"})
    q = pq(env, uid, "ovarg", {"x-max-length": 1, "x-overflow": "drop-head"})
    env.publish("", q, b"1")
    env.publish("", q, b"2")  # drop-head: no nack
    assert env.bodies(q) == [b"2"]


def test_policy_overflow_applies_to_argument_max_length(env, set_policy, uid):
    set_policy(pname(uid), f"^pol-{uid}", {"overflow": "reject-publish"})
    q = pq(env, uid, "ovpol", {"x-max-length": 1})
    env.publish("", q, b"1")
    with pytest.raises(pika.exceptions.NackError):
        env.publish("", q, b"2")
    assert env.bodies(q) == [b"1"]


def test_alternate_exchange_argument_beats_policy(env, set_policy, uid):
    ae_arg = env.exchange("aearg", "fanout")
    ae_pol = env.exchange("aepol", "fanout")
    q_arg = env.queue("aearg-q")
    q_pol = env.queue("aepol-q")
    env.bind(q_arg, ae_arg)
    env.bind(q_pol, ae_pol)
    set_policy(pname(uid), f"^pol-{uid}", {"alternate-exchange": ae_pol}, apply_to="exchanges")
    x = px(env, uid, "aex", "direct", arguments={"alternate-exchange": ae_arg})
    env.publish(x, "nowhere", b"u")
    assert env.bodies(q_arg) == [b"u"]
    assert env.count(q_pol) == 0


def test_policy_does_not_change_declared_arguments_equivalence(env, set_policy, uid):
    """Redeclaring with the original arguments still works while a policy applies."""
    set_policy(pname(uid), f"^pol-{uid}", {"max-length": 1, "message-ttl": 1000})
    q = pq(env, uid, "eq", {"x-max-length": 5})
    pq(env, uid, "eq", {"x-max-length": 5})
    exc = env.channel_error(lambda ch: ch.queue_declare(q, arguments={"x-max-length": 1}))
    assert exc.reply_code == 406


# ============================================================================================
# invalid definitions

# (definition, HTTP reason on RabbitMQ 3.10 (HTML-escaped JSON "reason"), phrase our ValueError
#  message must contain)
INVALID_DEFINITIONS = [
    ({"message-ttl": -1}, "Validation failed\n\n-1 is not a valid message TTL\n",
     "is not a valid message TTL"),
    ({"message-ttl": "x"},
     "Validation failed\n\n&lt;&lt;\"x\"&gt;&gt; is not a valid message TTL\n",
     "is not a valid message TTL"),
    ({"message-ttl": 1.5}, "Validation failed\n\n1.5 is not a valid message TTL\n",
     "is not a valid message TTL"),
    ({"expires": 0}, "Validation failed\n\n0 is not a valid queue expiry\n",
     "is not a valid queue expiry"),
    ({"max-length": -1}, "Validation failed\n\n-1 is not a valid maximum length\n",
     "is not a valid maximum length"),
    ({"max-length-bytes": "1"},
     "Validation failed\n\n&lt;&lt;\"1\"&gt;&gt; is not a valid maximum length in bytes\n",
     "is not a valid maximum length in bytes"),
    ({"overflow": "nope"},
     "Validation failed\n\n&lt;&lt;\"nope\"&gt;&gt; is not a valid overflow value\n",
     "is not a valid overflow value"),
    ({"dead-letter-exchange": 1},
     "Validation failed\n\n1 is not a valid dead letter exchange name\n",
     "is not a valid dead letter exchange name"),
    ({"alternate-exchange": 1},
     "Validation failed\n\n1 is not a valid alternate exchange name\n",
     "is not a valid alternate exchange name"),
    ({"ha-mode": "exactly"},
     "Validation failed\n\nha-mode=\"exactly\" takes an integer, none given\n",
     'ha-mode="exactly" takes an integer'),
    ({"ha-params": 2},
     "Validation failed\n\nha-mode must be specified to specify ha-params, ha-sync-mode or "
     "ha-promote-on-shutdown\n",
     "ha-mode must be specified to specify ha-params"),
    ({"foo-bar": 1},
     "Validation failed\n\n[{&lt;&lt;\"foo-bar\"&gt;&gt;,1}] are not recognised policy "
     "settings\n",
     "are not recognised policy settings"),
    ({}, "Validation failed\n\nno policy provided\n", "no policy provided"),
]


@pytest.mark.parametrize("definition,http_reason,phrase", INVALID_DEFINITIONS,
                         ids=[json.dumps(d[0]) for d in INVALID_DEFINITIONS])
def test_invalid_policy_definition(set_policy, uid, definition, http_reason, phrase):
    with pytest.raises(PolicyRejected) as ei:
        set_policy(pname(uid, "bad"), f"^nomatch-{uid}$", definition)
    if REFERENCE:
        assert ei.value.status == 400
        assert ei.value.reason == http_reason
    else:
        assert ei.value.status is None  # a ValueError
        assert phrase in ei.value.reason


def test_invalid_policy_pattern(set_policy, uid):
    with pytest.raises(PolicyRejected) as ei:
        set_policy(pname(uid, "bad"), "(", {"message-ttl": 1})
    if REFERENCE:
        assert ei.value.status == 400
        assert ei.value.reason == ("Validation failed\n\npattern should be regular expression "
                                   "but is invalid: {\"missing )\",1}\n")
    else:
        assert "pattern should be regular expression" in ei.value.reason


def test_invalid_policy_apply_to(set_policy, uid):
    with pytest.raises(PolicyRejected) as ei:
        set_policy(pname(uid, "bad"), f"^nomatch-{uid}$", {"message-ttl": 1}, apply_to="foo")
    if REFERENCE:
        assert ei.value.status == 400
        assert ei.value.reason == ("Validation failed\n\napply-to 'foo' unrecognised; should be "
                                   "'queues', 'exchanges' or 'all'\n")
    else:
        assert "apply-to 'foo' unrecognised" in ei.value.reason


def test_rejected_policy_is_not_stored(env, set_policy, uid):
    """A refused definition leaves no policy behind: the queue is unaffected."""
    with pytest.raises(PolicyRejected):
        set_policy(pname(uid, "bad"), f"^pol-{uid}", {"max-length": 1, "foo-bar": 1})
    q = pq(env, uid, "notstored")
    env.publish("", q, b"1")
    env.publish("", q, b"2")
    assert env.count(q) == 2


def test_valid_ha_policy_accepted(set_policy, uid):
    set_policy(pname(uid, "ha"), f"^nomatch-{uid}$", {"ha-mode": "exactly", "ha-params": 2})
    set_policy.delete(pname(uid, "ha"))
