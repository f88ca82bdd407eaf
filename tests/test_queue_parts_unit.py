"""Unit tests for the queue core's collaborators: LengthLimit (queue_limits), ConsumerSet
(queue_consumers), MessageTTL (queue_ttl) and the timer heap's `schedule` (expiry), and for
the live ready count they must all agree on (Queue.message_count).

The disk segment (queue_paging) has its own module, test_queue_paging_unit.py."""
from __future__ import annotations

import asyncio

import pytest

from amqp_broker import queue_drop
from amqp_broker.args import Arguments
from amqp_broker.errors import AMQPError
from amqp_broker.expiry import Expirer, now_ms
from amqp_broker.queue_consumers import ConsumerSet
from amqp_broker.queue_entry import GONE, READY, QueueEntry
from amqp_broker.queue_limits import LengthLimit
from amqp_broker.vhost import VHost
from helpers.queue_fakes import FakeConsumer, FakeExpirer, message, ttl_queue

# --------------------------------------------------------------------------------------------
# LengthLimit


def test_no_limit_is_none():
    assert LengthLimit.of(None, None, None) is None
    assert LengthLimit.of(None, None, "reject-publish") is None


def test_overflow_modes():
    head = LengthLimit.of(2, None, None)
    assert head.drops_head and not head.dead_letters_refused
    assert LengthLimit.of(2, None, "drop-head").drops_head
    reject = LengthLimit.of(2, None, "reject-publish")
    assert not reject.drops_head and not reject.dead_letters_refused
    dlx = LengthLimit.of(None, 10, "reject-publish-dlx")
    assert not dlx.drops_head and dlx.dead_letters_refused


def test_refuses_counts_the_newcomer():
    limit = LengthLimit.of(2, None, "reject-publish")
    assert not limit.refuses(1, 0, 5)
    assert limit.refuses(2, 0, 5)
    by_bytes = LengthLimit.of(None, 10, "reject-publish")
    assert not by_bytes.refuses(3, 5, 5)  # exactly at the limit: accepted
    assert by_bytes.refuses(3, 6, 5)
    assert by_bytes.refuses(0, 0, 11)  # a single oversized body


def test_exceeded_either_limit_first():
    limit = LengthLimit.of(3, 100, None)
    assert not limit.exceeded(3, 100)
    assert limit.exceeded(4, 0)
    assert limit.exceeded(0, 101)
    assert LengthLimit.of(0, None, None).exceeded(1, 0)


def test_trim_drops_oldest_and_skips_tombstones():
    q = ttl_queue(**{"x-max-length": 2})
    q.enqueue(message(b"dies", ttl=100))
    q.enqueue(message(b"a"))
    q.vhost.expirer.fire()  # "dies" becomes a tombstone at the head
    assert (len(q.ready), q.message_count) == (2, 1)
    q.enqueue(message(b"b"))
    assert q.message_count == 2 and q.dead == [(b"dies", "expired")]
    q.enqueue(message(b"c"))  # over: the oldest live one goes, past the tombstone
    assert q.dead[-1] == (b"a", "maxlen")
    assert [e.msg.body for e in q.ready if e.state == READY] == [b"b", b"c"]
    assert q.tombstones == 0 and q.message_bytes == 2


def test_reject_publish_refuses_and_keeps_what_is_queued():
    q = ttl_queue(**{"x-max-length": 1, "x-overflow": "reject-publish-dlx"})
    assert q.enqueue(message(b"a")) is True
    assert q.enqueue(message(b"b")) is False
    assert q.dead == [(b"b", "maxlen")] and q.message_count == 1


def test_a_lower_limit_from_a_policy_trims_at_once():
    q = ttl_queue()
    for body in (b"1", b"2", b"3"):
        q.enqueue(message(body))
    q.configure({"x-max-length": 1})
    assert q.message_count == 1 and [b for b, _ in q.dead] == [b"1", b"2"]


# --------------------------------------------------------------------------------------------
# ConsumerSet


def test_round_robin_skips_consumers_without_credit():
    cs = ConsumerSet()
    a, b, c = FakeConsumer("a"), FakeConsumer("b", credit=0), FakeConsumer("c")
    for x in (a, b, c):
        cs.add(x)
    pick = cs.chooser()
    assert [pick() for _ in range(4)] == [a, c, a, c]
    b.credit = 1
    assert [pick() for _ in range(3)] == [a, b, c]


