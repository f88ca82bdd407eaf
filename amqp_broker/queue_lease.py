"""x-expires: a queue left unused for that many milliseconds is deleted.

"Used" is what RabbitMQ counts as use: a declare (passive too), basic.get, basic.consume, and
any consumer: the countdown only runs while the queue has none. The queue restarts it
(`renew`) on each use; an expired queue is removed like a deleted one, and its messages are
not dead-lettered (as RabbitMQ).
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .queue import Queue


class IdleLease:
    __slots__ = ("queue", "ms", "_handle")

    def __init__(self, queue: "Queue"):
        self.queue = queue
        self.ms: int | None = None  # x-expires, from the queue's effective arguments
        self._handle: asyncio.TimerHandle | None = None

    def renew(self) -> None:
        """The queue was used: start the countdown again (if it has no consumers)."""
        self.cancel()
        queue = self.queue
        if self.ms is None or queue.deleted or queue.consumers:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # configured outside the broker's loop (unit tests)
            return
        self._handle = loop.call_later(self.ms / 1000, self._lapse)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _lapse(self) -> None:
        self._handle = None
        queue = self.queue
        if not queue.consumers and not queue.deleted:
            queue.vhost.remove_queue(queue)
