"""Dead-lettering, as RabbitMQ 3.10 does it (reference doc §2-§3): routing keys of the
dead-lettered message, its properties, cycles and a missing dead-letter exchange.

Every expectation was checked against a real RabbitMQ 3.10.8 (AMQP_REFERENCE_URL); see
test_ttl_dlx.py for the facts recorded there that the reference doc does not spell out.
"""

from __future__ import annotations

import time

import pytest

from helpers.typed import RawClient
from helpers.dlx import (
    FIRST_DEATH_KEYS,
    assert_entry,
    assert_first_death,
    dl_get,
    xdeath_entries,
)
from helpers.dlx import env  # noqa: F401 - pytest fixture
from helpers.wait import wait_until

pytestmark = pytest.mark.timeout(60)


# ============================================================================================
# routing keys of the dead-lettered message


def _dl_routing_setup(env, dl_rk: str | None):
    dlx = env.exchange("rkx", "direct")
    targets = {}
    for key in ["k1", "cc1", "bcc1", "dlrk", "other"]:
        targets[key] = env.queue(f"rk-{key}")
        env.bind(targets[key], dlx, key)
    src = env.exchange("rksrc", "direct")
    args = {"x-dead-letter-exchange": dlx}
    if dl_rk is not None:
        args["x-dead-letter-routing-key"] = dl_rk
    q = env.queue("rkq", args)
    env.bind(q, src, "k1")
    env.publish(src, "k1", b"route", headers={"CC": ["cc1"], "BCC": ["bcc1"], "h": "v"})
    method, props, _ = env.get(q, auto_ack=False)
    assert props.headers == {"CC": ["cc1"], "h": "v"}  # BCC never reaches a consumer
    env.ch.basic_reject(method.delivery_tag, requeue=False)
    return src, q, targets


def test_dead_letter_routing_key_replaces_keys_and_drops_cc(env):
    src, q, targets = _dl_routing_setup(env, "dlrk")
    msg = dl_get(env, targets["dlrk"])
    assert msg.method.routing_key == "dlrk"
    assert msg.header_keys() == ["h"] + FIRST_DEATH_KEYS  # CC removed, BCC never there
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="rejected", queue=q, exchange=src,
                 routing_keys=["k1", "cc1"])
    time.sleep(0.1)
    for key in ["k1", "cc1", "bcc1", "other"]:
        assert env.count(targets[key]) == 0, key


def test_without_dead_letter_routing_key_original_keys_route(env):
    """Publish key, CC and BCC keys all route the dead-lettered message; it keeps CC, never
    shows BCC, and every copy is delivered with the publish key as routing_key."""
    src, q, targets = _dl_routing_setup(env, None)
    for key in ["k1", "cc1", "bcc1"]:
        msg = dl_get(env, targets[key])
        assert msg.method.routing_key == "k1", key
        assert msg.header_keys() == ["CC", "h"] + FIRST_DEATH_KEYS
        assert msg.header("CC") == ("A", [("S", "cc1")])
        (entry,) = xdeath_entries(msg)
        assert_entry(entry, count=1, reason="rejected", queue=q, exchange=src,
                     routing_keys=["k1", "cc1"])
    time.sleep(0.1)
    assert env.count(targets["dlrk"]) == 0
    assert env.count(targets["other"]) == 0


def test_dead_letter_to_default_exchange_uses_queue_name_key(env):
    target = env.queue("dl-default-target")
    q = env.queue("dl-default", {"x-dead-letter-exchange": "",
                                 "x-dead-letter-routing-key": target})
    env.publish("", q, b"d")
    method, _p, _b = env.get(q, auto_ack=False)
    env.ch.basic_nack(method.delivery_tag, requeue=False)
    msg = dl_get(env, target)
    assert msg.method.exchange == "" and msg.method.routing_key == target


# ============================================================================================
# properties after dead-lettering


