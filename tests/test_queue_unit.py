"""Unit tests for amqp_broker.queue (Queue, QueueEntry) with fake consumers: FIFO order,
round-robin among consumers with credit, requeue to the original position (redelivered),
purge, and drain stopping when nobody has credit."""
from __future__ import annotations

import random

import pytest

from amqp_broker import queue_drop
from amqp_broker.queue import Queue, QueueEntry


class FakeConsumer:
    """What Queue needs from a consumer: can_take(), deliver(entry), exclusive."""

    def __init__(self, name: str, credit: int | None = None, exclusive: bool = False):
        self.name = name
        self.credit = credit  # None: unlimited
        self.exclusive = exclusive
        self.priority = 0
        self.got: list[QueueEntry] = []

    def can_take(self) -> bool:
        return self.credit is None or self.credit > 0

    def deliver(self, entry: QueueEntry) -> None:
        assert self.can_take(), f"{self.name} got a delivery without credit"
        self.got.append(entry)
        if self.credit is not None:
            self.credit -= 1

    @property
    def msgs(self):
        return [e.msg for e in self.got]

    def __repr__(self):
        return f"<Fake {self.name}>"


class M:
    """A message stand-in: equal to the plain value it wraps, with the attributes Queue reads."""

    __slots__ = ("v",)
    ttl = None

    def __init__(self, v):
        self.v = v

    @property
    def body(self) -> bytes:
        return str(self.v).encode()

    def __eq__(self, other):
        return self.v == (other.v if isinstance(other, M) else other)

    def __lt__(self, other):
        return self.v < (other.v if isinstance(other, M) else other)

    def __hash__(self):
        return hash(self.v)

    def __repr__(self):
        return repr(self.v)


class StrQueue(Queue):
    """A Queue that accepts plain values as messages (wrapped in M)."""

    def enqueue(self, msg) -> bool:
        return super().enqueue(msg if isinstance(msg, M) else M(msg))


def make_queue(name="q", **kwargs) -> Queue:
    return StrQueue(None, name, **kwargs)


def seqs(queue: Queue):
    return [e.seq for e in queue.ready]


def msgs(queue: Queue):
    return [e.msg for e in queue.ready]


# --------------------------------------------------------------------------- basics


def test_new_queue_defaults():
    q = Queue("vhost", "q", durable=True, exclusive_owner="conn", auto_delete=True,
              arguments={"x-max-length": 1}, typed_arguments={"x-max-length": ("I", 1)})
    assert (q.vhost, q.name, q.durable, q.exclusive_owner, q.auto_delete) == ("vhost", "q", True, "conn", True)
    assert q.arguments == {"x-max-length": 1} and q.typed_arguments == {"x-max-length": ("I", 1)}
    q = make_queue()
    assert q.arguments == {} and q.typed_arguments == {}
    assert q.message_count == 0 and q.consumer_count == 0
    assert q.take() is None
    assert not q.had_consumer and not q.deleted
    assert "q" in repr(q)


def test_fifo_without_consumers():
    q = make_queue()
    for i in range(10):
        assert q.enqueue(f"m{i}") is True
    assert q.message_count == 10
    assert seqs(q) == list(range(1, 11))
    assert [e.redelivered for e in q.ready] == [False] * 10
    out = [q.take() for _ in range(10)]
    assert [e.msg for e in out] == [f"m{i}" for i in range(10)]
    assert q.take() is None and q.message_count == 0
    assert q.stats_published == 10 and q.stats_delivered == 10


def test_entry_fields():
    e = QueueEntry("m", 7)
    assert (e.msg, e.seq, e.redelivered) == ("m", 7, False)
    assert QueueEntry("m", 1, True).redelivered is True


def test_enqueue_goes_straight_to_a_consumer_with_credit():
    q = make_queue()
    c = FakeConsumer("c")
    q.add_consumer(c)
    q.enqueue("a")
    assert c.msgs == ["a"] and q.message_count == 0
    assert q.stats_delivered == 1 and q.had_consumer


