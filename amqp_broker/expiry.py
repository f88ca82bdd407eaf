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
import itertools
import time


def now_ms() -> int:
    return int(time.time() * 1000)


class Expirer:
    def __init__(self) -> None:
        self._heap: list[tuple] = []
        self._counter = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: int | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, when_ms: int, callback, *args) -> None:
        """Call `callback(*args)` at `when_ms` (epoch milliseconds), or soon after."""
        heapq.heappush(self._heap, (when_ms, next(self._counter), callback, args))
        if self._armed_at is None or when_ms < self._armed_at:
            self._arm(when_ms)

    def _arm(self, when_ms: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, (when_ms - now_ms()) / 1000)
        self._armed_at = when_ms
        self._handle = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        heap = self._heap
        now = now_ms()
        while heap and heap[0][0] <= now:
            _when, _n, callback, args = heapq.heappop(heap)
            try:
                callback(*args)
            except Exception:  # one bad callback must not stop the others
                import logging

                logging.getLogger("amqp_broker.expiry").exception("timer callback failed")
        if heap:
            self._arm(heap[0][0])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._armed_at = None
        self._heap.clear()
