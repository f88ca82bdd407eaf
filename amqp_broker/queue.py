"""A queue: ready messages in FIFO order and the consumers that drain them.

Delivery is synchronous and push-based: enqueueing a message hands it straight to a consumer
with credit when one is free, and every event that gives credit back (ack, qos, a consumer
joining, a paused socket draining) calls `drain()`. No task per message, no polling.

Every change to a queue goes through a handful of operations (enqueue, take, requeue, remove,
purge) with the entry's per-queue sequence number, so the same changes could be replayed in the
same order on another node's copy of the queue (mirroring, later).
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .consumer import Consumer
    from .message import Message


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
        self.unacked = 0
        self.deleted = False
        # exchanges holding a binding to this queue, so deleting the queue can unbind it
        self.bound_from: set = set()
        self._next_seq = 0
        self.ready_bytes = 0  # body bytes of ready messages (x-max-length-bytes, stats)
        self.stats_published = 0
        self.stats_delivered = 0
        self.max_length: int | None = None
        self.max_bytes: int | None = None
        self.overflow = "drop-head"
        self.configure()

    def configure(self) -> None:
        """(Re)read the limits from the queue's arguments."""
        args = self.arguments
        self.max_length = _int_or_none(args.get("x-max-length"))
        self.max_bytes = _int_or_none(args.get("x-max-length-bytes"))
        overflow = args.get("x-overflow", "drop-head")
        self.overflow = overflow.decode() if isinstance(overflow, bytes) else overflow

    # -- producers ---------------------------------------------------------------------------

    def enqueue(self, msg: "Message") -> bool:
        """Accept a routed message. Returns False when the queue refuses it
        (x-overflow reject-publish on a full queue)."""
        limited = self.max_length is not None or self.max_bytes is not None
        if limited and self.overflow != "drop-head" and self._would_exceed(len(msg.body)):
            return False
        self._next_seq += 1
        entry = QueueEntry(msg, self._next_seq)
        self.stats_published += 1
        if self.consumers and not self.ready:
            consumer = self._next_consumer()
            if consumer is not None:
                self.stats_delivered += 1
                consumer.deliver(entry)
                return True
        if msg.ttl == 0:
            return True  # TTL 0: expires on arrival unless it could be delivered at once
        self.ready.append(entry)
        self.ready_bytes += len(msg.body)
        if limited:
            self._drop_head_over_limit()
        return True

    def _would_exceed(self, size: int) -> bool:
        """rabbit_amqqueue_process:would_exceed_queue_length/2 (only ready messages count)."""
        if self.max_length is not None and len(self.ready) >= self.max_length:
            return True
        return self.max_bytes is not None and self.ready_bytes + size > self.max_bytes

    def _drop_head_over_limit(self) -> None:
        """drop-head: discard the oldest ready messages while over a limit."""
        ready = self.ready
        while ready and (
            (self.max_length is not None and len(ready) > self.max_length)
            or (self.max_bytes is not None and self.ready_bytes > self.max_bytes)
        ):
            self.ready_bytes -= len(ready.popleft().msg.body)

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

    def drain(self) -> None:
        """Hand ready messages to consumers while any has credit."""
        ready = self.ready
        if not ready or not self.consumers:
            return
        while ready:
            consumer = self._next_consumer()
            if consumer is None:
                return
            self.stats_delivered += 1
            entry = ready.popleft()
            self.ready_bytes -= len(entry.msg.body)
            consumer.deliver(entry)

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
        """The head entry, for basic.get."""
        if self.ready:
            self.stats_delivered += 1
            entry = self.ready.popleft()
            self.ready_bytes -= len(entry.msg.body)
            return entry
        return None

    # -- settlement ----------------------------------------------------------------------------

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
        count = len(self.ready)
        self.ready.clear()
        self.ready_bytes = 0
        return count

    # -- introspection -------------------------------------------------------------------------

    @property
    def message_count(self) -> int:
        return len(self.ready)

    @property
    def consumer_count(self) -> int:
        return len(self.consumers)

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} ready={len(self.ready)} consumers={len(self.consumers)}>"


def _seq_of(entry: QueueEntry) -> int:
    return entry.seq


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
