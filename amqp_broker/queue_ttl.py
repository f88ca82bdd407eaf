"""Per-message expiry of the entries a queue holds in RAM.

Every message with a TTL (the smaller of its `expiration` and the queue's x-message-ttl, fixed
when it is enqueued) gets its own record in the broker's timer heap (expiry.Expirer), so it
expires at its time wherever it sits: RabbitMQ only expires at the head, which lets a 30-minute
message hold back a 10-second one behind it. Nothing ever scans the queue.

When the timer fires, an entry that is still ready dies where it sits: the queue turns it into
a tombstone (see Queue.bury) and it is dead-lettered. A delivered entry is left alone: its
expiry applies again if it is requeued. Messages that live only on disk have no entry to point
at: the disk segment (queue_paging.py) expires those by sequence number.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .expiry import now_ms
from .queue_entry import GONE, READY, QueueEntry

if TYPE_CHECKING:  # pragma: no cover
    from .queue import Queue


class MessageTTL:
    __slots__ = ("queue", "timers")

    def __init__(self, queue: "Queue"):
        self.queue = queue
        # the vhost's Expirer, looked up when the first entry with an expiry arrives: queues
        # built without a vhost (unit tests) never need it
        self.timers = None

    def watch(self, entry: QueueEntry) -> None:
        """Expire the ready `entry` at its `expires_at`."""
        timers = self.timers
        if timers is None:
            timers = self.timers = self.queue.vhost.expirer
        timers.schedule(entry.expires_at, MessageTTL.expire, self, entry)

    def expire(self, entry: QueueEntry) -> None:
        """Timer: `entry` reached its expiry."""
        queue = self.queue
        if entry.state != READY or queue.deleted:
            return  # delivered, settled, dropped or purged meanwhile
        # it dies where it sits in the ready list (or the disk tail): a tombstone delivery
        # skips, no longer counted
        entry.state = GONE
        queue.tombstones += 1
        queue.ready_bytes -= len(entry.msg.body)
        queue.dead_letter(entry.msg, "expired")
        queue.forget(entry)

    def unexpired(self, entries: list[QueueEntry]) -> list[QueueEntry]:
        """Requeued entries keep their expiry: the ones already past it die now
        (dead-lettered); returns the others."""
        now = None
        alive = []
        queue = self.queue
        for entry in entries:
            expires_at = entry.expires_at
            if expires_at is not None:
                if now is None:
                    now = now_ms()
                if expires_at <= now:
                    entry.state = GONE
                    queue.dead_letter(entry.msg, "expired")
                    queue.forget(entry)
                    continue
            alive.append(entry)
        return alive