def test_round_robin_with_nobody_free():
    cs = ConsumerSet()
    assert cs.chooser()() is None
    cs.add(FakeConsumer("a", credit=0))
    assert cs.chooser()() is None


def test_priorities_pick_the_highest_with_credit():
    cs = ConsumerSet()
    low, high1, high2 = FakeConsumer("low"), FakeConsumer("h1", priority=5), FakeConsumer("h2", priority=5)
    for x in (low, high1, high2):
        cs.add(x)
    pick = cs.chooser()
    assert pick == cs.highest_priority
    assert [pick() for _ in range(4)] == [high1, high2, high1, high2]
    high1.credit = high2.credit = 0
    assert pick() is low
    cs.remove(high1)
    cs.remove(high2)
    assert cs.chooser() == cs.round_robin  # nobody with a priority left


def test_negative_priority_loses_to_default():
    cs = ConsumerSet()
    neg, default = FakeConsumer("neg", priority=-1), FakeConsumer("default")
    cs.add(neg)
    cs.add(default)
    assert cs.chooser()() is default


def test_single_active_consumer_waits_for_the_first():
    cs = ConsumerSet(single_active=True)
    first, second = FakeConsumer("first", credit=0), FakeConsumer("second")
    cs.add(first)
    cs.add(second)
    pick = cs.chooser()
    assert pick() is None  # the active one is busy: the other one does not step in
    first.credit = 1
    assert pick() is first
    cs.remove(first)
    assert pick() is second


def test_membership_exclusive_and_had_consumer():
    cs = ConsumerSet()
    assert not cs.had_consumer and cs.exclusive is None
    x = FakeConsumer("x", exclusive=True)
    cs.add(x)
    assert cs.exclusive is x and cs.had_consumer
    assert cs.remove(FakeConsumer("stranger")) is False
    assert cs.remove(x) is True
    assert cs.exclusive is None and cs.had_consumer and not cs.members


def test_queue_switches_rule_as_consumers_come_and_go():
    q = ttl_queue()
    plain, vip = FakeConsumer("plain"), FakeConsumer("vip", priority=3)
    q.add_consumer(plain)
    q.add_consumer(vip)
    for body in (b"1", b"2"):
        q.enqueue(message(body))
    assert vip.got == [b"1", b"2"] and plain.got == []
    q.remove_consumer(vip)
    q.enqueue(message(b"3"))
    assert plain.got == [b"3"]


# --------------------------------------------------------------------------------------------
# MessageTTL and the live count


def test_expired_entry_becomes_a_tombstone_that_no_longer_counts():
    q = ttl_queue(**{"x-message-ttl": 60_000})
    q.enqueue(message(b"old", ttl=1000))  # the smaller TTL wins
    q.enqueue(message(b"live"))
    assert q.message_count == 2 and q.message_bytes == 7
    q.vhost.expirer.fire(upto=now_ms() + 1500)
    assert q.dead == [(b"old", "expired")]
    assert (len(q.ready), q.tombstones, q.message_count, q.message_bytes) == (2, 1, 1, 4)
    entry = q.take()
    assert entry.msg.body == b"live" and q.tombstones == 0 and q.message_count == 0
    assert q.take() is None


def test_only_tombstones_left_means_empty_everywhere():
    q = ttl_queue(**{"x-message-ttl": 1000})
    for body in (b"1", b"2"):
        q.enqueue(message(body))
    q.vhost.expirer.fire()
    assert q.ready and q.message_count == 0  # `ready` is not a count
    assert queue_drop.purge(q) == 0
    assert not q.ready and q.tombstones == 0


def test_delivered_entry_is_left_alone_and_expires_when_requeued_late():
    q = ttl_queue()
    q.enqueue(message(b"m", ttl=1000))
    entry = q.take()
    q.vhost.expirer.fire()  # out with a consumer: not expired
    assert q.dead == [] and entry.state != GONE
    entry.expires_at = now_ms() - 1  # the requeue comes after its expiry
    q.requeue([entry])
    assert q.dead == [(b"m", "expired")] and q.message_count == 0 and not q.ready