def test_enqueue_keeps_fifo_when_messages_are_waiting():
    """A consumer that just got credit must not receive a new message ahead of older ready
    ones: enqueue only bypasses the queue when nothing is waiting."""
    q = make_queue()
    c = FakeConsumer("c", credit=0)
    q.add_consumer(c)
    q.enqueue("a")
    q.enqueue("b")
    assert c.msgs == [] and msgs(q) == ["a", "b"]
    c.credit = 5
    q.enqueue("c")  # ready is not empty: appended, not delivered
    assert c.msgs == [] and msgs(q) == ["a", "b", "c"]
    q.drain()
    assert c.msgs == ["a", "b", "c"] and q.message_count == 0
    q.enqueue("d")
    assert c.msgs == ["a", "b", "c", "d"]


def test_add_consumer_drains():
    q = make_queue()
    for m in "abc":
        q.enqueue(m)
    c = FakeConsumer("c", credit=2)
    q.add_consumer(c)
    assert c.msgs == ["a", "b"] and msgs(q) == ["c"]


# --------------------------------------------------------------------------- round-robin / credit


def test_round_robin_among_consumers_with_unlimited_credit():
    q = make_queue()
    cs = [FakeConsumer(n) for n in "xyz"]
    for c in cs:
        q.add_consumer(c)
    for i in range(9):
        q.enqueue(i)
    assert [c.msgs for c in cs] == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]


def test_round_robin_when_draining_a_backlog():
    q = make_queue()
    for i in range(7):
        q.enqueue(i)
    a, b = FakeConsumer("a", credit=0), FakeConsumer("b", credit=0)
    q.add_consumer(a)
    q.add_consumer(b)
    a.credit = b.credit = 10
    q.drain()
    assert a.msgs == [0, 2, 4, 6] and b.msgs == [1, 3, 5]


def test_round_robin_skips_consumers_without_credit():
    q = make_queue()
    a, b, c = FakeConsumer("a", credit=1), FakeConsumer("b", credit=0), FakeConsumer("c", credit=3)
    for x in (a, b, c):
        q.add_consumer(x)
    for i in range(6):
        q.enqueue(i)
    assert a.msgs == [0]
    assert b.msgs == []
    assert c.msgs == [1, 2, 3]
    assert msgs(q) == [4, 5]


def test_drain_stops_when_no_consumer_has_credit_and_resumes():
    q = make_queue()
    a, b = FakeConsumer("a", credit=2), FakeConsumer("b", credit=1)
    q.add_consumer(a)
    q.add_consumer(b)
    for i in range(10):
        q.enqueue(i)
    assert a.msgs == [0, 2] and b.msgs == [1]
    assert msgs(q) == list(range(3, 10))
    q.drain()  # nobody has credit: nothing moves, no busy loop
    assert msgs(q) == list(range(3, 10))
    b.credit = 2
    q.drain()
    assert b.msgs[-2:] == [3, 4] and msgs(q) == list(range(5, 10))
    a.credit = b.credit = None
    q.drain()
    assert q.message_count == 0
    delivered = sorted(e.seq for e in a.got + b.got)
    assert delivered == list(range(1, 11))


def test_drain_without_consumers_or_messages_is_a_noop():
    q = make_queue()
    q.drain()
    q.enqueue("a")
    q.drain()
    assert msgs(q) == ["a"]
    q.add_consumer(FakeConsumer("c", credit=0))
    q.take()
    q.drain()


def test_remove_consumer_and_exclusive_consumer():
    q = make_queue()
    a, b = FakeConsumer("a", exclusive=True), FakeConsumer("b")
    q.add_consumer(a)
    assert q.exclusive_consumer is a
    q.add_consumer(b)
    assert q.consumer_count == 2
    q.remove_consumer(a)
    assert q.exclusive_consumer is None and q.consumer_count == 1
    q.remove_consumer(a)  # unknown: ignored
    q.remove_consumer(FakeConsumer("never-added"))
    q.enqueue("m")
    assert b.msgs == ["m"] and a.msgs == []
    q.remove_consumer(b)
    assert q.consumer_count == 0 and q.had_consumer
    q.enqueue("n")
    assert msgs(q) == ["n"]


