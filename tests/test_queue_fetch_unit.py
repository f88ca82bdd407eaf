"""Unit tests for amqp_broker.queue_fetch (the management API's "get messages"): basic.gets
then one settlement for all of them, through a durable queue whose backlog is paged to disk
(small pages, the fakes of helpers.queue_fakes), so fetching waits for pages as basic.get does."""
from __future__ import annotations

import pytest

from amqp_broker import queue as queue_module
from amqp_broker import queue_paging
from amqp_broker.message import Message
from amqp_broker.queue_fetch import ACK, ACK_REQUEUE, REJECT, REJECT_REQUEUE, fetch
from helpers.queue_fakes import FakeStore, FakeVHost, RecordingQueue


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(queue_module, "PAGE_HIGH", 4)
    monkeypatch.setattr(queue_module, "PAGE_LOW", 2)
    monkeypatch.setattr(queue_paging, "PAGE_SIZE", 3)


def paged_queue(count: int) -> tuple[RecordingQueue, FakeStore]:
    """A durable queue holding `count` persistent messages, most of them on disk only."""
    q = RecordingQueue(FakeVHost(), "q", durable=True)
    store = FakeStore()
    q.attach_store(store, 1)
    for i in range(count):
        m = Message("", "q", b"", b"m%02d" % i)
        m.persistent = True
        q.enqueue(m)
    assert q.disk is not None
    return q, store


def bodies(fetched) -> list[bytes]:
    return [f.entry.msg.body for f in fetched]


async def test_ack_takes_messages_through_the_pages_and_forgets_them():
    q, store = paged_queue(11)
    fetched = await fetch(q, 20, ACK)
    assert bodies(fetched) == [b"m%02d" % i for i in range(11)]
    assert [f.remaining for f in fetched] == list(range(10, -1, -1))
    assert not any(f.redelivered for f in fetched)
    assert q.message_count == 0 and store.rows == {}


async def test_requeue_puts_them_back_in_order_marked_redelivered():
    for settlement in (ACK_REQUEUE, REJECT_REQUEUE):
        q, store = paged_queue(9)
        first = await fetch(q, 6, settlement)
        assert bodies(first) == [b"m%02d" % i for i in range(6)] and not any(f.redelivered for f in first)
        assert q.message_count == 9 and len(store.rows) == 9
        again = await fetch(q, 20, ACK)
        assert bodies(again) == [b"m%02d" % i for i in range(9)]
        assert [f.redelivered for f in again] == [True] * 6 + [False] * 3


async def test_reject_dead_letters_and_forgets():
    q, store = paged_queue(5)
    fetched = await fetch(q, 2, REJECT)
    assert bodies(fetched) == [b"m00", b"m01"]
    assert q.dead == [(b"m00", "rejected"), (b"m01", "rejected")]
    assert q.message_count == 3 and len(store.rows) == 3


async def test_count_and_unknown_settlement():
    q, _store = paged_queue(5)
    assert await fetch(q, 0, ACK) == []
    with pytest.raises(ValueError):
        await fetch(q, 1, "ack")
    assert q.message_count == 5
