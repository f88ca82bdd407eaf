"""Bounded memory for a durable queue: the persistent messages that live only in the store.

A durable FIFO queue keeps at most PAGE_HIGH ready messages (or PAGE_BYTES body bytes) in
RAM. Past that, persistent messages stay only in the store: the queue's disk segment, the
sequence numbers in (lo, hi]. When the in-memory head runs low (PAGE_LOW), the next PAGE_SIZE
are read back in order. A restart starts every stored message in a disk segment too.

Transient messages never touch the disk, so one that arrives while a disk segment exists
waits in the segment's `tail` (in RAM, already counted by the queue) and is merged back by
sequence number once the pages read before it have caught up: the queue's order is kept.

A disk segment exists only while it stands for messages: the queue holds one (Queue.disk) or
None, which is the single test its hot path makes. The segment ends when a read finds nothing
more on disk (every tail entry then moves to the ready list), or when the queue is purged or
deleted; a read or an expiry timer still in flight for an ended segment sees `closed` and
leaves the queue alone. (Messages that had already expired on disk are still dead-lettered:
they died before the segment ended.)
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .expiry import now_ms
from .message import Message
from .queue_entry import GONE, QueueEntry, seq_of

if TYPE_CHECKING:  # pragma: no cover
    from .queue import Queue

log = logging.getLogger("amqp_broker.queue")

PAGE_HIGH = 20_000  # ready messages kept in RAM before persistent ones stay on disk only
PAGE_BYTES = 32 << 20  # ... or this many body bytes
PAGE_LOW = 10_000  # page in when fewer are left in RAM
PAGE_SIZE = 10_000


class DiskSegment:
    __slots__ = ("queue", "timers", "lo", "hi", "count", "bytes", "tail", "closed",
                 "_loading", "_waiters", "_gone", "_expiring")

    def __init__(self, queue: "Queue", lo: int, hi: int, count: int = 0, nbytes: int = 0):
        self.queue = queue
        self.timers = queue.vhost.expirer
        self.lo = lo  # every seq up to lo has been read back (or was never on disk)
        self.hi = hi
        self.count = count  # live messages on disk (expired ones are out at once)
        self.bytes = nbytes  # their body bytes (0 for what a restart found: sizes unknown)
        self.tail: list[QueueEntry] = []  # transient entries that arrived behind the segment
        self.closed = False
        self._loading = False
        self._waiters: list[asyncio.Future] = []
        # seq -> "its bytes are out of self.bytes": expired while on disk. Kept until a read
        # passes it, so the read skips it; the bytes come out once, whichever of the read
        # and the expiry batch sees the body first.
        self._gone: dict[int, bool] = {}
        self._expiring: list[int] = []

    # -- growing -------------------------------------------------------------------------------

    def append(self, seq: int, size: int, expires_at: int | None) -> None:
        """A persistent message, already written to the store, stays there only."""
        self.count += 1
        self.bytes += size
        self.hi = seq
        if expires_at is not None:
            self.timers.schedule(expires_at, DiskSegment.expire, self, seq)

    def recover_expiries(self, expiring: list[tuple[int, int]]) -> None:
        """Stored entries keep their absolute expiry across a restart: (seq, expires_at)."""
        for seq, expires_at in expiring:
            self.timers.schedule(expires_at, DiskSegment.expire, self, seq)

    # -- reading back --------------------------------------------------------------------------

    def page_in(self) -> None:
        """Start reading the next page, unless a read is already running."""
        if not self._loading:
            self._loading = True
            asyncio.get_running_loop().create_task(self._page_in())

    async def next_page(self) -> None:
        """Wait until the next page is in RAM (or the segment has ended)."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        self.page_in()
        await fut

    async def _page_in(self) -> None:
        queue = self.queue
        rows = []
        try:
            rows = await queue.store.read_entries(queue.store_id, self.lo, PAGE_SIZE)
        except Exception:
            log.exception("paging in queue %r failed", queue.name)
        finally:
            self._loading = False
        if not self.closed:
            self._adopt(rows)
        self._wake()
        if not queue.deleted:
            queue.drain()

    def _adopt(self, rows) -> None:
        """Turn the rows read into entries and hand them, with the tail entries they
        overtook, to the queue."""
        queue = self.queue
        floor = self.lo
        recovered = queue.recovered_delivered
        gone = self._gone
        entries = []
        size = 0
        gone_size = 0
        now = now_ms()
        last_seen = floor
        for seq, msg_id, exchange, routing_key, header, body, expires_at in rows:
            if seq <= floor or seq > self.hi:
                continue
            last_seen = seq
            if seq in gone:  # expired while on disk: counted out, dead-lettered by the batch
                if not gone[seq]:
                    gone[seq] = True
                    gone_size += len(body)
                continue
            self.count -= 1
            if expires_at is not None and expires_at <= now:
                # expired while nobody watched (its timer was not due yet, or a restart)
                gone_size += len(body)
                queue.dead_letter(_message(exchange, routing_key, header, body), "expired")
                queue.store.remove_entry(queue.store_id, seq, msg_id)
                continue
            msg = _message(exchange, routing_key, header, body)
            msg.store_id = msg_id
            entries.append(QueueEntry(msg, seq, seq <= recovered, expires_at))
            size += len(body)
        if last_seen > floor:
            self.lo = last_seen
            if gone:
                self._gone = {s: done for s, done in gone.items() if s > last_seen}
        self.bytes = max(0, self.bytes - size - gone_size)
        watch = queue.ttl.watch
        for entry in entries:  # fresh from disk: their expiry timers start now
            if entry.expires_at is not None:
                watch(entry)
        finished = self.count <= 0 or last_seen == floor
        if finished:
            moved, self.tail = self.tail, []
            self.closed = True
        else:
            split = 0
            tail = self.tail
            while split < len(tail) and tail[split].seq < last_seen:
                split += 1
            moved, self.tail = tail[:split], tail[split:]
        if moved:  # the tail entries they overtook go before the newer ones
            entries = sorted(entries + moved, key=seq_of)
        queue.paged_in(entries, size, finished)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    # -- expiry of messages that are only on disk ----------------------------------------------

    def expire(self, seq: int) -> None:
        """Timer: the message `seq`, on disk only, expired; read it back to dead-letter it."""
        if self.closed or not self.count or seq <= self.lo or seq > self.hi or seq in self._gone:
            return  # read back meanwhile (its entry has its own timer), purged, or deleted
        self._gone[seq] = False
        self.count -= 1
        self._expiring.append(seq)
        if len(self._expiring) == 1:
            asyncio.get_running_loop().create_task(self._expire_batch())

    async def _expire_batch(self) -> None:
        await asyncio.sleep(0)  # gather the other expiries of this timer tick
        seqs, self._expiring = self._expiring, []
        queue = self.queue
        try:
            rows = await queue.store.read_seqs(queue.store_id, seqs)
        except Exception:
            log.exception("reading expired messages of %r failed", queue.name)
            return
        gone = self._gone
        for seq, msg_id, exchange, routing_key, header, body, _expires in rows:
            if gone.get(seq) is False:
                gone[seq] = True
                self.bytes = max(0, self.bytes - len(body))
            queue.dead_letter(_message(exchange, routing_key, header, body), "expired")
            queue.store.remove_entry(queue.store_id, seq, msg_id)

    # -- ending --------------------------------------------------------------------------------

    def drop(self, purge: bool) -> None:
        """The segment ends without being read back: queue.purge (`purge`: its messages are
        removed from the store, none dead-lettered) or the queue deleted."""
        if purge and self.count:
            self.queue.store.purge_range(self.queue.store_id, self.lo, self.hi)
        for entry in self.tail:
            entry.state = GONE  # their expiry timers must not count them out again
        self.tail = []
        self.count = 0
        self.bytes = 0
        self.closed = True
        self._wake()


def _message(exchange: str, routing_key: str, header: bytes, body: bytes) -> Message:
    msg = Message(exchange, routing_key, header, body)
    msg.persistent = True  # only persistent messages are ever on disk
    return msg