def test_removing_non_exclusive_consumer_keeps_exclusive_one():
    q = make_queue()
    a, b = FakeConsumer("a", exclusive=True), FakeConsumer("b")
    q.add_consumer(a)
    q.add_consumer(b)
    q.remove_consumer(b)
    assert q.exclusive_consumer is a


# --------------------------------------------------------------------------- requeue


def test_requeue_puts_entries_back_in_front_marked_redelivered():
    q = make_queue()
    for i in range(1, 8):
        q.enqueue(i)
    taken = [q.take() for _ in range(4)]  # seq 1..4 out, 5..7 ready
    q.requeue([taken[3], taken[1]])  # seq 4 and 2, out of order
    assert seqs(q) == [2, 4, 5, 6, 7]
    assert [e.redelivered for e in q.ready] == [True, True, False, False, False]
    assert taken[0].redelivered is False and taken[2].redelivered is False
    q.requeue([taken[0], taken[2]])
    assert seqs(q) == [1, 2, 3, 4, 5, 6, 7]
    assert [e.redelivered for e in q.ready] == [True] * 4 + [False] * 3


def test_requeue_into_empty_queue():
    q = make_queue()
    for i in range(3):
        q.enqueue(i)
    taken = [q.take() for _ in range(3)]
    q.requeue(list(reversed(taken)))
    assert seqs(q) == [1, 2, 3] and all(e.redelivered for e in q.ready)


def test_requeue_partial_merge_entries_newer_than_head():
    """Some requeued entries are newer than the current head: the affected prefix is merged."""
    q = make_queue()
    for i in range(1, 11):
        q.enqueue(i)
    out = {e.seq: e for e in (q.take() for _ in range(10))}
    q.requeue([out[1], out[3], out[5], out[9], out[10]])
    assert seqs(q) == [1, 3, 5, 9, 10]
    q.requeue([out[4], out[2]])  # 2 and 4 fall between ready entries
    assert seqs(q) == [1, 2, 3, 4, 5, 9, 10]
    q.requeue([out[8], out[6], out[7]])
    assert seqs(q) == list(range(1, 11))
    assert all(e.redelivered for e in q.ready)


def test_requeue_merge_with_fresh_entries_after_it():
    q = make_queue()
    for i in range(1, 6):
        q.enqueue(i)
    e1, e2 = q.take(), q.take()  # ready: 3 4 5
    q.requeue([e2])  # 2 < 3: plain extendleft
    assert seqs(q) == [2, 3, 4, 5]
    e2b, e3 = q.take(), q.take()  # ready: 4 5
    q.enqueue(6)  # ready: 4 5 6
    q.requeue([e3, e1])  # 1 and 3: both older than head 4
    assert seqs(q) == [1, 3, 4, 5, 6]
    e1b = q.take()
    e3b = q.take()  # ready: 4 5 6
    q.requeue([e2b, e1b])
    assert seqs(q) == [1, 2, 4, 5, 6]
    q.requeue([e3b])  # 3 between 2 and 4
    assert seqs(q) == [1, 2, 3, 4, 5, 6]
    assert [e.redelivered for e in q.ready] == [True, True, True, False, False, False]


def test_requeue_delivers_to_consumers_with_credit_first():
    q = make_queue()
    c = FakeConsumer("c", credit=3)
    q.add_consumer(c)
    for i in range(1, 6):
        q.enqueue(i)
    assert c.msgs == [1, 2, 3] and seqs(q) == [4, 5]
    back = c.got[:]
    c.got.clear()
    c.credit = 2
    q.requeue(back)  # drains: the two oldest (requeued) entries go out again, redelivered
    assert [(e.seq, e.redelivered) for e in c.got] == [(1, True), (2, True)]
    assert seqs(q) == [3, 4, 5]
    assert [e.redelivered for e in q.ready] == [True, False, False]


