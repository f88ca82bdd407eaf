"""A queue: ready messages in order and the consumers that drain them.

Delivery is synchronous and push-based: enqueueing a message hands it straight to a consumer
with credit when one is free, and every event that gives credit back (ack, qos, a consumer
joining, a paused socket draining) calls `drain()`. No task per message, no polling.

Every change to a queue goes through a handful of operations (enqueue, deliver, forget,
requeue, purge) keyed by the entry's per-queue sequence number; a durable queue mirrors them
into the store, and the same operations could be replayed on another node's copy.

Bounded memory: a durable FIFO queue keeps at most PAGE_HIGH ready messages in RAM. Past that,
persistent messages live only in the store (the "disk segment", seq in (disk_lo, disk_hi]),
and are paged back in order when the in-memory head runs low. Transient messages never touch
the disk, so those arriving behind a disk segment wait in `tail` and are merged back by seq.

Expiry: every message with a TTL has its own entry in the broker's timer heap, so it expires
at its time wherever it sits (RabbitMQ only expires at the head). An expired entry becomes a
tombstone (state GONE) that delivery skips; nothing scans the queue.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from time import time as _time
from typing import TYPE_CHECKING

from .deadletter import dead_letter
from .expiry import now_ms
from .message import Message
from .ready import PriorityReady, requeue_into

if TYPE_CHECKING:  # pragma: no cover
    from .consumer import Consumer

log = logging.getLogger("amqp_broker.queue")

PAGE_HIGH = 20_000  # ready messages kept in RAM before persistent ones stay on disk only
PAGE_BYTES = 32 << 20  # ... or this many body bytes
PAGE_LOW = 10_000  # page in when fewer are left in RAM
PAGE_SIZE = 10_000

READY, OUT, GONE = 0, 1, 2  # QueueEntry.state


class QueueEntry:
    """One message's place in one queue. `seq` orders it: a requeued entry goes back where
    it was, before every entry published after it."""

    __slots__ = ("msg", "seq", "redelivered", "expires_at", "state")

    def __init__(self, msg: "Message", seq: int, redelivered: bool = False, expires_at: int | None = None):
        self.msg = msg
        self.seq = seq
        self.redelivered = redelivered
        self.expires_at = expires_at  # epoch ms, or None
        self.state = READY


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
        self.expirer = getattr(vhost, "expirer", None)
        max_priority = _int_or_none(self.arguments.get("x-max-priority"))
        self.max_priority = max_priority if max_priority and max_priority > 0 else None
        self.ready = PriorityReady(self.max_priority) if self.max_priority else deque()
        self.consumers: deque["Consumer"] = deque()
        self.exclusive_consumer: "Consumer | None" = None
        self.had_consumer = False
        self.deleted = False
        self._next_seq = 0
        self._tombstones = 0  # expired entries still sitting in ready/tail
        self.ready_bytes = 0  # body bytes of the live ready messages held in RAM
        self.stats_published = 0
        self.stats_delivered = 0
        self._prioritized = False  # some consumer has x-priority != 0
        self.single_active = self.arguments.get("x-single-active-consumer") is True
        self._idle_handle = None
        self.policy = None  # the policy that applies (set by the vhost's policy service)
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
        self._disk_gone: set[int] = set()  # expired while on disk, not yet read back
        self._disk_expiring: list[int] = []
        self.configure()

    def configure(self, effective: dict | None = None) -> None:
        """(Re)read limits, TTLs and dead-lettering from the effective arguments (the queue's
        own, combined with its policy by the vhost). Takes effect at once."""
        args = self.arguments if effective is None else effective
        self.effective_arguments = args
        self.max_length = _int_or_none(args.get("x-max-length"))
        self.max_bytes = _int_or_none(args.get("x-max-length-bytes"))
        self.overflow = _text(args.get("x-overflow")) or "drop-head"
        self.message_ttl = _int_or_none(args.get("x-message-ttl"))
        self.expires = _int_or_none(args.get("x-expires"))
        self.dlx = _text(args.get("x-dead-letter-exchange"))
        self.dlrk = _text(args.get("x-dead-letter-routing-key"))
        if self._drops_head:
            self._drop_head_over_limit()  # a lower limit (policy) trims the queue at once
        self.touch()

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

    def recover_expiries(self, expiring: list[tuple[int, int]]) -> None:
        """Stored entries keep their absolute expiry across a restart."""
        for seq, expires_at in expiring:
            self.expirer.schedule(expires_at, self._expire_disk, seq)

    # -- producers ---------------------------------------------------------------------------

    def enqueue(self, msg: "Message") -> bool:
        """Accept a routed message. Returns False when the queue refuses it
        (x-overflow reject-publish / reject-publish-dlx on a full queue)."""
        limited = self.max_length is not None or self.max_bytes is not None
        size = len(msg.body)
        if limited and self.overflow != "drop-head" and self._would_exceed(size):
            if self.overflow == "reject-publish-dlx":
                self._dead(msg, "maxlen")
            return False
        self._next_seq = seq = self._next_seq + 1
        ttl = msg.ttl
        queue_ttl = self.message_ttl
        if queue_ttl is not None and (ttl is None or queue_ttl < ttl):
            ttl = queue_ttl
        expires_at = int(_time() * 1000) + ttl if ttl else None
        entry = QueueEntry(msg, seq, False, expires_at)
        self.stats_published += 1
        store = self.store
        durable = store is not None and msg.persistent
        if durable and ttl != 0:
            store.add_entry(self.store_id, seq, msg, expires_at)
        if self.disk_count:  # behind a disk segment: keep the order
            if ttl == 0:  # cannot be delivered at once behind a backlog: expires now
                self._dead(msg, "expired")
                return True
            if durable:
                self.disk_count += 1
                self.disk_bytes += size
                self.disk_hi = seq
                if expires_at is not None:
                    self.expirer.schedule(expires_at, self._expire_disk, seq)
                return True
            self.tail.append(entry)
            self.ready_bytes += size
        else:
            if self.consumers and not self.ready:
                consumer = self._next_consumer()
                if consumer is not None:
                    if ttl == 0 and durable:
                        store.add_entry(self.store_id, seq, msg, None)
                    self._deliver(consumer, entry)
                    return True
            if ttl == 0:  # expires on arrival unless it could be delivered at once
                self._dead(msg, "expired")
                return True
            if durable and self.max_priority is None and (
                len(self.ready) >= PAGE_HIGH or self.ready_bytes >= PAGE_BYTES
            ):
                self.disk_lo = seq - 1  # start a disk segment: this message stays on disk only
                self.disk_hi = seq
                self.disk_count = 1
                self.disk_bytes = size
                if expires_at is not None:
                    self.expirer.schedule(expires_at, self._expire_disk, seq)
                return True
            self.ready.append(entry)
            self.ready_bytes += size
        if expires_at is not None:
            self.expirer.schedule2(expires_at, Queue._expire, self, entry)
        if limited and self.overflow == "drop-head":
            self._drop_head_over_limit()
        return True

    @property
    def _drops_head(self) -> bool:
        return (self.max_length is not None or self.max_bytes is not None) and self.overflow == "drop-head"

    def _would_exceed(self, size: int) -> bool:
        """rabbit_amqqueue_process:would_exceed_queue_length/2 (only ready messages count)."""
        if self.max_length is not None and self.message_count >= self.max_length:
            return True
        return self.max_bytes is not None and self.ready_bytes + self.disk_bytes + size > self.max_bytes

    def _drop_head_over_limit(self) -> None:
        """drop-head: discard (dead-letter, reason maxlen) the oldest ready messages while
        over a limit."""
        ready = self.ready
        while ready and (
            (self.max_length is not None and self.message_count > self.max_length)
            or (self.max_bytes is not None and self.ready_bytes + self.disk_bytes > self.max_bytes)
        ):
            entry = ready.popleft()
            if entry.state == GONE:
                self._tombstones -= 1
                continue
            entry.state = GONE
            self.ready_bytes -= len(entry.msg.body)
            self._dead(entry.msg, "maxlen")
            self.forget(entry)

    def _dead(self, msg: "Message", reason: str) -> None:
        if self.dlx is not None:
            dead_letter(self, msg, reason)

    # -- expiry --------------------------------------------------------------------------------

    def _expire(self, entry: QueueEntry) -> None:
        """Timer: a ready message reached its expiry. Delivered ones are left alone (their
        expiry applies again if they are requeued)."""
        if entry.state != READY or self.deleted:
            return
        entry.state = GONE
        self._tombstones += 1
        self.ready_bytes -= len(entry.msg.body)
        self._dead(entry.msg, "expired")
        self.forget(entry)

    def _expire_disk(self, seq: int) -> None:
        """Timer: a message that lives only on disk expired; read it back to dead-letter it."""
        if self.deleted or not self.disk_count or seq <= self.disk_lo or seq > self.disk_hi:
            return  # paged in meanwhile (its in-memory entry has its own timer) or purged
        if seq in self._disk_gone:
            return
        self._disk_gone.add(seq)
        self.disk_count -= 1
        self._disk_expiring.append(seq)
        if len(self._disk_expiring) == 1:
            asyncio.get_running_loop().create_task(self._expire_disk_batch())

    async def _expire_disk_batch(self) -> None:
        await asyncio.sleep(0)  # gather the other expiries of this timer tick
        seqs, self._disk_expiring = self._disk_expiring, []
        try:
            rows = await self.store.read_seqs(self.store_id, seqs)
        except Exception:
            log.exception("reading expired messages of %r failed", self.name)
            return
        for seq, msg_id, exchange, routing_key, header, body, _expires in rows:
            msg = Message(exchange, routing_key, header, body)
            msg.persistent = True
            self._dead(msg, "expired")
            self.store.remove_entry(self.store_id, seq, msg_id)

    def touch(self) -> None:
        """x-expires: the queue was used (declared, consumed from, got from); restart the
        idle timer, which only runs while it has no consumers."""
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        if self.expires is None or self.deleted or self.consumers:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # configured outside the broker's loop (unit tests)
            return
        self._idle_handle = loop.call_later(self.expires / 1000, self._idle_expired)

    def _idle_expired(self) -> None:
        self._idle_handle = None
        if not self.consumers and not self.deleted:
            self.vhost.remove_queue(self)  # its messages are not dead-lettered (as RabbitMQ)

    # -- consumers ---------------------------------------------------------------------------

    def _next_consumer(self) -> "Consumer | None":
        """Who gets the next message: the single active consumer; else the highest-priority
        consumers with credit, round-robin among equals."""
        consumers = self.consumers
        if self.single_active:
            first = consumers[0] if consumers else None
            return first if first is not None and first.can_take() else None
        if self._prioritized:
            best = None
            for consumer in consumers:
                if consumer.can_take() and (best is None or consumer.priority > best.priority):
                    best = consumer
            if best is not None:
                consumers.remove(best)
                consumers.append(best)
            return best
        for _ in range(len(consumers)):
            consumer = consumers[0]
            consumers.rotate(-1)
            if consumer.can_take():
                return consumer
        return None

    def _deliver(self, consumer: "Consumer", entry: QueueEntry) -> None:
        self._taken(entry)
        consumer.deliver(entry)

    def _taken(self, entry: QueueEntry) -> None:
        """The entry leaves the ready list for a consumer or basic.get."""
        self.stats_delivered += 1
        entry.state = OUT
        if self.store is not None and entry.seq > self.delivered_hi and entry.msg.persistent:
            self.delivered_hi = entry.seq  # persisted as a watermark: redelivered after restart
            self.store.mark_delivered(self.store_id, entry.seq)

    def drain(self) -> None:
        """Hand ready messages to consumers while any has credit."""
        ready = self.ready
        if self.consumers:
            while ready:
                consumer = self._next_consumer()
                if consumer is None:
                    break
                entry = ready.popleft()
                if entry.state == GONE:
                    self._tombstones -= 1
                    continue
                self.ready_bytes -= len(entry.msg.body)
                self._deliver(consumer, entry)
        if self.disk_count and len(ready) < PAGE_LOW and not self._loading:
            self._start_page_in()

    def add_consumer(self, consumer: "Consumer") -> None:
        self.consumers.append(consumer)
        if consumer.exclusive:
            self.exclusive_consumer = consumer
        if consumer.priority:
            self._prioritized = True
        self.had_consumer = True
        self.touch()
        self.drain()

    def remove_consumer(self, consumer: "Consumer", drain: bool = True) -> None:
        """`drain=False` when the caller requeues the consumer's messages first (they must
        reach the next single active consumer before newer ones)."""
        try:
            self.consumers.remove(consumer)
        except ValueError:
            return
        if self.exclusive_consumer is consumer:
            self.exclusive_consumer = None
        self._prioritized = any(c.priority for c in self.consumers)
        self.touch()
        if drain and self.single_active and self.consumers and not consumer.unacked:
            # the next consumer takes over; if the old one still has messages in flight it
            # waits for them to be settled or requeued, so the order is kept (as RabbitMQ)
            self.drain()

    # -- basic.get -----------------------------------------------------------------------------

    def take(self) -> QueueEntry | None:
        """The head entry, for basic.get (None when nothing is in RAM: see needs_page_in)."""
        self.touch()
        entry = None
        ready = self.ready
        while ready:
            candidate = ready.popleft()
            if candidate.state == GONE:
                self._tombstones -= 1
                continue
            entry = candidate
            self.ready_bytes -= len(entry.msg.body)
            self._taken(entry)
            break
        if self.disk_count and len(ready) < PAGE_LOW and not self._loading:
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
        gone = self._disk_gone
        size = 0
        now = now_ms()
        last_seen = floor
        for seq, msg_id, exchange, routing_key, header, body, expires_at in rows:
            if seq <= floor or seq > self.disk_hi:
                continue
            last_seen = seq
            if seq in gone:
                continue  # expired while on disk: already accounted and dead-lettered
            msg = Message(exchange, routing_key, header, body)
            msg.persistent = True
            msg.store_id = msg_id
            entry = QueueEntry(msg, seq, seq <= recovered, expires_at)
            self.disk_count -= 1
            if expires_at is not None and expires_at <= now:
                entry.state = GONE
                self._dead(msg, "expired")
                self.forget(entry)
                continue
            entries.append(entry)
            size += len(body)
        if last_seen > floor:
            self.disk_lo = last_seen
            if gone:
                self._disk_gone = {s for s in gone if s > last_seen}
        self.disk_bytes = max(0, self.disk_bytes - size)
        if self.disk_count <= 0 or last_seen == floor:
            self.disk_count = 0
            self.disk_bytes = 0
            moved = list(self.tail)
            self.tail.clear()
        else:
            moved = []
            while self.tail and self.tail[0].seq < last_seen:
                moved.append(self.tail.popleft())
        if moved:  # tail entries were counted in ready_bytes when they arrived
            entries = sorted(entries + moved, key=_seq_of)
        self.ready.extend(entries)
        self.ready_bytes += size
        if self.expirer is not None:
            for entry in entries:
                if entry.expires_at is not None and entry.state == READY:
                    self.expirer.schedule2(entry.expires_at, Queue._expire, self, entry)

    # -- settlement ----------------------------------------------------------------------------

    def forget(self, entry: QueueEntry) -> None:
        """The entry is done with (acked, dropped, expired): remove it from the store."""
        store = self.store
        if store is not None and entry.msg.store_id is not None:
            store.remove_entry(self.store_id, entry.seq, entry.msg.store_id)

    def reject(self, entry: QueueEntry) -> None:
        """Rejected without requeue: dead-letter (reason rejected) and forget."""
        entry.state = GONE
        self._dead(entry.msg, "rejected")
        self.forget(entry)

    def requeue(self, entries: list[QueueEntry]) -> None:
        """Put delivered-but-unacked entries back at their original positions, marked
        redelivered. A requeued message keeps its expiry: one already past it dies now."""
        if self.deleted or not entries:
            return
        now = None
        back = []
        for entry in entries:
            if entry.expires_at is not None:
                now = now or now_ms()
                if entry.expires_at <= now:
                    entry.state = GONE
                    self._dead(entry.msg, "expired")
                    self.forget(entry)
                    continue
            entry.redelivered = True
            entry.state = READY
            self.ready_bytes += len(entry.msg.body)
            back.append(entry)
        if back:
            if self.max_priority:
                self.ready.requeue(back)
            else:
                requeue_into(self.ready, back)
        if self._drops_head:  # reject-publish never drops what is already queued
            self._drop_head_over_limit()
        self.drain()

    def purge(self) -> int:
        """Drop every ready message (unacked ones stay with their channels)."""
        count = self.message_count
        for entry in self.ready:
            if entry.state == READY:
                entry.state = GONE
                self.forget(entry)
        for entry in self.tail:
            entry.state = GONE
        if self.store is not None and self.disk_count:
            self.store.purge_range(self.store_id, self.disk_lo, self.disk_hi)
        self.ready.clear()
        self.tail.clear()
        self._tombstones = 0
        self.ready_bytes = 0
        self.disk_lo = self.disk_hi
        self.disk_count = 0
        self.disk_bytes = 0
        self._disk_gone.clear()
        return count

    def discard_all(self) -> None:
        """The queue is being deleted: drop everything held in RAM."""
        self.deleted = True
        for entry in self.ready:
            entry.state = GONE
        self.ready.clear()
        self.tail.clear()
        self._tombstones = 0
        self.ready_bytes = 0
        self.disk_count = 0
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        for fut in self._page_waiters:
            if not fut.done():
                fut.set_result(None)
        self._page_waiters = []

    # -- introspection -------------------------------------------------------------------------

    @property
    def message_count(self) -> int:
        """Ready messages, wherever they are held."""
        return len(self.ready) + len(self.tail) - self._tombstones + self.disk_count

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} ready={self.message_count} consumers={len(self.consumers)}>"


def _seq_of(entry: QueueEntry) -> int:
    return entry.seq


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else None
