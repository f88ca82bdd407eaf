"""Dead-lettering, message TTL and queue expiry, as RabbitMQ 3.10 does them (reference doc §2-§3).

Every expectation was checked against a real RabbitMQ 3.10.8 (AMQP_REFERENCE_URL). x-death is
checked on the wire, type letter by type letter and key by key, with `amqp_typed` (a raw
content-header decoder): client libraries hide both the AMQP types and the key order.

Facts recorded from RabbitMQ 3.10.8 that the reference doc does not spell out:
- The first x-death entry of a message has keys in the order
  count, reason, queue, time, exchange, routing-keys[, original-expiration] (NOT sorted); an
  entry written by any later death (new or incremented) has its keys sorted.
- Whenever a message is dead-lettered, the whole headers table is re-sorted by key (bytewise),
  user headers included; their AMQP types are kept.
- Without x-dead-letter-routing-key the dead-lettered message is routed with every original
  key (publish key + CC + BCC) but delivered with the publish key as routing_key.
- `original-expiration` is recorded whenever the message had an expiration, whatever the
  reason (also when the queue TTL, not the message's, expired it).
- A passive queue.declare and a basic.get both renew an x-expires lease.
"""
from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest
from pamqp import commands

from amqp_typed import RawClient, encode_content_header, raw_get
from dlx_common import (
    FIRST_DEATH_KEYS,
    REFERENCE,
    Env,
    assert_entry,
    assert_first_death,
    connect,
    consume_until,
    pump,
    wait_until,
    xdeath_entries,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def env(amqp_url, uid):
    e = Env(amqp_url, uid)
    yield e
    e.close()


def dl_get(env: Env, queue: str, wait: float = 2.0):
    """The next message of a dead-letter queue, decoded with its wire types (polls)."""
    msg = raw_get(env.url, queue, wait=wait)
    assert msg is not None, f"nothing dead-lettered into {queue}"
    return msg


# ============================================================================================
# the delayed-order flow


@pytest.mark.parametrize("dlx_type", ["fanout", "direct"])
def test_delayed_order_flow(env, dlx_type):
    """orders (x-message-ttl=300, DLX) -> DLX -> processing queue: arrives after ~300 ms."""
    dlx = env.exchange("orders-dlx", dlx_type)
    ready = env.queue("orders-ready")
    args = {"x-message-ttl": 300, "x-dead-letter-exchange": dlx}
    if dlx_type == "direct":
        env.bind(ready, dlx, "ready")
        args["x-dead-letter-routing-key"] = "ready"
    else:
        env.bind(ready, dlx)
    orders = env.queue("orders", args)

    consumer = connect(env.url)
    try:
        cch = consumer.channel()
        got = []
        cch.basic_consume(ready, lambda c, m, p, b: got.append((m, p, b, time.monotonic())),
                          auto_ack=True)
        t0 = time.monotonic()
        env.publish("", orders, b'{"order": 42}', delivery_mode=2, content_type="application/json")
        deadline = t0 + 3
        while not got and time.monotonic() < deadline:
            consumer.process_data_events(time_limit=0.01)
        assert got, "the delayed order never arrived"
        method, props, body, t1 = got[0]
        elapsed = t1 - t0
        assert 0.25 <= elapsed < 2.0, elapsed
        assert body == b'{"order": 42}'
        assert method.exchange == dlx
        assert method.routing_key == ("ready" if dlx_type == "direct" else orders)
        assert props.delivery_mode == 2
        assert props.content_type == "application/json"
        (death,) = props.headers["x-death"]
        assert death["reason"] == "expired"
        assert death["queue"] == orders
        assert death["count"] == 1
        assert props.headers["x-first-death-reason"] == "expired"
    finally:
        consumer.close()
    assert env.count(orders) == 0


# ============================================================================================
# x-death, field by field and type by type, for each reason


def test_xdeath_rejected_by_basic_reject(env):
    dlx, dlq = env.dlx_pair()
    src = env.exchange("src", "direct")
    q = env.queue("rej", {"x-dead-letter-exchange": dlx})
    env.bind(q, src, "rk")
    env.publish(src, "rk", b"r1")
    with RawClient(env.url) as rc:
        m = rc.get(q)
        rc.reject(m.method.delivery_tag, requeue=False)
        rc.sync()
    msg = dl_get(env, dlq)
    assert msg.body == b"r1"
    assert msg.method.exchange == dlx
    assert msg.method.routing_key == "rk"
    assert msg.method.redelivered is False
    assert msg.header_keys() == FIRST_DEATH_KEYS
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="rejected", queue=q, exchange=src, routing_keys=["rk"])
    assert_first_death(msg, reason="rejected", queue=q, exchange=src)
    assert set(msg.props) == {"headers"}


