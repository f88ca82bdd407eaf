"""One timer heap for everything that must happen at a given wall-clock time.

Message TTLs (every message at its own time, not only at the head of its queue: a 30-minute
message must not hold back a 10-second one behind it), stored expiries of paged-out messages
and delayed-exchange deliveries all go here. One loop timer is armed for the earliest entry,
so a million pending expiries cost one timer, and nothing ever scans a queue.

Entries are never cancelled: the callback checks whether its target still needs it (the
message may have been consumed meanwhile), which keeps scheduling O(log n) and lock-free.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import time

log = logging.getLogger("amqp_broker.expiry")


def now_ms() -> int:
    return int(time.time() * 1000)


BUCKET_MS = 10  # expiries are grouped per 10 ms: well within the 100 ms promise


class Expirer:
    """A timer wheel over a heap: callbacks due in the same 10 ms bucket share one list, and
    the heap holds one entry per bucket. Scheduling is a dict lookup and a list append."""

    def __init__(self) -> None:
        self._heap: list[int] = []  # bucket numbers
        self._buckets: dict[int, list] = {}
        self._count = 0
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: int | None = None

    def __len__(self) -> int:
        return self._count

    def schedule(self, when_ms: int, function, owner, arg) -> None:
        """Call `function(owner, arg)` at `when_ms` (epoch milliseconds), or up to one bucket
        later, never earlier.

        It takes a plain function (usually a class's method, `MessageTTL.expire`) and its two
        arguments rather than a bound method or an argument tuple, and stores the record
        flat, three list slots each: no container object per call outlives it. With millions
        of pending expiries, such objects would make every run of CPython's cyclic GC slower
        (measured: +1 us per TTL publish). Every message with a TTL comes through here."""
        bucket = -(-when_ms // BUCKET_MS)  # round up: never fire early
        records = self._buckets.get(bucket)
        if records is None:
            records = self._open(bucket)
        self._count += 1
        records.extend((function, owner, arg))

    def _open(self, bucket: int) -> list:
        """A new bucket's (empty) record list, its timer armed if it is the earliest."""
        records = self._buckets[bucket] = []
        heapq.heappush(self._heap, bucket)
        if self._armed_at is None or bucket < self._armed_at:
            self._arm(bucket)
        return records

    def _arm(self, bucket: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, (bucket * BUCKET_MS - now_ms()) / 1000)
        self._armed_at = bucket
        self._handle = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        heap = self._heap
        now_bucket = now_ms() // BUCKET_MS
        while heap and heap[0] <= now_bucket:
            records = self._buckets.pop(heapq.heappop(heap))
            self._count -= len(records) // 3
            for i in range(0, len(records), 3):
                try:
                    records[i](records[i + 1], records[i + 2])
                except Exception:  # one bad callback must not stop the others
                    log.exception("timer callback failed")
        if heap:
            self._arm(heap[0])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed_at = None
        self._heap.clear()
        self._buckets.clear()
        self._count = 0
