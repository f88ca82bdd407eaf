"""One message's place in one queue, shared by the queue core and its collaborators.

It lives apart from queue.py because the collaborators (paging, expiry) create and inspect
entries, and queue.py imports them: keeping it here avoids an import cycle.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .message import Message

# QueueEntry.state. An entry that dies while it sits in the ready list (it expired there) is
# not removed from the list, which would cost O(n): it stays as a tombstone (GONE) that
# delivery skips, and the queue counts it out of its live ready count.
READY, OUT, GONE = 0, 1, 2


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


def seq_of(entry: QueueEntry) -> int:
    """Sort key: entries merged from several places go back in publication order."""
    return entry.seq
