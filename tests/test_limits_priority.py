"""Queue length limits, overflow modes, message and consumer priorities, single active consumer.

As RabbitMQ 3.10 does them (reference doc §4); every expectation was checked against a real
RabbitMQ 3.10.8 (AMQP_REFERENCE_URL).

Facts recorded from RabbitMQ 3.10.8 that the reference doc does not spell out:
- x-max-priority 0 is accepted (a queue without priorities); 256 -> {max_value_exceeded,256}.
- In a priority queue, drop-head drops the head *in delivery order*, i.e. the oldest message of
  the HIGHEST priority, not the oldest message.
- x-max-length-bytes counts bodies only (headers are free); a single body larger than the limit
  is dropped (drop-head) or nacked (reject-publish) at once; an empty body always fits.
- x-max-length 0: every message overflows at once (dead-lettered with reason maxlen if a DLX).
- x-single-active-consumer must be a bool: {unacceptable_type,longstr|signedint}. The passive
  declare-ok consumer_count counts all registered consumers, not just the active one.
- A requeue is subject to drop-head: the requeued message is back at the head, so it is the one
  dropped (dead-lettered, reason maxlen). Under reject-publish a requeue may exceed the limit.
- Quirk NOT asserted here: on 3.10, when the active SAC consumer is cancelled while its channel
  still holds unacked messages, the ready backlog is not handed to the next consumer until
  something else kicks the queue (e.g. that channel closing), and new publishes go straight to
  the new active consumer, overtaking the backlog. The tests only cancel consumers with nothing
  pending, so either behaviour passes.
- x-priority on basic.consume: any integer (2**40 accepted); a string/bool is refused with
  `invalid arg 'x-priority' for queue ...: "expected integer, got longstr"`.
"""
from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

from helpers.typed import raw_get
from helpers.dlx import Env, assert_entry, xdeath_entries
from helpers.dlx import env  # noqa: F401 - pytest fixture
from helpers.pika_client import connect, settle
from helpers.wait import HANG_GUARD

pytestmark = pytest.mark.timeout(60)


def publish_many(env: Env, q: str, bodies, **props) -> None:
    for body in bodies:
        env.publish("", q, body, **props)


# ============================================================================================
# x-max-length / x-max-length-bytes, drop-head


def test_max_length_drop_head_keeps_newest(env):
    q = env.queue("ml", {"x-max-length": 3})
    publish_many(env, q, [b"1", b"2", b"3", b"4", b"5"])
    assert env.count(q) == 3
    assert env.bodies(q) == [b"3", b"4", b"5"]


