"""A queue: ready messages in FIFO order and the consumers that drain them.

Delivery is synchronous and push-based: enqueueing a message hands it straight to a consumer
with credit when one is free, and every event that gives credit back (ack, qos, a consumer
joining, a paused socket draining) calls `drain()`. No task per message, no polling.

Every change to a queue goes through a handful of operations (enqueue, deliver, forget,
requeue, purge) keyed by the entry's per-queue sequence number; a durable queue mirrors them
into the store, and the same operations could be replayed on another node's copy.

Bounded memory: a durable queue keeps at most PAGE_HIGH ready messages in RAM. Past that,
persistent messages live only in the store (the "disk segment", seq in (disk_lo, disk_hi]),
and are paged back in order, PAGE_SIZE at a time, when the in-memory head runs low. Transient
messages never touch the disk, so those arriving behind a disk segment wait in `tail` and are
merged back by seq.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from .message import Message

if TYPE_CHECKING:  # pragma: no cover
    from .consumer import Consumer

log = logging.getLogger("amqp_broker.queue")

PAGE_HIGH = 20_000  # ready messages kept in RAM before persistent ones stay on disk only
PAGE_BYTES = 32 << 20  # ... or this many body bytes
PAGE_LOW = 10_000  # page in when fewer are left in RAM
PAGE_SIZE = 10_000


class QueueEntry:
    """One message's place in one queue. `seq` orders it: a requeued entry goes back where
    it was, before every entry published after it."""

    __slots__ = ("msg", "seq", "redelivered")

    def __init__(self, msg: "Message", seq: int, redelivered: bool = False):
        self.msg = msg
        self.seq = seq
        self.redelivered = redelivered


class Queue:
    def __init__(
        self,
        vhost,
        name: str,
        durable: bool = False,
        exclusive_owner=None,
        auto_delete: bool = False,
        arguments: dict | None = None,
        typed_arguments: dict | None = None,
    ):
        self.vhost = vhost
        self.name = name
        self.durable = durable
        self.exclusive_owner = exclusive_owner  # the owning Connection, or None
        self.auto_delete = auto_delete
        self.arguments = arguments or {}
        # {key: (amqp type letter, value)}, for RabbitMQ's typed equivalence check
        self.typed_arguments = typed_arguments or {}
        self.ready: deque[QueueEntry] = deque()
        self.consumers: deque["Consumer"] = deque()
        self.exclusive_consumer: "Consumer | None" = None
        self.had_consumer = False
        self.deleted = False
        self._next_seq = 0
        self.ready_bytes = 0  # body bytes of the ready messages held in RAM
        self.stats_published = 0
        self.stats_delivered = 0
        self.max_length: int | None = None
        self.max_bytes: int | None = None
        self.overflow = "drop-head"
        # durability (set by attach_store for durable queues of a message-persisting store)
        self.store = None
        self.store_id: int | None = None
        self.delivered_hi = 0  # highest seq ever delivered (persisted as a watermark)
        self.recovered_delivered = 0  # watermark found at recovery: redelivered flags
        # paging
        self.disk_count = 0
        self.disk_bytes = 0
        self.disk_lo = 0
        self.disk_hi = 0
        self.tail: deque[QueueEntry] = deque()
        self._loading = False
        self._page_waiters: list[asyncio.Future] = []
        self.configure()

    def configure(self) -> None:
        """(Re)read the limits from the queue's arguments."""
        args = self.arguments
        self.max_length = _int_or_none(args.get("x-max-length"))
        self.max_bytes = _int_or_none(args.get("x-max-length-bytes"))
        overflow = args.get("x-overflow", "drop-head")
        self.overflow = overflow.decode() if isinstance(overflow, bytes) else overflow

    def attach_store(self, store, store_id: int) -> None:
        self.store = store
        self.store_id = store_id

    def recover(self, count: int, min_seq: int, max_seq: int, delivered_seq: int) -> None:
        """Adopt the stored messages found at start: all of them start on disk."""
        # new messages must number above the watermark, or a later restart would take them
        # for delivered ones
        self._next_seq = max(self._next_seq, max_seq, delivered_seq)
        self.delivered_hi = self.recovered_delivered = delivered_seq
        if count:
            self.disk_count = count
            self.disk_lo = min_seq - 1
            self.disk_hi = max_seq

    # -- producers ---------------------------------------------------------------------------

    def enqueue(self, msg: "Message") -> bool:
        """Accept a routed message. Returns False when the queue refuses it
        (x-overflow reject-publish on a full queue)."""
        limited = self.max_length is not None or self.max_bytes is not None
        size = len(msg.body)
        if limited and self.overflow != "drop-head" and self._would_exceed(size):
            return False
        self._next_seq = seq = self._next_seq + 1
        entry = QueueEntry(msg, seq)
        self.stats_published += 1
        store = self.store
        durable = store is not None and msg.persistent
        if durable:
            store.add_entry(self.store_id, seq, msg)
        if self.disk_count:  # behind a disk segment: keep the order
            if durable:
                self.disk_count += 1
                self.disk_bytes += size
                self.disk_hi = seq
            else:
                self.tail.append(entry)
                self.ready_bytes += size
        else:
            if self.consumers and not self.ready:
                consumer = self._next_consumer()
                if consumer is not None:
                    self._deliver(consumer, entry)
                    return True
            if msg.ttl == 0:  # expires on arrival unless it could be delivered at once
                self.forget(entry)
                return True
            if durable and (len(self.ready) >= PAGE_HIGH or self.ready_bytes >= PAGE_BYTES):
                self.disk_lo = seq - 1  # start a disk segment: this message stays on disk only
                self.disk_hi = seq
                self.disk_count = 1
                self.disk_bytes = size
            else:
                self.ready.append(entry)
                self.ready_bytes += size
        if limited:
            self._drop_head_over_limit()
        return True

    def _would_exceed(self, size: int) -> bool:
        """rabbit_amqqueue_process:would_exceed_queue_length/2 (only ready messages count)."""
        if self.max_length is not None and self.message_count >= self.max_length:
            return True
        return self.max_bytes is not None and self.ready_bytes + self.disk_bytes + size > self.max_bytes

    def _drop_head_over_limit(self) -> None:
        """drop-head: discard the oldest ready messages while over a limit."""
        ready = self.ready
        while ready and (
            (self.max_length is not None and self.message_count > self.max_length)
            or (self.max_bytes is not None and self.ready_bytes + self.disk_bytes > self.max_bytes)
        ):
            entry = ready.popleft()
            self.ready_bytes -= len(entry.msg.body)
            self.forget(entry)

    # -- consumers ---------------------------------------------------------------------------

    def _next_consumer(self) -> "Consumer | None":
        """Round-robin: the first consumer, from the rotation point, that has credit."""
        consumers = self.consumers
        for _ in range(len(consumers)):
            consumer = consumers[0]
            consumers.rotate(-1)
            if consumer.can_take():
                return consumer
        return None

    def _deliver(self, consumer: "Consumer", entry: QueueEntry) -> None:
        self.stats_delivered += 1
        if self.store is not None and entry.seq > self.delivered_hi and entry.msg.persistent:
            self.delivered_hi = entry.seq
            self.store.mark_delivered(self.store_id, entry.seq)
        consumer.deliver(entry)

    def drain(self) -> None:
        """Hand ready messages to consumers while any has credit."""
        ready = self.ready
        if self.consumers:
            while ready:
                consumer = self._next_consumer()
                if consumer is None:
                    break
                entry = ready.popleft()
                self.ready_bytes -= len(entry.msg.body)
                self._deliver(consumer, entry)
        if self.disk_count and len(ready) < PAGE_LOW and not self._loading:
            self._start_page_in()

    def add_consumer(self, consumer: "Consumer") -> None:
        self.consumers.append(consumer)
        if consumer.exclusive:
            self.exclusive_consumer = consumer
        self.had_consumer = True
        self.drain()

    def remove_consumer(self, consumer: "Consumer") -> None:
        try:
            self.consumers.remove(consumer)
        except ValueError:
            return
        if self.exclusive_consumer is consumer:
            self.exclusive_consumer = None

    # -- basic.get -----------------------------------------------------------------------------

    def take(self) -> QueueEntry | None:
        """The head entry, for basic.get (None when nothing is in RAM: see needs_page_in)."""
        entry = None
        if self.ready:
            entry = self.ready.popleft()
            self.ready_bytes -= len(entry.msg.body)
            self.stats_delivered += 1
            if self.store is not None and entry.seq > self.delivered_hi and entry.msg.persistent:
                self.delivered_hi = entry.seq
                self.store.mark_delivered(self.store_id, entry.seq)
        if self.disk_count and len(self.ready) < PAGE_LOW and not self._loading:
            self._start_page_in()
        return entry

    @property
    def needs_page_in(self) -> bool:
        return not self.ready and bool(self.disk_count)

    async def wait_paged_in(self) -> None:
        """Wait until the next page is in RAM (basic.get on a queue whose head is on disk)."""
        if not self.disk_count or self.deleted:
            return
        fut = asyncio.get_running_loop().create_future()
        self._page_waiters.append(fut)
        if not self._loading:
            self._start_page_in()
        await fut

    # -- paging --------------------------------------------------------------------------------

    def _start_page_in(self) -> None:
        self._loading = True
        asyncio.get_running_loop().create_task(self._page_in())

    async def _page_in(self) -> None:
        rows = []
        try:
            rows = await self.store.read_entries(self.store_id, self.disk_lo, PAGE_SIZE)
        except Exception:
            log.exception("paging in queue %r failed", self.name)
        finally:
            self._loading = False
        if not self.deleted:
            self._paged_in(rows)
        waiters, self._page_waiters = self._page_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        if not self.deleted:
            self.drain()

    def _paged_in(self, rows) -> None:
        entries = []
        floor = self.disk_lo  # a purge while we were reading moves it: skip what it removed
        recovered = self.recovered_delivered
        size = 0
        for seq, msg_id, exchange, routing_key, header, body in rows:
            if seq <= floor or seq > self.disk_hi:
                continue
            msg = Message(exchange, routing_key, header, body)
            msg.persistent = True
            msg.store_id = msg_id
            entries.append(QueueEntry(msg, seq, seq <= recovered))
            size += len(body)
        if entries:
            self.disk_lo = entries[-1].seq
            self.disk_count -= len(entries)
            self.disk_bytes = max(0, self.disk_bytes - size)
        if self.disk_count <= 0 or not entries:
            self.disk_count = 0
            self.disk_bytes = 0
            moved = list(self.tail)
            self.tail.clear()
        else:
            moved = []
            last = self.disk_lo
            while self.tail and self.tail[0].seq < last:
                moved.append(self.tail.popleft())
        if moved:  # tail entries were counted in ready_bytes when they arrived
            entries = sorted(entries + moved, key=_seq_of)
        self.ready.extend(entries)
        self.ready_bytes += size

    # -- settlement ----------------------------------------------------------------------------

    def forget(self, entry: QueueEntry) -> None:
        """The entry is done with (acked, dropped, expired): remove it from the store."""
        store = self.store
        if store is not None and entry.msg.store_id is not None:
            store.remove_entry(self.store_id, entry.seq, entry.msg.store_id)

    def requeue(self, entries: list[QueueEntry]) -> None:
        """Put delivered-but-unacked entries back at their original positions, marked
        redelivered. Usually they are all older than the current head, so this is an
        extendleft of the requeued entries; otherwise the affected prefix is merged."""
        if self.deleted or not entries:
            return
        for entry in entries:
            entry.redelivered = True
            self.ready_bytes += len(entry.msg.body)
        entries = sorted(entries, key=_seq_of)
        ready = self.ready
        if not ready or entries[-1].seq < ready[0].seq:
            ready.extendleft(reversed(entries))
        else:
            prefix = []
            last = entries[-1].seq
            while ready and ready[0].seq < last:
                prefix.append(ready.popleft())
            merged = sorted(prefix + entries, key=_seq_of)
            ready.extendleft(reversed(merged))
        if self.max_length is not None or self.max_bytes is not None:
            self._drop_head_over_limit()
        self.drain()

    def purge(self) -> int:
        """Drop every ready message (unacked ones stay with their channels)."""
        count = self.message_count
        if self.store is not None:
            for entry in self.ready:
                self.forget(entry)
            if self.disk_count:
                self.store.purge_range(self.store_id, self.disk_lo, self.disk_hi)
        self.ready.clear()
        self.tail.clear()
        self.ready_bytes = 0
        self.disk_lo = self.disk_hi
        self.disk_count = 0
        self.disk_bytes = 0
        return count

    def discard_all(self) -> None:
        """The queue is being deleted: drop everything held in RAM."""
        self.deleted = True
        self.ready.clear()
        self.tail.clear()
        self.ready_bytes = 0
        self.disk_count = 0
        for fut in self._page_waiters:
            if not fut.done():
                fut.set_result(None)
        self._page_waiters = []

    # -- introspection -------------------------------------------------------------------------

    @property
    def message_count(self) -> int:
        """Ready messages, wherever they are held."""
        return len(self.ready) + self.disk_count + len(self.tail)

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} ready={self.message_count} consumers={len(self.consumers)}>"


def _seq_of(entry: QueueEntry) -> int:
    return entry.seq


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