def test_requeue_nothing_or_into_deleted_queue():
    q = make_queue()
    q.enqueue("a")
    e = q.take()
    q.requeue([])
    assert q.message_count == 0
    q.deleted = True
    q.requeue([e])
    assert q.message_count == 0


# --------------------------------------------------------------------------- purge


def test_purge_counts_ready_only():
    q = make_queue()
    for i in range(5):
        q.enqueue(i)
    taken = q.take()
    assert queue_drop.purge(q) == 4
    assert q.message_count == 0 and queue_drop.purge(q) == 0
    q.requeue([taken])  # an unacked message survives a purge and can come back
    assert seqs(q) == [1] and q.ready[0].redelivered
    q.enqueue("new")
    assert seqs(q) == [1, 6]


# --------------------------------------------------------------------------- model-based


@pytest.mark.parametrize("seed", range(30))
def test_random_operations_keep_order(seed):
    """Random enqueue / take / consumer credit / requeue / purge against a model: the ready
    list is always the set of waiting seqnos in increasing order; every delivery takes the
    oldest waiting entry; requeued entries are flagged redelivered; nothing is lost or
    duplicated."""
    rng = random.Random(seed)
    q = make_queue()
    consumers = [FakeConsumer(f"c{i}", credit=0) for i in range(rng.randint(0, 3))]
    for c in consumers:
        q.add_consumer(c)
    waiting: set[int] = set()  # model of q.ready
    out: dict[int, QueueEntry] = {}  # delivered or taken, not settled
    ever_requeued: set[int] = set()
    gone: set[int] = set()  # acked or purged
    next_seq = 0
    seen_deliveries = {c.name: 0 for c in consumers}

    def collect_deliveries(before_waiting):
        """New deliveries since the last check must be the oldest waiting entries, in order."""
        delivered = []
        for c in consumers:
            new = c.got[seen_deliveries[c.name]:]
            seen_deliveries[c.name] = len(c.got)
            delivered.extend(new)
        delivered_seqs = sorted(e.seq for e in delivered)
        assert delivered_seqs == sorted(before_waiting)[: len(delivered_seqs)]
        for e in delivered:
            assert e.redelivered == (e.seq in ever_requeued)
            waiting.discard(e.seq)
            out[e.seq] = e

    for _ in range(400):
        op = rng.random()
        before = set(waiting)
        if op < 0.35:
            next_seq += 1
            q.enqueue(f"m{next_seq}")
            before.add(next_seq)
            waiting.add(next_seq)
        elif op < 0.5:
            e = q.take()
            if before:
                assert e.seq == min(before)
                waiting.discard(e.seq)
                out[e.seq] = e
            else:
                assert e is None
        elif op < 0.65 and consumers:
            c = rng.choice(consumers)
            c.credit = (c.credit or 0) + rng.randint(1, 4)
            q.drain()
        elif op < 0.85 and out:
            chosen = rng.sample(sorted(out), rng.randint(1, len(out)))
            entries = [out.pop(s) for s in chosen]
            rng.shuffle(entries)
            ever_requeued.update(chosen)
            before |= set(chosen)
            waiting |= set(chosen)
            q.requeue(entries)
        elif op < 0.95 and out:
            s = rng.choice(sorted(out))  # ack
            del out[s]
            gone.add(s)
        elif op >= 0.98:
            assert queue_drop.purge(q) == len(waiting)
            gone |= waiting
            waiting.clear()
            before.clear()
        collect_deliveries(before)
        assert seqs(q) == sorted(waiting)
        assert all(e.redelivered == (e.seq in ever_requeued) for e in q.ready)
        assert waiting.isdisjoint(out) and waiting.isdisjoint(gone) and set(out).isdisjoint(gone)
        assert waiting | set(out) | gone == set(range(1, next_seq + 1))
        for c in consumers:
            assert c.credit is None or c.credit >= 0
        if any(c.can_take() for c in consumers):
            assert q.message_count == 0, "a consumer has credit but messages wait"
