"""A queue: ready messages in order and the consumers that drain them.

Delivery is synchronous and push-based: enqueueing a message hands it straight to a consumer
with credit when one is free, and every event that gives credit back (ack, qos, a consumer
joining, a paused socket draining) calls `drain()`. No task per message, no polling.

Every change to a queue goes through a handful of operations (enqueue, deliver, forget,
requeue, purge) keyed by the entry's per-queue sequence number; a durable queue mirrors them
into the store, and the same operations could be replayed on another node's copy.

This class is the core: the ready list, its live counts, and the hot path (enqueue -> deliver
-> forget on ack), kept inline; picking the consumer is one direct call to the rule chosen
when consumers last changed. The rarer concerns are named collaborators, each in its own
module, that the core calls only when they apply:

- `ConsumerSet` (queue_consumers): the consumers and who gets the next message (round-robin,
  consumer priorities, single active consumer).
- `MessageTTL` (queue_ttl): per-message expiry of the entries held in RAM.
- `DiskSegment` (queue_paging): persistent messages kept only on disk, paged back in order.
- `LengthLimit` (queue_limits): x-max-length(-bytes) and x-overflow.
- `IdleLease` (queue_lease): x-expires.

The live ready count has one source of truth, `message_count`: an entry that dies where it
sits (expired) stays in the ready list as a tombstone, so `len(ready)` is not a count; every
"how many / is it empty" question (declare-ok, delete if-empty, purge, get-ok, the limits)
asks `message_count`.
"""
from __future__ import annotations

from collections import deque
from operator import attrgetter
from time import time as _time
from typing import TYPE_CHECKING

from .deadletter import dead_letter
from .queue_consumers import ConsumerSet
from .queue_entry import GONE, OUT, READY, QueueEntry
from .queue_lease import IdleLease
from .queue_limits import LengthLimit
from .queue_paging import PAGE_BYTES, PAGE_HIGH, PAGE_LOW, DiskSegment
from .queue_ttl import MessageTTL
from .ready import PriorityReady, requeue_into
from .stats import AT_MOST_ONCE, DISABLED, count_dead_letter

if TYPE_CHECKING:  # pragma: no cover
    from .consumer import Consumer
    from .message import Message

__all__ = ["Queue", "QueueEntry"]  # QueueEntry lives in queue_entry.py (no import cycle)


