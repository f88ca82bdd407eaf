"""The ready list of a queue: FIFO, or one FIFO per priority level (x-max-priority).

Both keep entries in `seq` order within a level, so a requeued entry returns to its
original position and redelivery order is stable.
"""
from __future__ import annotations

from collections import deque

from .properties import has_properties
from .queue_entry import seq_of


def requeue_into(ready: deque, entries: list) -> None:
    """Merge `entries` (any order) back into `ready` by seq. Usually they are all older than
    the head, so this is one extendleft; otherwise only the overlapping prefix is merged."""
    entries = sorted(entries, key=seq_of)
    if not ready or entries[-1].seq < ready[0].seq:
        ready.extendleft(reversed(entries))
        return
    prefix = []
    last = entries[-1].seq
    while ready and ready[0].seq < last:
        prefix.append(ready.popleft())
    ready.extendleft(reversed(sorted(prefix + entries, key=seq_of)))


class PriorityReady:
    """Ready entries by priority: popleft() gives the oldest entry of the highest priority.
    A message without a priority counts as 0, one above the maximum as the maximum."""

    __slots__ = ("levels", "max_priority", "_len")

    def __init__(self, max_priority: int):
        self.max_priority = max_priority
        self.levels = [deque() for _ in range(max_priority + 1)]
        self._len = 0

    def level_of(self, entry) -> int:
        msg = entry.msg
        priority = msg.props.priority if has_properties(msg.header) else None
        if not priority:
            return 0
        return min(priority, self.max_priority)

    def append(self, entry) -> None:
        self.levels[self.level_of(entry)].append(entry)
        self._len += 1

    def popleft(self):
        for level in reversed(self.levels):
            if level:
                self._len -= 1
                return level.popleft()
        raise IndexError("pop from an empty PriorityReady")

    def requeue(self, entries: list) -> None:
        by_level: dict[int, list] = {}
        for entry in entries:
            by_level.setdefault(self.level_of(entry), []).append(entry)
        for level, group in by_level.items():
            requeue_into(self.levels[level], group)
        self._len += len(entries)

    def extend(self, entries) -> None:
        for entry in entries:
            self.append(entry)

    def clear(self) -> None:
        for level in self.levels:
            level.clear()
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self):
        for level in reversed(self.levels):
            yield from level
