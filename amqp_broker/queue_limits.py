"""A queue's length limit: x-max-length / x-max-length-bytes and what x-overflow does when a
message would break it, as rabbit_amqqueue_process does for a classic queue.

Only ready messages count (delivered-but-unacked ones do not), and only the bodies' bytes.
The queue core asks this policy before it accepts a publish (`refuses`) and after anything
that can add ready messages (`trim`), with its live counts: the same ones every client sees.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .queue_entry import GONE

if TYPE_CHECKING:  # pragma: no cover
    from .queue import Queue

DROP_HEAD = "drop-head"
REJECT_PUBLISH = "reject-publish"
REJECT_PUBLISH_DLX = "reject-publish-dlx"


class LengthLimit:
    """The limits of one queue (built by `of`, which returns None when there are none, so
    an unlimited queue pays a single `is None` test per publish)."""

    __slots__ = ("max_length", "max_bytes", "drops_head", "dead_letters_refused")

    def __init__(self, max_length: int | None, max_bytes: int | None, overflow: str):
        self.max_length = max_length
        self.max_bytes = max_bytes
        # drop-head makes room by discarding the oldest; the reject-* modes keep what is
        # queued and refuse the newcomer instead (reject-publish-dlx also dead-letters it)
        self.drops_head = overflow not in (REJECT_PUBLISH, REJECT_PUBLISH_DLX)
        self.dead_letters_refused = overflow == REJECT_PUBLISH_DLX

    @classmethod
    def of(cls, max_length: int | None, max_bytes: int | None, overflow: str | None) -> "LengthLimit | None":
        if max_length is None and max_bytes is None:
            return None
        return cls(max_length, max_bytes, overflow or DROP_HEAD)

    def refuses(self, count: int, nbytes: int, size: int) -> bool:
        """reject-publish*: would a message of `size` body bytes break the limit of a queue
        holding `count` ready messages of `nbytes` bytes?
        (rabbit_amqqueue_process:would_exceed_queue_length/2)"""
        if self.drops_head:
            return False
        if self.max_length is not None and count >= self.max_length:
            return True
        return self.max_bytes is not None and nbytes + size > self.max_bytes

    def exceeded(self, count: int, nbytes: int) -> bool:
        """Is a queue holding `count` ready messages of `nbytes` bytes over the limit?"""
        if self.max_length is not None and count > self.max_length:
            return True
        return self.max_bytes is not None and nbytes > self.max_bytes

    def trim(self, queue: "Queue") -> None:
        """drop-head: discard the oldest ready messages (dead-lettered, reason maxlen) while
        the queue is over the limit. Run after every change that can add ready messages
        (publish, requeue, a lower limit from a policy)."""
        if not self.drops_head:
            return  # reject-publish never drops what is already queued
        max_length = self.max_length
        max_bytes = self.max_bytes
        # `exceeded`, inline: a full drop-head queue comes here on every publish
        while (max_length is not None and queue.message_count > max_length) or (
            max_bytes is not None and queue.message_bytes > max_bytes
        ):
            entry = queue.pop_head()
            if entry is None:
                return  # the rest is on disk: trimmed as it is read back (Queue.paged_in)
            entry.state = GONE
            queue.dead_letter(entry.msg, "maxlen")
            queue.forget(entry)
