"""Dropping every ready message of a queue at once: a purge (queue.purge, the management API's
contents DELETE) or the queue's deletion. Unacked messages stay with their channels either way;
none is dead-lettered (as RabbitMQ)."""
from __future__ import annotations

from .queue_entry import GONE, READY


def purge(queue) -> int:
    """Drop every ready message, from the store too; how many there were."""
    count = queue.message_count
    _drop_ready(queue, purge=True)
    return count


def discard_all(queue) -> None:
    """The queue is being deleted: drop everything held in RAM (its store rows go with it)."""
    queue.deleted = True
    _drop_ready(queue, purge=False)
    queue.lease.cancel()


def _drop_ready(queue, purge: bool) -> None:
    for entry in queue.ready:
        if entry.state == READY:
            entry.state = GONE
            if purge:
                queue.forget(entry)
    queue.ready.clear()
    queue.tombstones = 0
    queue.ready_bytes = 0
    disk, queue.disk = queue.disk, None
    if disk is not None:
        disk.drop(purge)
