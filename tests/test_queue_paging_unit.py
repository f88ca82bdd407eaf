"""Unit tests for a durable queue's disk segment (amqp_broker.queue_paging.DiskSegment) through
the Queue that owns it, on an in-memory fake store, with pages a few messages long: persistent
messages past the RAM budget stay on disk and come back in order, transient ones that arrive
meanwhile keep their place, and every count (message_count, message_bytes, purge, limits)
includes what is on disk and excludes what expired there."""
from __future__ import annotations

import asyncio

import pytest

from amqp_broker import queue_drop
from amqp_broker import queue as queue_module
from amqp_broker import queue_paging
from amqp_broker.message import Message
from helpers.queue_fakes import FakeConsumer, FakeStore, FakeVHost, RecordingQueue

PAGE_HIGH = 4  # messages in RAM before persistent ones stay on disk
PAGE_LOW = 2
PAGE_SIZE = 3


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(queue_module, "PAGE_HIGH", PAGE_HIGH)
    monkeypatch.setattr(queue_module, "PAGE_LOW", PAGE_LOW)
    monkeypatch.setattr(queue_paging, "PAGE_SIZE", PAGE_SIZE)


def durable_queue(**arguments) -> tuple[RecordingQueue, FakeStore]:
    q = RecordingQueue(FakeVHost(), "q", durable=True, arguments=arguments)
    store = FakeStore()
    q.attach_store(store, 1)
    return q, store


def msg(body: bytes, persistent: bool = True, ttl: int | None = None) -> Message:
    m = Message("", "q", b"", body)
    m.persistent = persistent
    m.ttl = ttl
    return m