def test_properties_preserved_and_expiration_removed(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("props", {"x-dead-letter-exchange": dlx})
    env.publish("", q, b"p", delivery_mode=2, content_type="text/plain", content_encoding="gzip",
                priority=3, correlation_id="corr", reply_to="rep", expiration="60000",
                message_id="mid", timestamp=1_600_000_000, type="t", app_id="app")
    method, _p, _b = env.get(q, auto_ack=False)
    env.ch.basic_reject(method.delivery_tag, requeue=False)
    msg = dl_get(env, dlq)
    props = dict(msg.props)
    props.pop("headers")
    assert props == {"content_type": "text/plain", "content_encoding": "gzip",
                     "delivery_mode": 2, "priority": 3, "correlation_id": "corr",
                     "reply_to": "rep", "message_id": "mid", "timestamp": 1_600_000_000,
                     "type": "t", "app_id": "app"}


@pytest.mark.parametrize("mode", [1, 2, None])
def test_delivery_mode_preserved(env, mode):
    dlx, dlq = env.dlx_pair()
    q = env.queue("dmode", {"x-message-ttl": 50, "x-dead-letter-exchange": dlx}, durable=True)
    kw = {} if mode is None else {"delivery_mode": mode}
    env.publish("", q, b"d", **kw)
    msg = dl_get(env, dlq)
    assert msg.props.get("delivery_mode") == mode


# ============================================================================================
# cycles, missing DLX


def test_ttl_cycle_to_itself_is_dropped_but_other_targets_get_it(env):
    """An expired message whose DLX routes back to its own queue: that copy is dropped
    (automatic cycle); another queue bound to the same DLX still receives it."""
    dlx = env.exchange("selfx")
    q = env.queue("selfttl", {"x-message-ttl": 100, "x-dead-letter-exchange": dlx})
    observer = env.queue("selfobs")
    env.bind(q, dlx)
    env.bind(observer, dlx)
    env.publish("", q, b"loop")
    msg = dl_get(env, observer)
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange="", routing_keys=[q])
    time.sleep(0.4)
    assert env.count(q) == 0
    assert env.count(observer) == 0


def test_ttl_cycle_to_itself_without_other_target(env):
    q = env.name("selfonly")
    env.queue("selfonly", {"x-message-ttl": 100, "x-dead-letter-exchange": ""})
    env.publish("", q, b"loop")
    time.sleep(0.5)
    assert env.count(q) == 0
    time.sleep(0.3)
    assert env.count(q) == 0
    assert env.get(q)[0] is None


def test_two_queue_ttl_cycle_is_dropped(env):
    """A (ttl) -> B (ttl) -> fanout{A, observer}: the copy for A is dropped, the observer's
    is delivered with both deaths recorded."""
    a, b = env.name("c2-a"), env.name("c2-b")
    fx = env.exchange("c2-x")
    observer = env.queue("c2-obs")
    env.queue("c2-a", {"x-message-ttl": 100, "x-dead-letter-exchange": "",
                       "x-dead-letter-routing-key": b})
    env.queue("c2-b", {"x-message-ttl": 100, "x-dead-letter-exchange": fx})
    env.bind(a, fx)
    env.bind(observer, fx)
    env.publish("", a, b"c2")
    msg = dl_get(env, observer)
    e_b, e_a = xdeath_entries(msg)
    assert_entry(e_b, count=1, reason="expired", queue=b, exchange="", routing_keys=[b],
                 sorted_keys=True)
    assert_entry(e_a, count=1, reason="expired", queue=a, exchange="", routing_keys=[a])
    assert_first_death(msg, reason="expired", queue=a, exchange="")
    time.sleep(0.5)
    assert env.count(a) == 0 and env.count(b) == 0 and env.count(observer) == 0


def test_reject_cycle_to_itself_is_allowed(env):
    q = env.name("rejloop")
    env.queue("rejloop", {"x-dead-letter-exchange": ""})  # original key = queue name
    env.publish("", q, b"r")
    with RawClient(env.url) as rc:
        for n in range(1, 5):
            assert wait_until(lambda: env.count(q) == 1)
            m = rc.get(q)
            assert m is not None and m.body == b"r"
            if n > 1:
                (entry,) = xdeath_entries(m)
                assert dict(entry)["count"] == ("l", n - 1)
            rc.reject(m.method.delivery_tag, requeue=False)
            rc.sync()
    msg = dl_get(env, q)
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=4, reason="rejected", queue=q, exchange="", routing_keys=[q],
                 sorted_keys=True)


def test_missing_dead_letter_exchange_drops_message(env):
    missing = env.name("no-such-dlx")
    q = env.queue("nodlx", {"x-dead-letter-exchange": missing})
    env.publish("", q, b"gone")
    method, _p, _b = env.get(q, auto_ack=False)
    env.ch.basic_reject(method.delivery_tag, requeue=False)
    env.publish("", q, b"gone2", expiration="50")
    time.sleep(0.3)
    assert env.count(q) == 0
    # declaring the exchange afterwards does not resurrect anything
    env.exchange("no-such-dlx")
    late = env.queue("nodlx-late")
    env.bind(late, missing)
    time.sleep(0.2)
    assert env.count(late) == 0
    assert env.conn.is_open and env.ch.is_open


def test_dead_letter_exchange_with_no_binding_drops_message(env):
    dlx = env.exchange("unbound-dlx")
    q = env.queue("unbound", {"x-dead-letter-exchange": dlx, "x-message-ttl": 50})
    env.publish("", q, b"gone")
    time.sleep(0.3)
    assert env.count(q) == 0