def test_requeue_before_expiry_keeps_the_timer():
    q = ttl_queue()
    q.enqueue(message(b"m", ttl=60_000))
    entry = q.take()
    q.requeue([entry])
    assert q.message_count == 1 and entry.redelivered
    q.vhost.expirer.fire()  # the original timer still applies
    assert q.dead == [(b"m", "expired")] and q.message_count == 0


def test_expiry_after_delete_does_nothing():
    q = ttl_queue()
    q.enqueue(message(b"m", ttl=10))
    queue_drop.discard_all(q)
    q.vhost.expirer.fire()
    assert q.dead == [] and q.tombstones == 0


def test_ttl_zero_expires_on_arrival_without_a_free_consumer():
    q = ttl_queue(**{"x-message-ttl": 0})
    q.enqueue(message(b"gone"))
    assert q.dead == [(b"gone", "expired")] and q.message_count == 0
    c = FakeConsumer("c")
    q.add_consumer(c)
    q.enqueue(message(b"now"))
    assert c.got == [b"now"]


def test_delete_if_empty_asks_the_live_count():
    """vhost.delete_queue(if_empty): tombstones do not make a queue non-empty, and messages
    that are only on disk (ready list empty) do."""
    vhost = VHost("/", expirer=FakeExpirer())
    expired, _, _ = vhost.declare_queue("expired", False, False, False, False, Arguments.from_plain({"x-message-ttl": 5}), None)
    expired.enqueue(message(b"m"))
    vhost.expirer.fire()
    assert expired.ready and expired.message_count == 0
    assert vhost.delete_queue("expired", False, True, None) == 0
    assert "expired" not in vhost.queues

    on_disk, _, _ = vhost.declare_queue("on-disk", False, False, False, False, Arguments(), None)
    on_disk.recover(3, 1, 3, 0)  # a restart found three stored messages
    assert not on_disk.ready and on_disk.message_count == 3
    with pytest.raises(AMQPError) as err:
        vhost.delete_queue("on-disk", False, True, None)
    assert err.value.code == 406
    assert vhost.delete_queue("on-disk", False, False, None) == 3


def test_x_expires_lease_removes_an_unused_queue():
    async def scenario():
        q = ttl_queue(**{"x-expires": 10})
        q.touch()
        for _ in range(200):
            if q.vhost.removed:
                break
            await asyncio.sleep(0.01)
        assert q.vhost.removed == [q]
        used = ttl_queue(**{"x-expires": 10})
        used.add_consumer(FakeConsumer("c"))  # the countdown only runs without consumers
        await asyncio.sleep(0.05)
        assert used.vhost.removed == []

    asyncio.run(scenario())


# --------------------------------------------------------------------------------------------
# Expirer.schedule


def test_schedule_calls_function_with_owner_and_arg_once_due():
    async def scenario():
        expirer = Expirer()
        calls = []
        now = now_ms()
        expirer.schedule(now + 30, list.append, calls, "late")
        expirer.schedule(now, list.append, calls, "first")
        expirer.schedule(now + 1, list.append, calls, "same-bucket")
        assert len(expirer) == 3
        for _ in range(300):
            if not len(expirer):
                break
            await asyncio.sleep(0.005)
        assert len(expirer) == 0
        assert calls[-1] == "late" and sorted(calls[:2]) == ["first", "same-bucket"]
        expirer.close()

    asyncio.run(scenario())


def test_schedule_never_fires_early_and_survives_a_failing_callback():
    async def scenario():
        expirer = Expirer()
        fired = []

        def record(due, _arg):
            fired.append(now_ms() >= due)

        def fail(_owner, _arg):
            raise RuntimeError("boom")

        due = now_ms() + 20
        expirer.schedule(due, fail, None, None)
        expirer.schedule(due, record, due, None)
        for _ in range(300):
            if fired:
                break
            await asyncio.sleep(0.005)
        assert fired == [True]
        expirer.close()

    asyncio.run(scenario())


def test_entry_defaults():
    e = QueueEntry("m", 3)
    assert (e.state, e.expires_at, e.redelivered) == (READY, None, False)
