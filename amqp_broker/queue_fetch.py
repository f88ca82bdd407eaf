"""Taking messages out of a queue without a channel: the management API's "get messages".

It is basic.get followed by the settlement the caller chose, as rabbitmq_management does it
(rabbit_mgmt_wm_queue_get: up to `count` basic.gets on one channel, then one ack, nack or reject
covering all of them). So a requeued message comes back once per request, marked redelivered,
and a rejected one is dead-lettered like any rejected message. Heads paged out to disk are read
back first, as basic.get waits for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .queue import Queue
    from .queue_entry import QueueEntry

# what happens to the fetched messages (the management API's `ackmode` values)
ACK_REQUEUE = "ack_requeue_true"
ACK = "ack_requeue_false"
REJECT_REQUEUE = "reject_requeue_true"
REJECT = "reject_requeue_false"
SETTLEMENTS = (ACK_REQUEUE, ACK, REJECT_REQUEUE, REJECT)


@dataclass
class Fetched:
    """One fetched message as basic.get-ok saw it: its entry, whether it had been delivered
    before (settling may requeue it, which marks the entry), and how many ready messages were
    left behind it."""

    entry: "QueueEntry"
    redelivered: bool
    remaining: int


async def fetch(queue: "Queue", count: int, settlement: str) -> list[Fetched]:
    """Take up to `count` messages from the head of `queue`, then settle them all."""
    if settlement not in SETTLEMENTS:
        raise ValueError(settlement)
    fetched: list[Fetched] = []
    while len(fetched) < count and not queue.deleted:
        entry = queue.take()
        if entry is None:
            if not queue.needs_page_in:
                break
            await queue.wait_paged_in()
            continue
        fetched.append(Fetched(entry, entry.redelivered, queue.message_count))
    settle(queue, [f.entry for f in fetched], settlement)
    return fetched


def settle(queue: "Queue", entries: list["QueueEntry"], settlement: str) -> None:
    if settlement in (ACK_REQUEUE, REJECT_REQUEUE):
        queue.requeue(entries)
    elif settlement == ACK:
        for entry in entries:
            queue.forget(entry)
    else:
        for entry in entries:
            queue.reject(entry)