def test_max_length_drop_head_dead_letters_oldest(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("mldl", {"x-max-length": 2, "x-dead-letter-exchange": dlx})
    publish_many(env, q, [b"1", b"2", b"3", b"4"])
    assert env.wait_count(dlq, 2) == 2
    for body in [b"1", b"2"]:
        msg = raw_get(env.url, dlq, wait=HANG_GUARD)
        assert msg.body == body
        (entry,) = xdeath_entries(msg)
        assert_entry(entry, count=1, reason="maxlen", queue=q, exchange="", routing_keys=[q])
    assert env.bodies(q) == [b"3", b"4"]


def test_max_length_zero_drops_everything(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("ml0", {"x-max-length": 0, "x-dead-letter-exchange": dlx})
    env.publish("", q, b"z")
    assert env.count(q) == 0
    msg = raw_get(env.url, dlq, wait=HANG_GUARD)
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="maxlen", queue=q, exchange="", routing_keys=[q])


def test_max_length_bytes_drop_head(env):
    q = env.queue("mlb", {"x-max-length-bytes": 25})
    publish_many(env, q, [b"%010d" % i for i in range(3)])
    assert env.bodies(q) == [b"0000000001", b"0000000002"]


def test_max_length_bytes_counts_bodies_only(env):
    q = env.queue("mlbh", {"x-max-length-bytes": 25})
    publish_many(env, q, [b"%010d" % i for i in range(2)], headers={"big": "x" * 2000})
    assert env.count(q) == 2


def test_max_length_bytes_single_oversized_body_is_dropped(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("mlbbig", {"x-max-length-bytes": 5, "x-dead-letter-exchange": dlx})
    env.publish("", q, b"0123456789")
    assert env.count(q) == 0
    msg = raw_get(env.url, dlq, wait=HANG_GUARD)
    assert msg.body == b"0123456789"
    (entry,) = xdeath_entries(msg)
    assert dict(entry)["reason"] == ("S", "maxlen")
    env.publish("", q, b"")  # an empty body always fits
    assert env.count(q) == 1


def test_both_limits_first_hit_applies(env):
    q = env.queue("mlboth", {"x-max-length": 5, "x-max-length-bytes": 20})
    publish_many(env, q, [b"%010d" % i for i in range(4)])
    assert env.bodies(q) == [b"0000000002", b"0000000003"]
    q2 = env.queue("mlboth2", {"x-max-length": 2, "x-max-length-bytes": 1000})
    publish_many(env, q2, [b"a", b"b", b"c"])
    assert env.bodies(q2) == [b"b", b"c"]


def test_only_ready_messages_count(env):
    q = env.queue("mlready", {"x-max-length": 2})
    publish_many(env, q, [b"1", b"2"])
    m1, _p, _b = env.get(q, auto_ack=False)
    m2, _p, _b = env.get(q, auto_ack=False)
    publish_many(env, q, [b"3", b"4"])  # 2 unacked + 2 ready: nothing dropped
    assert env.count(q) == 2
    env.publish("", q, b"5")  # a third ready one: the oldest READY (3) goes
    assert env.count(q) == 2
    env.ch.basic_ack(m2.delivery_tag, multiple=True)
    assert env.bodies(q) == [b"4", b"5"]


def test_requeue_over_max_length_drop_head_drops_the_requeued_message(env):
    """drop-head enforces the limit on requeue too: the requeued message is back at the head,
    so it is the one dropped (dead-lettered with reason maxlen)."""
    dlx, dlq = env.dlx_pair()
    q = env.queue("mlrq", {"x-max-length": 2, "x-dead-letter-exchange": dlx})
    publish_many(env, q, [b"1", b"2"])
    m1, _p, _b = env.get(q, auto_ack=False)
    env.publish("", q, b"3")
    assert env.count(q) == 2
    env.ch.basic_reject(m1.delivery_tag, requeue=True)
    msg = raw_get(env.url, dlq, wait=HANG_GUARD)
    assert msg.body == b"1"
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="maxlen", queue=q, exchange="", routing_keys=[q])
    assert env.bodies(q) == [b"2", b"3"]


def test_requeue_over_max_length_reject_publish_keeps_all(env):
    """reject-publish only refuses publishes: a requeue may take the queue over its limit."""
    q = env.queue("mlrqrp", {"x-max-length": 2, "x-overflow": "reject-publish"})
    publish_many(env, q, [b"1", b"2"])
    m1, _p, _b = env.get(q, auto_ack=False)
    env.publish("", q, b"3")
    env.ch.basic_reject(m1.delivery_tag, requeue=True)
    assert env.wait_count(q, 3) == 3
    assert env.bodies(q) == [b"1", b"2", b"3"]


# ============================================================================================
# x-overflow reject-publish / reject-publish-dlx


def test_reject_publish_nacks_and_keeps_old(env):
    q = env.queue("rp", {"x-max-length": 2, "x-overflow": "reject-publish"})
    publish_many(env, q, [b"1", b"2"])
    with pytest.raises(pika.exceptions.NackError):
        env.publish("", q, b"3")
    assert env.bodies(q) == [b"1", b"2"]
    env.publish("", q, b"4")  # room again
    assert env.bodies(q) == [b"4"]


def test_reject_publish_bytes(env):
    q = env.queue("rpb", {"x-max-length-bytes": 15, "x-overflow": "reject-publish"})
    env.publish("", q, b"0123456789")
    with pytest.raises(pika.exceptions.NackError):
        env.publish("", q, b"0123456789")
    env.publish("", q, b"01234")
    assert env.count(q) == 2


def test_reject_publish_without_confirms_is_silent(env):
    q = env.queue("rpsilent", {"x-max-length": 1, "x-overflow": "reject-publish"})
    ch = env.conn.channel()
    for body in [b"1", b"2", b"3"]:
        ch.basic_publish("", q, body)
    assert env.count(q) == 1
    assert ch.is_open
    ch.close()
    assert env.bodies(q) == [b"1"]


def test_reject_publish_dlx_dead_letters_the_new_message(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("rpdlx", {"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                            "x-dead-letter-exchange": dlx})
    env.publish("", q, b"old")
    with pytest.raises(pika.exceptions.NackError):
        env.publish("", q, b"new")
    msg = raw_get(env.url, dlq, wait=HANG_GUARD)
    assert msg.body == b"new"
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="maxlen", queue=q, exchange="", routing_keys=[q])
    assert env.bodies(q) == [b"old"]


def test_reject_publish_counts_only_ready(env):
    q = env.queue("rpready", {"x-max-length": 1, "x-overflow": "reject-publish"})
    env.publish("", q, b"1")
    m, _p, _b = env.get(q, auto_ack=False)
    env.publish("", q, b"2")  # 1 unacked + 0 ready: accepted
    with pytest.raises(pika.exceptions.NackError):
        env.publish("", q, b"3")
    env.ch.basic_ack(m.delivery_tag)
    assert env.bodies(q) == [b"2"]


def test_one_rejecting_queue_nacks_but_others_still_get_it(env):
    fx = env.exchange("rpfan")
    full = env.queue("rpfull", {"x-max-length": 1, "x-overflow": "reject-publish"})
    other = env.queue("rpother")
    env.bind(full, fx)
    env.bind(other, fx)
    env.publish(fx, "", b"1")
    with pytest.raises(pika.exceptions.NackError):
        env.publish(fx, "", b"2")
    assert env.bodies(full) == [b"1"]
    assert env.bodies(other) == [b"1", b"2"]


@pytest.mark.parametrize("args,key,reason", [
    ({"x-max-length": -1}, "x-max-length", "{value_negative,-1}"),
    ({"x-max-length-bytes": -1}, "x-max-length-bytes", "{value_negative,-1}"),
    ({"x-max-length-bytes": "1"}, "x-max-length-bytes", '"expected integer, got longstr"'),
    ({"x-overflow": "drop-tail"}, "x-overflow", "invalid_overflow"),
    ({"x-overflow": 1}, "x-overflow", "{unacceptable_type,signedint}"),
])
def test_invalid_limit_arguments(env, args, key, reason):
    q = env.name("badlim")
    exc = env.channel_error(lambda ch: ch.queue_declare(q, arguments=args))
    assert exc.reply_code == 406
    assert exc.reply_text == (
        f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{q}' in vhost '/': {reason}")
    assert not env.exists(q)


# ============================================================================================
# x-max-priority


def _prio_publish(env, q, items):
    for body, prio in items:
        kw = {} if prio is None else {"priority": prio}
        env.publish("", q, body, **kw)


def test_priority_order_and_fifo_within_priority(env):
    q = env.queue("prio", {"x-max-priority": 10})
    _prio_publish(env, q, [(b"p1", 1), (b"p5a", 5), (b"none", None), (b"p10", 10),
                           (b"p5b", 5), (b"p0", 0)])
    assert env.bodies(q) == [b"p10", b"p5a", b"p5b", b"p1", b"none", b"p0"]


def test_priority_above_max_is_treated_as_max(env):
    q = env.queue("prmax", {"x-max-priority": 5})
    _prio_publish(env, q, [(b"a5", 5), (b"b9", 9), (b"c3", 3), (b"d200", 200), (b"e5", 5)])
    assert env.bodies(q) == [b"a5", b"b9", b"d200", b"e5", b"c3"]


def test_priority_property_delivered_unchanged(env):
    q = env.queue("prprop", {"x-max-priority": 5})
    env.publish("", q, b"x", priority=9)
    _m, props, _b = env.get(q)
    assert props.priority == 9


def test_priority_ignored_without_max_priority(env):
    q = env.queue("prnone")
    _prio_publish(env, q, [(b"1", 1), (b"9", 9), (b"5", 5)])
    assert env.bodies(q) == [b"1", b"9", b"5"]


def test_max_priority_zero_is_accepted_and_means_no_priorities(env):
    q = env.queue("pr0", {"x-max-priority": 0})
    _prio_publish(env, q, [(b"1", 1), (b"9", 9)])
    assert env.bodies(q) == [b"1", b"9"]


def test_priority_consumer_gets_backlog_in_priority_order(env):
    q = env.queue("prcons", {"x-max-priority": 3})
    _prio_publish(env, q, [(b"l1", 1), (b"h1", 3), (b"m1", 2), (b"h2", 3), (b"l2", 1)])
    c = connect(env.url)
    try:
        ch = c.channel()
        ch.basic_qos(prefetch_count=1)
        got = []

        def on_msg(channel, method, _props, body):
            got.append(body)
            channel.basic_ack(method.delivery_tag)

        ch.basic_consume(q, on_msg)
        deadline = time.monotonic() + HANG_GUARD
        while len(got) < 5 and time.monotonic() < deadline:
            c.process_data_events(0.02)
    finally:
        c.close()
    assert got == [b"h1", b"h2", b"m1", b"l1", b"l2"]


def test_priority_requeued_message_goes_back_to_its_level(env):
    q = env.queue("prrq", {"x-max-priority": 5})
    _prio_publish(env, q, [(b"low", 1), (b"high", 5)])
    m, _p, body = env.get(q, auto_ack=False)
    assert body == b"high"
    env.publish("", q, b"high2", priority=5)
    env.ch.basic_reject(m.delivery_tag, requeue=True)
    assert env.wait_count(q, 3) == 3
    assert env.bodies(q) == [b"high", b"high2", b"low"]


def test_priority_queue_drop_head_drops_highest_priority(env):
    q = env.queue("prml", {"x-max-priority": 5, "x-max-length": 2})
    _prio_publish(env, q, [(b"1", 1), (b"5", 5), (b"3", 3)])
    assert env.bodies(q) == [b"3", b"1"]


@pytest.mark.parametrize("value,reason", [
    (256, "{max_value_exceeded,256}"),
    (-1, "{value_negative,-1}"),
    ("a", '"expected integer, got longstr"'),
    (True, '"expected integer, got bool"'),
])
def test_invalid_max_priority(env, value, reason):
    q = env.name("badprio")
    exc = env.channel_error(lambda ch: ch.queue_declare(q, arguments={"x-max-priority": value}))
    assert exc.reply_code == 406
    assert exc.reply_text == (f"PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue "
                              f"'{q}' in vhost '/': {reason}")
    assert not env.exists(q)


def test_max_priority_255_is_accepted(env):
    q = env.queue("pr255", {"x-max-priority": 255})
    _prio_publish(env, q, [(b"a", 200), (b"b", 255)])
    assert env.bodies(q) == [b"b", b"a"]


# ============================================================================================
# consumer priorities (x-priority on basic.consume)


class Collector:
    def __init__(self):
        self.got: list[tuple[str, bytes]] = []

    def cb(self, name):
        def on_msg(_ch, _method, _props, body):
            self.got.append((name, body))
        return on_msg


def test_higher_priority_consumer_served_while_it_has_credit(env):
    q = env.queue("cprio")
    c = connect(env.url)
    try:
        col = Collector()
        hi = c.channel()
        hi.basic_qos(prefetch_count=2)
        lo = c.channel()
        lo.basic_qos(prefetch_count=10)
        lo.basic_consume(q, col.cb("lo"), arguments={"x-priority": 1})
        hi_tag = hi.basic_consume(q, col.cb("hi"), arguments={"x-priority": 10})
        publish_many(env, q, [str(i).encode() for i in range(6)])
        settle(c, 0.4)
        assert col.got == [("hi", b"0"), ("hi", b"1"), ("lo", b"2"), ("lo", b"3"),
                           ("lo", b"4"), ("lo", b"5")]
        # credit back for hi: it is served first again
        hi.basic_ack(0, multiple=True)
        settle(c, 0.1)
        publish_many(env, q, [b"6", b"7", b"8"])
        settle(c, 0.4)
        assert col.got[6:] == [("hi", b"6"), ("hi", b"7"), ("lo", b"8")]
        hi.basic_cancel(hi_tag)
    finally:
        c.close()


def test_default_priority_beats_negative_priority(env):
    q = env.queue("cprioneg")
    c = connect(env.url)
    try:
        col = Collector()
        neg = c.channel()
        neg.basic_consume(q, col.cb("neg"), auto_ack=True, arguments={"x-priority": -5})
        dflt = c.channel()
        dflt.basic_consume(q, col.cb("default"), auto_ack=True)
        publish_many(env, q, [b"1", b"2", b"3"])
        settle(c, 0.3)
        assert [n for n, _ in col.got] == ["default"] * 3
    finally:
        c.close()


def test_equal_priority_consumers_round_robin(env):
    q = env.queue("cprr")
    c = connect(env.url)
    try:
        col = Collector()
        a = c.channel()
        a.basic_consume(q, col.cb("a"), auto_ack=True, arguments={"x-priority": 3})
        b = c.channel()
        b.basic_consume(q, col.cb("b"), auto_ack=True, arguments={"x-priority": 3})
        publish_many(env, q, [str(i).encode() for i in range(6)])
        settle(c, 0.4)
        assert sorted(col.got) == [("a", b"0"), ("a", b"2"), ("a", b"4"),
                                   ("b", b"1"), ("b", b"3"), ("b", b"5")]
    finally:
        c.close()


def test_blocked_high_priority_consumer_gets_messages_when_unblocked(env):
    """With only a blocked high-priority consumer and a low one, the backlog goes to the low
    one; the high one gets new messages once it has credit again."""
    q = env.queue("cpblk")
    c = connect(env.url)
    try:
        col = Collector()
        hi = c.channel()
        hi.basic_qos(prefetch_count=1)
        hi.basic_consume(q, col.cb("hi"), arguments={"x-priority": 5})
        lo = c.channel()
        lo.basic_qos(prefetch_count=1)
        lo.basic_consume(q, col.cb("lo"))
        publish_many(env, q, [b"1", b"2", b"3"])
        settle(c, 0.3)
        assert col.got == [("hi", b"1"), ("lo", b"2")]
        assert env.count(q) == 1
        hi.basic_ack(0, multiple=True)
        settle(c, 0.3)
        assert col.got[2:] == [("hi", b"3")]
    finally:
        c.close()


@pytest.mark.parametrize("value,reason", [
    ("a", '"expected integer, got longstr"'),
    (True, '"expected integer, got bool"'),
])
def test_invalid_consumer_priority(env, value, reason):
    q = env.queue("cpbad")
    exc = env.channel_error(lambda ch: ch.basic_consume(q, lambda *a: None,
                                                        arguments={"x-priority": value}))
    assert exc.reply_code == 406
    assert exc.reply_text == (f"PRECONDITION_FAILED - invalid arg 'x-priority' for queue "
                              f"'{q}' in vhost '/': {reason}")


# ============================================================================================
# x-single-active-consumer


def test_sac_only_first_consumer_receives(env):
    q = env.queue("sac", {"x-single-active-consumer": True})
    c = connect(env.url)
    try:
        col = Collector()
        first = c.channel()
        first.basic_consume(q, col.cb("first"), auto_ack=True)
        second = c.channel()
        second.basic_consume(q, col.cb("second"), auto_ack=True)
        publish_many(env, q, [str(i).encode() for i in range(5)])
        settle(c, 0.4)
        assert col.got == [("first", str(i).encode()) for i in range(5)]
    finally:
        c.close()


def test_sac_next_consumer_takes_over_after_cancel(env):
    q = env.queue("sacc", {"x-single-active-consumer": True})
    c = connect(env.url)
    try:
        col = Collector()
        first = c.channel()
        tag1 = first.basic_consume(q, col.cb("first"), auto_ack=True)
        second = c.channel()
        second.basic_consume(q, col.cb("second"), auto_ack=True)
        third = c.channel()
        tag3 = third.basic_consume(q, col.cb("third"), auto_ack=True)
        publish_many(env, q, [b"1", b"2"])
        settle(c, 0.3)
        first.basic_cancel(tag1)
        publish_many(env, q, [b"3", b"4"])
        settle(c, 0.3)
        third.basic_cancel(tag3)  # not the active one: changes nothing
        publish_many(env, q, [b"5"])
        settle(c, 0.3)
        assert col.got == [("first", b"1"), ("first", b"2"), ("second", b"3"),
                           ("second", b"4"), ("second", b"5")]
    finally:
        c.close()


def test_sac_takeover_on_disconnect_redelivers_unacked_first(env):
    q = env.queue("sacd", {"x-single-active-consumer": True})
    c1 = connect(env.url)
    c2 = connect(env.url)
    try:
        col = Collector()
        ch1 = c1.channel()
        ch1.basic_qos(prefetch_count=2)
        ch1.basic_consume(q, col.cb("first"))  # manual ack, never acks
        ch2 = c2.channel()
        got2 = []
        ch2.basic_consume(q, lambda ch, m, p, b: got2.append((b, m.redelivered)), auto_ack=True)
        publish_many(env, q, [b"1", b"2", b"3", b"4"])
        settle(c1, 0.3)
        settle(c2, 0.1)
        assert col.got == [("first", b"1"), ("first", b"2")]
        assert got2 == []
        c1.close()
        settle(c2, 0.5)
        assert got2 == [(b"1", True), (b"2", True), (b"3", False), (b"4", False)]
    finally:
        if c1.is_open:
            c1.close()
        c2.close()


def test_sac_exclusive_consume_refused(env):
    q = env.queue("sacx", {"x-single-active-consumer": True})
    exc = env.channel_error(lambda ch: ch.basic_consume(q, lambda *a: None, exclusive=True))
    assert exc.reply_code == 403
    assert exc.reply_text == f"ACCESS_REFUSED - queue '{q}' in vhost '/' in exclusive use"


def test_sac_passive_declare_counts_all_consumers(env):
    q = env.queue("sacn", {"x-single-active-consumer": True})
    c = connect(env.url)
    try:
        a = c.channel()
        a.basic_consume(q, lambda *a: None, auto_ack=True)
        b = c.channel()
        b.basic_consume(q, lambda *a: None, auto_ack=True)
        ok = env.ch.queue_declare(q, passive=True).method
        assert (ok.message_count, ok.consumer_count) == (0, 2)
    finally:
        c.close()


def test_sac_redeclare_must_match(env):
    q = env.queue("sacr", {"x-single-active-consumer": True})
    exc = env.channel_error(lambda ch: ch.queue_declare(q))
    assert exc.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for queue '{q}' in "
        "vhost '/': received none but current is the value 'true' of type 'bool'")
    exc = env.channel_error(
        lambda ch: ch.queue_declare(q, arguments={"x-single-active-consumer": False}))
    assert exc.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for queue '{q}' in "
        "vhost '/': received 'false' but current is 'true'")


@pytest.mark.parametrize("value,reason", [
    ("yes", "{unacceptable_type,longstr}"),
    (1, "{unacceptable_type,signedint}"),
])
def test_sac_invalid_value(env, value, reason):
    q = env.name("sacbad")
    exc = env.channel_error(
        lambda ch: ch.queue_declare(q, arguments={"x-single-active-consumer": value}))
    assert exc.reply_code == 406
    assert exc.reply_text == (f"PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' "
                              f"for queue '{q}' in vhost '/': {reason}")


def test_sac_false_is_a_normal_queue(env):
    q = env.queue("sacf", {"x-single-active-consumer": False})
    c = connect(env.url)
    try:
        col = Collector()
        a = c.channel()
        a.basic_consume(q, col.cb("a"), auto_ack=True)
        b = c.channel()
        b.basic_consume(q, col.cb("b"), auto_ack=True)
        publish_many(env, q, [b"1", b"2"])
        settle(c, 0.3)
        assert sorted(n for n, _ in col.got) == ["a", "b"]
    finally:
        c.close()
