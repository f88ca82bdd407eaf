"""Dead-lettering, as RabbitMQ 3.10 does it (reference doc §2-§3): the delayed-order flow, x-death
field by field and type by type for each reason, repeated deaths.

Every expectation was checked against a real RabbitMQ 3.10.8 (AMQP_REFERENCE_URL). x-death is
checked on the wire, type letter by type letter and key by key, with `amqp_typed` (a raw
content-header decoder): client libraries hide both the AMQP types and the key order.

The other parts: test_dlx_routing.py (routing keys, properties, cycles, missing DLX),
test_message_ttl.py (TTL), test_queue_expiry.py (x-expires).

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

from helpers.typed import RawClient, encode_content_header
from helpers.dlx import (
    FIRST_DEATH_KEYS,
    assert_entry,
    assert_first_death,
    dl_get,
    xdeath_entries,
)
from helpers.dlx import env  # noqa: F401 - pytest fixture
from helpers.pika_client import connect, pump
from helpers.wait import wait_until

pytestmark = pytest.mark.timeout(60)


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
        assert pump(consumer, lambda: got), "the delayed order never arrived"
        method, props, body, t1 = got[0]
        elapsed = t1 - t0
        assert elapsed >= 0.25, elapsed  # not before the TTL (how much later is no concern here)
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

        assert wait_until(lambda: env.count(a) == 1)
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

        assert wait_until(lambda: env.count(a) == 1)
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
    msg2 = dl_get(env, observer)
    e_exp, e_rej = xdeath_entries(msg2)
    assert_entry(e_exp, count=1, reason="expired", queue=q, exchange=fx, routing_keys=[q],
                 sorted_keys=True)
    assert_entry(e_rej, count=1, reason="rejected", queue=q, exchange="", routing_keys=[q])
    assert_first_death(msg2, reason="rejected", queue=q, exchange="")
    time.sleep(0.6)
    assert env.count(q) == 0
    assert env.count(observer) == 0