def test_xdeath_rejected_by_basic_nack(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("nack", {"x-dead-letter-exchange": dlx})
    env.publish("", q, b"n1")
    with RawClient(env.url) as rc:
        m = rc.get(q)
        rc.nack(m.method.delivery_tag, requeue=False)
        rc.sync()
    msg = dl_get(env, dlq)
    assert msg.body == b"n1"
    assert msg.header_keys() == FIRST_DEATH_KEYS
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="rejected", queue=q, exchange="", routing_keys=[q])
    assert_first_death(msg, reason="rejected", queue=q, exchange="")


def test_xdeath_rejected_by_nack_multiple(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("nackm", {"x-dead-letter-exchange": dlx})
    for i in range(3):
        env.publish("", q, f"m{i}".encode())
    with RawClient(env.url) as rc:
        tags = [rc.get(q).method.delivery_tag for _ in range(3)]
        rc.nack(tags[-1], multiple=True, requeue=False)
        rc.sync()
    assert env.wait_count(dlq, 3) == 3
    bodies = []
    for _ in range(3):
        msg = dl_get(env, dlq)
        bodies.append(msg.body)
        (entry,) = xdeath_entries(msg)
        assert_entry(entry, count=1, reason="rejected", queue=q, exchange="", routing_keys=[q])
    assert bodies == [b"m0", b"m1", b"m2"]
    assert env.count(q) == 0


def test_requeue_true_does_not_dead_letter(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("requeue", {"x-dead-letter-exchange": dlx})
    env.publish("", q, b"x")
    method, _p, _b = env.get(q, auto_ack=False)
    env.ch.basic_nack(method.delivery_tag, requeue=True)
    method, _p, body = env.get(q, auto_ack=False)
    assert body == b"x" and method.redelivered is True
    env.ch.basic_reject(method.delivery_tag, requeue=True)
    assert env.wait_count(q, 1) == 1
    assert env.count(dlq) == 0


def test_xdeath_expired_queue_ttl(env):
    dlx, dlq = env.dlx_pair()
    src = env.exchange("src", "topic")
    q = env.queue("qttl", {"x-message-ttl": 100, "x-dead-letter-exchange": dlx})
    env.bind(q, src, "a.*")
    env.publish(src, "a.b", b"e1")
    msg = dl_get(env, dlq)
    assert msg.header_keys() == FIRST_DEATH_KEYS
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange=src, routing_keys=["a.b"])
    assert_first_death(msg, reason="expired", queue=q, exchange=src)
    assert "expiration" not in msg.props


def test_xdeath_expired_per_message_ttl(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("mttl", {"x-dead-letter-exchange": dlx})
    env.publish("", q, b"e2", expiration="100")
    msg = dl_get(env, dlq)
    assert "expiration" not in msg.props
    assert msg.header_keys() == FIRST_DEATH_KEYS
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange="", routing_keys=[q],
                 original_expiration="100")
    assert_first_death(msg, reason="expired", queue=q, exchange="")


def test_original_expiration_recorded_even_when_queue_ttl_fired(env):
    """A message with expiration=60000 in a 100 ms TTL queue: reason expired, and the
    message's own expiration still goes to original-expiration."""
    dlx, dlq = env.dlx_pair()
    q = env.queue("qttl2", {"x-message-ttl": 100, "x-dead-letter-exchange": dlx})
    env.publish("", q, b"e3", expiration="60000")
    msg = dl_get(env, dlq)
    assert "expiration" not in msg.props
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange="", routing_keys=[q],
                 original_expiration="60000")