class Queue:
    def __init__(self, vhost, name: str, durable: bool = False, exclusive_owner=None,
                 auto_delete: bool = False, arguments: dict | None = None,
                 typed_arguments: dict | None = None):
        self.vhost = vhost
        self.name = name
        self.durable = durable
        self.exclusive_owner = exclusive_owner  # the owning Connection, or None
        self.auto_delete = auto_delete
        self.arguments = arguments or {}
        # {key: (amqp type letter, value)}, for RabbitMQ's typed equivalence check
        self.typed_arguments = typed_arguments or {}
        max_priority = _int_or_none(self.arguments.get("x-max-priority"))
        self.max_priority = max_priority if max_priority and max_priority > 0 else None
        # entries in delivery order, tombstones (GONE) included: see message_count
        self.ready = PriorityReady(self.max_priority) if self.max_priority else deque()
        self.tombstones = 0  # expired entries still sitting in `ready` or the disk tail
        self.ready_bytes = 0  # body bytes of the live ready messages held in RAM
        self.consumer_set = ConsumerSet(self.arguments.get("x-single-active-consumer") is True)
        self.consumers = self.consumer_set.members  # the same deque: read on every publish
        # who gets the next message (ConsumerSet.chooser): called directly, once per delivery
        self._choose = self.consumer_set.chooser()
        self.deleted = False
        self._next_seq = 0
        # message statistics (stats.py): plain counters, incremented where the event happens
        self.stats_published = 0
        self.stats_delivered = 0  # every delivery, basic.get included (deliver_get)
        self.stats_deliver_no_ack = 0
        self.stats_get = 0
        self.stats_get_no_ack = 0
        self.stats_get_empty = 0
        self.stats_ack = 0
        self.stats_redeliver = 0
        self.stats_dead_lettered: dict = {}  # (reason, strategy) -> messages
        self.stats_samples = None  # stats.QueueSamples, once the sampler has read the counters
        self.policy = None  # the policy that applies (set by the vhost's policy service)
        # durability (set by attach_store for durable queues of a message-persisting store)
        self.store = None
        self.store_id: int | None = None
        self.delivered_hi = 0  # highest seq ever delivered (persisted as a watermark)
        self.recovered_delivered = 0  # watermark found at recovery: redelivered flags
        self.disk: DiskSegment | None = None  # persistent messages kept only on disk
        self.ttl = MessageTTL(self)
        self.lease = IdleLease(self)
        self.configure()

    def configure(self, effective: dict | None = None) -> None:
        """(Re)read limits, TTLs and dead-lettering from the effective arguments (the queue's
        own, combined with its policy by the vhost). Takes effect at once."""
        args = self.arguments if effective is None else effective
        self.effective_arguments = args
        self.limit = LengthLimit.of(_int_or_none(args.get("x-max-length")),
                                    _int_or_none(args.get("x-max-length-bytes")),
                                    _text(args.get("x-overflow")))
        self.message_ttl = _int_or_none(args.get("x-message-ttl"))
        self.dlx = _text(args.get("x-dead-letter-exchange"))
        self.dlrk = _text(args.get("x-dead-letter-routing-key"))
        self.lease.ms = _int_or_none(args.get("x-expires"))
        if self.limit is not None:
            self.limit.trim(self)  # a lower limit (policy) trims the queue at once
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
            self.disk = DiskSegment(self, min_seq - 1, max_seq, count)

    # -- producers ---------------------------------------------------------------------------

    def enqueue(self, msg: "Message") -> bool:
        """Accept a routed message. Returns False when the queue refuses it
        (x-overflow reject-publish / reject-publish-dlx on a full queue)."""
        size = len(msg.body)
        limit = self.limit
        if limit is not None and not limit.drops_head and limit.refuses(
            self.message_count, self.message_bytes, size
        ):
            if limit.dead_letters_refused:
                self.dead_letter(msg, "maxlen")
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
        disk = self.disk
        if disk is None:
            if self.consumers and not self.ready:
                consumer = self._choose()
                if consumer is not None:
                    if ttl == 0 and durable:
                        store.add_entry(self.store_id, seq, msg, None)
                    self._taken(entry)
                    consumer.deliver(entry)
                    return True
            if ttl == 0:  # expires on arrival unless it could be delivered at once
                self.dead_letter(msg, "expired")
                return True
            if durable and self.max_priority is None and (
                len(self.ready) >= PAGE_HIGH or self.ready_bytes >= PAGE_BYTES
            ):  # enough in RAM: start a disk segment, with this message as its first
                self.disk = disk = DiskSegment(self, seq - 1, seq)
        elif ttl == 0:  # cannot be delivered at once behind a disk backlog: expires now
            self.dead_letter(msg, "expired")
            return True
        if disk is not None and durable:  # stays on disk only, behind the others
            disk.append(seq, size, expires_at)
        else:  # in RAM: at the end of the ready list, or waiting behind the disk segment
            (self.ready if disk is None else disk.tail).append(entry)
            self.ready_bytes += size
            if expires_at is not None:
                self.ttl.watch(entry)
        if limit is not None:
            limit.trim(self)
        return True

    def dead_letter(self, msg: "Message", reason: str) -> None:
        """`msg` died in this queue (expired, maxlen, rejected): to the DLX, if any."""
        strategy = DISABLED
        if self.dlx is not None and dead_letter(self, msg, reason):
            strategy = AT_MOST_ONCE
        count_dead_letter(self.stats_dead_lettered, reason, strategy)

    # -- consumers ---------------------------------------------------------------------------

    def _taken(self, entry: QueueEntry) -> None:
        """The entry leaves the ready list for a consumer or basic.get."""
        self.stats_delivered += 1
        if entry.redelivered:
            self.stats_redeliver += 1
        entry.state = OUT
        if self.store is not None and entry.seq > self.delivered_hi and entry.msg.persistent:
            self.delivered_hi = entry.seq  # persisted as a watermark: redelivered after restart
            self.store.mark_delivered(self.store_id, entry.seq)

    def drain(self) -> None:
        """Hand ready messages to consumers while any has credit."""
        ready = self.ready
        if self.consumers:
            while ready:
                consumer = self._choose()
                if consumer is None:
                    break
                entry = ready.popleft()
                if entry.state == GONE:
                    self.tombstones -= 1
                    continue
                self.ready_bytes -= len(entry.msg.body)
                self._taken(entry)
                consumer.deliver(entry)
        disk = self.disk
        if disk is not None and len(ready) < PAGE_LOW:
            disk.page_in()

    def add_consumer(self, consumer: "Consumer") -> None:
        self.consumer_set.add(consumer)
        self._choose = self.consumer_set.chooser()
        self.touch()
        self.drain()

    def remove_consumer(self, consumer: "Consumer", drain: bool = True) -> None:
        """`drain=False` when the caller requeues the consumer's messages first (they must
        reach the next single active consumer before newer ones)."""
        if not self.consumer_set.remove(consumer):
            return
        self._choose = self.consumer_set.chooser()
        self.touch()
        if drain and self.single_active and self.consumers and not consumer.unacked:
            # the next consumer takes over; if the old one still has messages in flight it
            # waits for them to be settled or requeued, so the order is kept (as RabbitMQ)
            self.drain()

    exclusive_consumer = property(attrgetter("consumer_set.exclusive"))  # Consumer | None
    single_active = property(attrgetter("consumer_set.single_active"))  # bool
    had_consumer = property(attrgetter("consumer_set.had_consumer"))  # bool

    # -- basic.get -----------------------------------------------------------------------------

    def take(self) -> QueueEntry | None:
        """The head entry, for basic.get (None when nothing is in RAM: see needs_page_in)."""
        self.touch()
        entry = self.pop_head()
        if entry is not None:
            self._taken(entry)
        disk = self.disk
        if disk is not None and len(self.ready) < PAGE_LOW:
            disk.page_in()
        return entry

    @property
    def needs_page_in(self) -> bool:
        return not self.ready and self.disk is not None

    async def wait_paged_in(self) -> None:
        """Wait until the next page is in RAM (basic.get on a queue whose head is on disk)."""
        if self.disk is not None and not self.deleted:
            await self.disk.next_page()

    def paged_in(self, entries: list[QueueEntry], nbytes: int, finished: bool) -> None:
        """The disk segment hands back `entries` in seq order (`nbytes` of bodies read from
        disk; tail entries among them were counted on arrival). `finished`: it has ended."""
        if finished:
            self.disk = None
        self.ready.extend(entries)
        self.ready_bytes += nbytes
        if self.limit is not None:  # over a limit with nothing left in RAM to drop before
            self.limit.trim(self)

    # -- settlement ----------------------------------------------------------------------------

    def forget(self, entry: QueueEntry) -> None:
        """The entry is done with (acked, dropped, expired): remove it from the store."""
        store = self.store
        if store is not None and entry.msg.store_id is not None:
            store.remove_entry(self.store_id, entry.seq, entry.msg.store_id)

    def reject(self, entry: QueueEntry) -> None:
        """Rejected without requeue: dead-letter (reason rejected) and forget."""
        entry.state = GONE
        self.dead_letter(entry.msg, "rejected")
        self.forget(entry)

    def requeue(self, entries: list[QueueEntry]) -> None:
        """Put delivered-but-unacked entries back at their original positions, marked
        redelivered. A requeued message keeps its expiry: one already past it dies now."""
        if self.deleted or not entries:
            return
        back = self.ttl.unexpired(entries)
        for entry in back:
            entry.redelivered = True
            entry.state = READY
            self.ready_bytes += len(entry.msg.body)
        if back:
            if self.max_priority:
                self.ready.requeue(back)  # the same, level by level
            else:
                requeue_into(self.ready, back)
        if self.limit is not None:
            self.limit.trim(self)
        self.drain()

    def pop_head(self) -> QueueEntry | None:
        """Take the oldest live entry out of the ready list in RAM, past any tombstones (None
        if there is none). The caller decides its fate (delivered, dropped)."""
        ready = self.ready
        while ready:
            entry = ready.popleft()
            if entry.state == GONE:
                self.tombstones -= 1
                continue
            self.ready_bytes -= len(entry.msg.body)
            return entry
        return None

    # -- x-expires -------------------------------------------------------------------------------

    def touch(self) -> None:
        """x-expires: the queue was used (declared, consumed from, got from)."""
        self.lease.renew()

    # -- introspection -------------------------------------------------------------------------

    @property
    def message_count(self) -> int:
        """Live ready messages, wherever they are held: what consumers can still receive."""
        count = len(self.ready) - self.tombstones
        disk = self.disk
        if disk is not None:
            count += disk.count + len(disk.tail)
        return count

    @property
    def message_bytes(self) -> int:
        """Body bytes of the live ready messages, wherever they are held."""
        return self.ready_bytes if self.disk is None else self.ready_bytes + self.disk.bytes

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} ready={self.message_count} consumers={len(self.consumers)}>"


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value if isinstance(value, str) else None