async def settle() -> None:
    """Let the segment's read tasks run (the fake store answers at once)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def get_all(q) -> list[bytes]:
    """basic.get until empty, waiting for pages as the channel does."""
    out = []
    while True:
        entry = q.take()
        if entry is None:
            if q.needs_page_in:
                await q.wait_paged_in()
                continue
            return out
        out.append(entry.msg.body)
        q.forget(entry)


async def test_persistent_backlog_stays_on_disk_and_comes_back_in_order():
    q, store = durable_queue()
    bodies = [b"m%02d" % i for i in range(11)]
    for body in bodies:
        q.enqueue(msg(body))
    assert len(q.ready) == PAGE_HIGH and q.disk.count == 7
    assert q.message_count == 11 and q.message_bytes == 33
    assert len(store.rows) == 11
    assert await get_all(q) == bodies
    assert q.disk is None and q.message_count == 0 and q.message_bytes == 0
    assert store.rows == {}


async def test_transient_messages_behind_the_segment_keep_their_place():
    q, _store = durable_queue()
    bodies = []
    for i in range(12):
        body = b"%02d" % i
        bodies.append(body)
        q.enqueue(msg(body, persistent=i < 4 or i % 2 == 0))
    assert len(q.disk.tail) == 4  # 05 07 09 11 wait in RAM behind the disk
    assert q.message_count == 12
    assert await get_all(q) == bodies


async def test_a_consumer_drains_through_the_pages():
    q, _store = durable_queue()
    bodies = [b"%02d" % i for i in range(10)]
    for body in bodies:
        q.enqueue(msg(body))
    c = FakeConsumer("c")
    q.add_consumer(c)
    for _ in range(10):
        await settle()
    assert c.got == bodies and q.message_count == 0 and q.disk is None


async def test_purge_counts_and_removes_what_is_on_disk():
    q, store = durable_queue()
    for i in range(9):
        q.enqueue(msg(b"%d" % i, persistent=i != 7))
    for _ in range(3):  # out with a "consumer": they survive the purge
        q.take()
    reads = store.reads
    assert queue_drop.purge(q) == 6  # while the read the last take started is in flight
    await settle()
    assert store.reads == reads + 1  # it was: and it brought nothing back
    assert q.message_count == 0 and q.disk is None and not q.ready
    assert sorted(store.rows) == [1, 2, 3]
    assert q.dead == []  # a purge does not dead-letter


async def test_expired_on_disk_counts_out_at_once_and_is_dead_lettered():
    q, store = durable_queue()
    for i in range(4):
        q.enqueue(msg(b"ram%d" % i))
    q.enqueue(msg(b"short1", ttl=1000))
    q.enqueue(msg(b"long", ttl=60_000))
    q.enqueue(msg(b"short2", ttl=1000))
    assert q.disk.count == 3 and q.message_bytes == 4 * 4 + 6 + 4 + 6
    expirer = q.vhost.expirer
    expirer.fire(upto=min(r[0] for r in expirer.records))  # the two short ones
    assert q.message_count == 5  # before the batch has even read them
    await settle()
    assert q.dead == [(b"short1", "expired"), (b"short2", "expired")]
    assert q.message_bytes == 4 * 4 + 4
    assert sorted(store.rows) == [1, 2, 3, 4, 6]
    assert await get_all(q) == [b"ram0", b"ram1", b"ram2", b"ram3", b"long"]


async def test_read_back_before_the_expiry_batch_counts_bytes_once():
    q, _store = durable_queue()
    for i in range(4):
        q.enqueue(msg(b"ram%d" % i))
    q.enqueue(msg(b"short", ttl=1000))
    q.enqueue(msg(b"keep"))
    q.vhost.expirer.fire()  # the batch is scheduled, not run yet
    q.take()
    q.take()
    q.take()  # few left in RAM: a page is read, and sees the expired one first
    await settle()
    assert q.dead == [(b"short", "expired")]
    assert q.message_count == 2 and q.message_bytes == 4 + 4
    assert await get_all(q) == [b"ram3", b"keep"]


async def test_recovered_messages_start_on_disk_and_keep_the_redelivered_flag():
    q, store = durable_queue()
    for i in range(5):
        store.add_entry(1, i + 1, msg(b"r%d" % i))
    q.recover(5, 1, 5, 2)  # seq 1 and 2 had been delivered before the restart
    assert q.message_count == 5 and not q.ready
    await q.wait_paged_in()
    assert [(e.msg.body, e.redelivered) for e in q.ready] == [(b"r0", True), (b"r1", True), (b"r2", False)]
    q.enqueue(msg(b"new"))
    assert await get_all(q) == [b"r0", b"r1", b"r2", b"r3", b"r4", b"new"]


async def test_drop_head_limit_counts_messages_on_disk():
    q, _store = durable_queue(**{"x-max-length": 6})
    for i in range(10):
        q.enqueue(msg(b"%d" % i))
    assert q.message_count == 6
    assert q.dead == [(b"%d" % i, "maxlen") for i in range(4)]
    assert await get_all(q) == [b"%d" % i for i in range(4, 10)]


async def test_delete_wakes_a_waiting_get_and_stops_paging():
    q, store = durable_queue()
    store.add_entry(1, 1, msg(b"r"))
    q.recover(1, 1, 1, 0)
    waiter = asyncio.ensure_future(q.wait_paged_in())
    queue_drop.discard_all(q)
    await asyncio.wait_for(waiter, 1)
    await settle()
    assert q.disk is None and not q.ready and q.message_count == 0


async def test_tail_is_not_stranded_when_everything_on_disk_expired():
    q, _store = durable_queue()
    for i in range(4):
        q.enqueue(msg(b"ram%d" % i))
    q.enqueue(msg(b"dies", ttl=1000))  # on disk
    q.enqueue(msg(b"transient", persistent=False))  # behind it, in the tail
    q.vhost.expirer.fire()
    await settle()
    assert q.disk.count == 0 and q.message_count == 5
    q.enqueue(msg(b"later", persistent=False))  # still behind the tail, not before it
    assert await get_all(q) == [b"ram0", b"ram1", b"ram2", b"ram3", b"transient", b"later"]
    assert q.dead == [(b"dies", "expired")]