def test_original_expiration_recorded_for_rejected_message(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("rejexp", {"x-dead-letter-exchange": dlx})
    env.publish("", q, b"e4", expiration="60000")
    method, props, _b = env.get(q, auto_ack=False)
    assert props.expiration == "60000"
    env.ch.basic_reject(method.delivery_tag, requeue=False)
    msg = dl_get(env, dlq)
    assert "expiration" not in msg.props
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="rejected", queue=q, exchange="", routing_keys=[q],
                 original_expiration="60000")


def test_xdeath_maxlen_drop_head(env):
    dlx, dlq = env.dlx_pair()
    src = env.exchange("src", "direct")
    q = env.queue("mlen", {"x-max-length": 1, "x-dead-letter-exchange": dlx})
    env.bind(q, src, "k")
    env.publish(src, "k", b"old", headers={"CC": ["c"]})
    env.bind(q, src, "c")
    env.publish(src, "k", b"new")
    msg = dl_get(env, dlq)
    assert msg.body == b"old"
    assert msg.header_keys() == ["CC"] + FIRST_DEATH_KEYS
    assert msg.header("CC") == ("A", [("S", "c")])
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="maxlen", queue=q, exchange=src, routing_keys=["k", "c"])
    assert_first_death(msg, reason="maxlen", queue=q, exchange=src)
    assert env.bodies(q) == [b"new"]


def test_xdeath_maxlen_reject_publish_dlx(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("rpdlx", {"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                            "x-dead-letter-exchange": dlx})
    env.publish("", q, b"kept")
    with pytest.raises(pika.exceptions.NackError):
        env.publish("", q, b"refused", expiration="60000")
    msg = dl_get(env, dlq)
    assert msg.body == b"refused"
    assert "expiration" not in msg.props
    assert msg.header_keys() == FIRST_DEATH_KEYS
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="maxlen", queue=q, exchange="", routing_keys=[q],
                 original_expiration="60000")
    assert env.bodies(q) == [b"kept"]


def test_reject_publish_never_dead_letters(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("rp", {"x-max-length": 1, "x-overflow": "reject-publish",
                         "x-dead-letter-exchange": dlx})
    env.publish("", q, b"kept")
    with pytest.raises(pika.exceptions.NackError):
        env.publish("", q, b"refused")
    time.sleep(0.2)
    assert env.count(dlq) == 0
    assert env.bodies(q) == [b"kept"]


def test_dead_lettering_sorts_headers_and_keeps_field_types(env):
    """Every field type survives the re-encoding, and the headers table comes out sorted."""
    dlx, dlq = env.dlx_pair()
    q = env.queue("types", {"x-dead-letter-exchange": dlx})
    nested = [("z", ("t", True)), ("a", ("b", -3))]
    user_headers = [
        ("zz", ("I", -7)),
        ("aa", ("S", "text")),
        ("M", ("l", 2**40)),
        ("ts", ("T", 1_700_000_000)),
        ("dbl", ("d", 1.5)),
        ("flt", ("f", 0.5)),
        ("bin", ("x", b"\x00\xff")),
        ("tbl", ("F", nested)),
        ("arr", ("A", [("s", 7), ("u", 9), ("S", "v")])),
        ("void", ("V", None)),
        ("dec", ("D", (2, 12345))),
        ("ub", ("B", 200)),
        ("ui", ("i", 4_000_000_000)),
        ("bool", ("t", False)),
    ]
    with RawClient(env.url) as rc:
        rc.confirm_select()
        hdr = encode_content_header(2, headers=user_headers, delivery_mode=1)
        assert isinstance(rc.publish("", q, b"ty", hdr), commands.Basic.Ack)
        m = rc.get(q)
        # delivered untouched before dead-lettering: wire order and types as published
        assert [k for k, _ in m.headers] == [k for k, _ in user_headers]
        rc.reject(m.method.delivery_tag, requeue=False)
        rc.sync()
    msg = dl_get(env, dlq)
    expected_keys = sorted([k for k, _ in user_headers] + FIRST_DEATH_KEYS)
    assert msg.header_keys() == expected_keys
    got = dict(msg.headers)
    for key, value in user_headers:
        if key == "dec":
            letter, dec = got[key]
            assert letter == "D" and str(dec) == "123.45"
        else:
            assert got[key] == value, key
    assert msg.props["delivery_mode"] == 1


# ============================================================================================
# repeated deaths


def test_repeated_death_same_queue_increments_count(env):
    """reject -> DLX routes back to the same queue: one entry whose count goes 1, 2, 3 (reject
    cycles are allowed). The incremented entry is rewritten with sorted keys."""
    q = env.name("loop")
    env.queue("loop", {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q})
    env.publish("", q, b"again")
    with RawClient(env.url) as rc:
        for n in range(1, 4):
            assert wait_until(lambda: env.count(q) == 1)
            m = rc.get(q)
            assert m is not None and m.body == b"again"
            assert m.method.redelivered is False
            if n == 1:
                assert m.headers == []
            else:
                assert m.header_keys() == FIRST_DEATH_KEYS
                (entry,) = xdeath_entries(m)
                assert_entry(entry, count=n - 1, reason="rejected", queue=q, exchange="",
                             routing_keys=[q], sorted_keys=n > 2)
            rc.reject(m.method.delivery_tag, requeue=False)
            rc.sync()
    msg = dl_get(env, q)
    assert msg.header_keys() == FIRST_DEATH_KEYS
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=3, reason="rejected", queue=q, exchange="", routing_keys=[q],
                 sorted_keys=True)
    assert_first_death(msg, reason="rejected", queue=q, exchange="")


def test_repeated_death_keeps_first_time(env):
    q = env.name("ftime")
    env.queue("ftime", {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": q})
    env.publish("", q, b"t")
    with RawClient(env.url) as rc:
        m = rc.get(q)
        rc.reject(m.method.delivery_tag, requeue=False)
        rc.sync()
        assert wait_until(lambda: env.count(q) == 1)
        m = rc.get(q)
        t1 = dict(xdeath_entries(m)[0])["time"][1]
        time.sleep(1.2)
        rc.reject(m.method.delivery_tag, requeue=False)
        rc.sync()
        assert wait_until(lambda: env.count(q) == 1)
        m = rc.get(q)
        (entry,) = xdeath_entries(m)
        assert dict(entry)["count"] == ("l", 2)
        assert dict(entry)["time"] == ("T", t1)
        rc.ack(m.method.delivery_tag)
        rc.sync()


def test_repeated_deaths_two_queues_newest_first(env):
    """A --reject--> fanout{B, observer} ; B (TTL 100) --expired--> A ; twice round.

    Entries are one per {queue, reason}, newest first; a repeated one moves to the front with
    count+1 (its other fields keep their first values); x-first-death-* never change. The
    expired->A hop is not a cycle because the path back to A contains a rejection.
    """
    a, b = env.name("cyc-a"), env.name("cyc-b")
    xa = env.exchange("cyc-xa")
    observer = env.queue("cyc-obs")
    env.queue("cyc-a", {"x-dead-letter-exchange": xa})
    env.queue("cyc-b", {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": a,
                        "x-message-ttl": 100})
    env.bind(b, xa)
    env.bind(observer, xa)
    env.publish("", a, b"hop", expiration="60000")
    with RawClient(env.url) as rc:
        m = rc.get(a)
        assert m.props["expiration"] == "60000"
        rc.reject(m.method.delivery_tag, requeue=False)
        rc.sync()

        o1 = dl_get(env, observer)
        (e_a,) = xdeath_entries(o1)
        assert_entry(e_a, count=1, reason="rejected", queue=a, exchange="", routing_keys=[a],
                     original_expiration="60000")
        t_a = dict(e_a)["time"][1]

        assert wait_until(lambda: env.count(a) == 1, 3)
        m = rc.get(a)
        assert "expiration" not in m.props
        assert m.header_keys() == FIRST_DEATH_KEYS
        e_b, e_a = xdeath_entries(m)
        # B's entry was written by a later death: sorted keys. A's is the original first entry.
        assert_entry(e_b, count=1, reason="expired", queue=b, exchange=xa, routing_keys=[a],
                     sorted_keys=True)
        assert_entry(e_a, count=1, reason="rejected", queue=a, exchange="", routing_keys=[a],
                     original_expiration="60000", time_sec=t_a)
        t_b = dict(e_b)["time"][1]
        assert_first_death(m, reason="rejected", queue=a, exchange="")

        rc.reject(m.method.delivery_tag, requeue=False)
        rc.sync()

        o2 = dl_get(env, observer)
        e_a, e_b = xdeath_entries(o2)
        assert_entry(e_a, count=2, reason="rejected", queue=a, exchange="", routing_keys=[a],
                     original_expiration="60000", sorted_keys=True, time_sec=t_a)
        assert_entry(e_b, count=1, reason="expired", queue=b, exchange=xa, routing_keys=[a],
                     sorted_keys=True, time_sec=t_b)
        assert_first_death(o2, reason="rejected", queue=a, exchange="")

        assert wait_until(lambda: env.count(a) == 1, 3)
        m = rc.get(a)
        e_b, e_a = xdeath_entries(m)
        assert_entry(e_b, count=2, reason="expired", queue=b, exchange=xa, routing_keys=[a],
                     sorted_keys=True, time_sec=t_b)
        assert_entry(e_a, count=2, reason="rejected", queue=a, exchange="", routing_keys=[a],
                     original_expiration="60000", sorted_keys=True, time_sec=t_a)
        assert_first_death(m, reason="rejected", queue=a, exchange="")
        rc.ack(m.method.delivery_tag)
        rc.sync()


def test_same_queue_different_reasons_are_separate_entries(env):
    """{queue, reason} is the key. Q (TTL 200) dead-letters to a fanout bound to Q itself and
    an observer: reject (copy 1: [Q rejected]); the copy back in Q then expires (copy 2:
    [Q expired, Q rejected] - allowed since the path back to Q has a rejection); the copy
    that would go back to Q again is a fully automatic cycle and is dropped."""
    fx = env.exchange("tr-x")
    q = env.queue("tr", {"x-message-ttl": 200, "x-dead-letter-exchange": fx})
    observer = env.queue("tr-obs")
    env.bind(q, fx)
    env.bind(observer, fx)
    env.publish("", q, b"x")
    method, _p, _b = env.get(q, auto_ack=False)
    env.ch.basic_reject(method.delivery_tag, requeue=False)
    msg1 = dl_get(env, observer)
    (entry,) = xdeath_entries(msg1)
    assert_entry(entry, count=1, reason="rejected", queue=q, exchange="", routing_keys=[q])
    msg2 = dl_get(env, observer, wait=3)
    e_exp, e_rej = xdeath_entries(msg2)
    assert_entry(e_exp, count=1, reason="expired", queue=q, exchange=fx, routing_keys=[q],
                 sorted_keys=True)
    assert_entry(e_rej, count=1, reason="rejected", queue=q, exchange="", routing_keys=[q])
    assert_first_death(msg2, reason="rejected", queue=q, exchange="")
    time.sleep(0.6)
    assert env.count(q) == 0
    assert env.count(observer) == 0


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
    msg = dl_get(env, observer, wait=3)
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


# ============================================================================================
# TTL


@pytest.mark.parametrize("queue_ttl,msg_ttl", [(200, "60000"), (60000, "200")])
def test_smaller_ttl_wins(env, queue_ttl, msg_ttl):
    dlx, dlq = env.dlx_pair()
    q = env.queue("minttl", {"x-message-ttl": queue_ttl, "x-dead-letter-exchange": dlx})
    c = connect(env.url)
    try:
        cch = c.channel()
        t0 = time.monotonic()
        env.publish("", q, b"m", expiration=msg_ttl)
        got = consume_until(c, cch, dlq, timeout=3)
        assert got, "not dead-lettered"
        elapsed = got[0][3] - t0
        assert 0.15 <= elapsed < 1.0, elapsed
    finally:
        c.close()


def test_ttl_zero_delivered_to_ready_consumer(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("ttl0c", {"x-message-ttl": 0, "x-dead-letter-exchange": dlx})
    c = connect(env.url)
    try:
        cch = c.channel()
        got = []
        cch.basic_consume(q, lambda ch, m, p, b: got.append(b), auto_ack=True)
        env.publish("", q, b"now")
        assert wait_until(lambda: (c.process_data_events(0) or True) and got, 2)
    finally:
        c.close()
    assert got == [b"now"]
    time.sleep(0.1)
    assert env.count(dlq) == 0


def test_ttl_zero_without_consumer_expires_and_dead_letters(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("ttl0", {"x-message-ttl": 0, "x-dead-letter-exchange": dlx})
    env.publish("", q, b"late")
    assert env.get(q)[0] is None
    msg = dl_get(env, dlq)
    assert msg.body == b"late"
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange="", routing_keys=[q])
    assert env.count(q) == 0


def test_ttl_zero_with_blocked_consumer_expires(env):
    """The only consumer is at its prefetch limit: the message cannot be delivered now."""
    dlx, dlq = env.dlx_pair()
    q = env.queue("ttl0b", {"x-message-ttl": 0, "x-dead-letter-exchange": dlx})
    c = connect(env.url)
    try:
        cch = c.channel()
        cch.basic_qos(prefetch_count=1)
        got = []
        cch.basic_consume(q, lambda ch, m, p, b: got.append(b), auto_ack=False)
        env.publish("", q, b"first")
        assert wait_until(lambda: (c.process_data_events(0) or True) and got, 2)
        env.publish("", q, b"second")
        msg = dl_get(env, dlq)
        assert msg.body == b"second"
        pump(c, 0.1)
        assert got == [b"first"]
    finally:
        c.close()


def test_message_expiration_zero_expires_on_arrival(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("exp0", {"x-dead-letter-exchange": dlx})
    env.publish("", q, b"zero", expiration="0")
    assert env.get(q)[0] is None
    msg = dl_get(env, dlq)
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange="", routing_keys=[q],
                 original_expiration="0")


def test_requeued_message_keeps_original_expiry(env):
    """ttl 300, fetched, held past its expiry, nacked with requeue: dead-lettered, not
    redelivered."""
    dlx, dlq = env.dlx_pair()
    q = env.queue("rqexp", {"x-dead-letter-exchange": dlx})
    env.publish("", q, b"stale", expiration="300")
    method, _p, body = env.get(q, auto_ack=False)
    assert body == b"stale"
    time.sleep(0.45)
    env.ch.basic_nack(method.delivery_tag, requeue=True)
    msg = dl_get(env, dlq)
    assert msg.body == b"stale"
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange="", routing_keys=[q],
                 original_expiration="300")
    assert env.get(q)[0] is None


def test_requeued_message_keeps_queue_ttl_expiry(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("rqqttl", {"x-message-ttl": 300, "x-dead-letter-exchange": dlx})
    env.publish("", q, b"stale")
    method, _p, _b = env.get(q, auto_ack=False)
    time.sleep(0.45)
    env.ch.basic_reject(method.delivery_tag, requeue=True)
    msg = dl_get(env, dlq)
    assert msg.body == b"stale"
    assert env.get(q)[0] is None


def test_requeue_before_expiry_does_not_restart_the_clock(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("rqclock", {"x-dead-letter-exchange": dlx})
    c = connect(env.url)
    try:
        cch = c.channel()
        t0 = time.monotonic()
        env.publish("", q, b"clock", expiration="600")
        method, _p, _b = env.get(q, auto_ack=False)
        time.sleep(0.35)
        env.ch.basic_nack(method.delivery_tag, requeue=True)
        got = consume_until(c, cch, dlq, timeout=3)
        assert got
        elapsed = got[0][3] - t0
        assert 0.55 <= elapsed < 0.9, elapsed  # a fresh clock would give >= 0.95
    finally:
        c.close()


def test_expired_messages_are_never_delivered(env):
    q = env.queue("never", {"x-message-ttl": 150})
    env.publish("", q, b"1")
    env.publish("", q, b"2", expiration="60000")
    time.sleep(0.3)
    c = connect(env.url)
    try:
        got = consume_until(c, c.channel(), q, n=1, timeout=0.5)
    finally:
        c.close()
    assert got == []


def test_expired_message_behind_live_one_is_skipped(env):
    """B (expired) sits behind A (alive): fetching A then asking again finds nothing."""
    q = env.queue("skip")
    env.publish("", q, b"A", expiration="60000")
    env.publish("", q, b"B", expiration="100")
    time.sleep(0.3)
    assert env.bodies(q) == [b"A"]


def test_per_message_ttl_behind_longer_one(env):
    """RabbitMQ's caveat: a message whose TTL ran out is removed / dead-lettered only when it
    reaches the head of the queue. OUR broker is specified to do better and dead-letter it on
    time. The two branches below are intentionally different."""
    dlx, dlq = env.dlx_pair()
    q = env.queue("behind", {"x-dead-letter-exchange": dlx})
    c = connect(env.url)
    try:
        cch = c.channel()
        env.publish("", q, b"A", expiration="60000")
        t0 = time.monotonic()
        env.publish("", q, b"B", expiration="500")
        if REFERENCE:
            # REFERENCE (RabbitMQ 3.10): B waits behind A, not dead-lettered, still counted.
            got = consume_until(c, cch, dlq, timeout=1.5)
            assert got == []
            assert env.count(q) == 2
            # once A leaves the head, B is dropped at once (dead-lettered), never delivered
            method, _p, body = env.get(q)
            assert body == b"A"
            got = consume_until(c, cch, dlq, timeout=2)
            assert [g[2] for g in got] == [b"B"]
        else:
            # OURS: B is dead-lettered on time although A is still at the head.
            got = consume_until(c, cch, dlq, timeout=2)
            assert [g[2] for g in got] == [b"B"]
            elapsed = got[0][3] - t0
            assert 0.45 <= elapsed < 1.0, elapsed
            assert env.count(q) == 1
            assert env.get(q)[2] == b"A"
    finally:
        c.close()


@pytest.mark.parametrize("expiration,reason", [
    ("abc", "no_integer"),
    ("", "no_integer"),
    (" 100", "no_integer"),
    ("-1", "{value_negative,-1}"),
    ("1.5", '{leftover_string,".5"}'),
])
def test_invalid_expiration_is_channel_error(env, expiration, reason):
    q = env.queue("badexp")
    exc = env.channel_error(lambda ch: ch.basic_publish(
        "", q, b"x", pika.BasicProperties(expiration=expiration)) or ch.queue_declare(
        q, passive=True))
    assert exc.reply_code == 406
    assert exc.reply_text == f"PRECONDITION_FAILED - invalid expiration '{expiration}': {reason}"


@pytest.mark.parametrize("args,key,reason", [
    ({"x-message-ttl": -1}, "x-message-ttl", "{value_negative,-1}"),
    ({"x-message-ttl": 315_360_000_001}, "x-message-ttl", "{value_too_large,315360000001}"),
    ({"x-message-ttl": "1"}, "x-message-ttl", '"expected integer, got longstr"'),
    ({"x-expires": 0}, "x-expires", "{value_zero,0}"),
    ({"x-expires": -5}, "x-expires", "{value_negative,-5}"),
    ({"x-dead-letter-routing-key": "k"}, "x-dead-letter-routing-key",
     "routing_key_but_no_dlx_defined"),
    ({"x-dead-letter-exchange": "a", "x-dead-letter-routing-key": 5},
     "x-dead-letter-routing-key", "{unacceptable_type,signedint}"),
])
def test_invalid_ttl_and_dlx_arguments(env, args, key, reason):
    q = env.name("badarg")
    exc = env.channel_error(lambda ch: ch.queue_declare(q, arguments=args))
    assert exc.reply_code == 406
    assert exc.reply_text == (
        f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{q}' in vhost '/': {reason}")
    assert not env.exists(q)


def test_invalid_dead_letter_exchange_type(env):
    q = env.name("baddlx")
    exc = env.channel_error(
        lambda ch: ch.queue_declare(q, arguments={"x-dead-letter-exchange": 5}))
    assert exc.reply_code == 406
    assert exc.reply_text == (f"PRECONDITION_FAILED - invalid type 'signedint' for arg "
                              f"'x-dead-letter-exchange' in queue '{q}' in vhost '/'")


def test_max_message_ttl_is_accepted(env):
    q = env.queue("maxttl", {"x-message-ttl": 315_360_000_000})
    env.publish("", q, b"x")
    assert env.count(q) == 1


# ============================================================================================
# x-expires


def test_unused_queue_expires(env):
    q = env.queue("xexp", {"x-expires": 300})
    time.sleep(0.8)
    assert not env.exists(q)


def test_queue_with_consumer_does_not_expire(env):
    q = env.queue("xexpc", {"x-expires": 300})
    c = connect(env.url)
    try:
        cch = c.channel()
        tag = cch.basic_consume(q, lambda *a: None, auto_ack=True)
        pump(c, 0.8)
        assert env.exists(q)
        cch.basic_cancel(tag)
        pump(c, 0.8)
    finally:
        c.close()
    assert not env.exists(q)


def test_redeclare_renews_the_expiry_lease(env):
    q = env.queue("xexpr", {"x-expires": 500})
    time.sleep(0.3)
    env.queue("xexpr", {"x-expires": 500})
    time.sleep(0.4)  # 700 ms after the first declare, 400 ms after the redeclare
    assert env.exists(q)  # (this passive declare renews the lease too)
    time.sleep(0.9)
    assert not env.exists(q)


def test_passive_declare_renews_the_expiry_lease(env):
    q = env.queue("xexpp", {"x-expires": 400})
    for _ in range(6):
        time.sleep(0.2)
        assert env.exists(q)
    time.sleep(0.8)
    assert not env.exists(q)


def test_basic_get_renews_the_expiry_lease(env):
    q = env.queue("xexpg", {"x-expires": 400})
    for _ in range(6):
        time.sleep(0.2)
        assert env.get(q)[0] is None
    time.sleep(0.8)
    assert not env.exists(q)


def test_publishing_does_not_renew_the_expiry_lease(env):
    q = env.queue("xexppub", {"x-expires": 400})
    for _ in range(4):
        env.publish("", q, b"x")
        time.sleep(0.15)
    time.sleep(0.5)
    assert not env.exists(q)


def test_expired_queue_messages_are_not_dead_lettered(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("xexpdl", {"x-expires": 300, "x-dead-letter-exchange": dlx})
    for i in range(3):
        env.publish("", q, f"m{i}".encode())
    time.sleep(0.8)
    assert not env.exists(q)
    assert env.count(dlq) == 0
