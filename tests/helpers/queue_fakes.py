"""Fakes for the queue unit tests (test_queue_parts_unit.py, test_queue_paging_unit.py): a
hand-fired timer heap, a vhost, a queue that records what it dead-letters, consumers with
credit, and a message store with the message operations the queue uses.
"""
from __future__ import annotations

import asyncio

from amqp_broker.message import Message
from amqp_broker.queue import Queue


class FakeExpirer:
    """Expirer.schedule's interface; fire(upto) runs what is due, in time order."""

    def __init__(self):
        self.records = []

    def schedule(self, when_ms, function, owner, arg):
        self.records.append((when_ms, function, owner, arg))

    def fire(self, upto: int | None = None) -> None:
        due = sorted((r for r in self.records if upto is None or r[0] <= upto), key=lambda r: r[0])
        self.records = [r for r in self.records if r not in due]
        for _when, function, owner, arg in due:
            function(owner, arg)


class FakeVHost:
    def __init__(self):
        self.expirer = FakeExpirer()
        self.removed = []

    def remove_queue(self, queue):
        self.removed.append(queue)


class RecordingQueue(Queue):
    """A Queue that records what it dead-letters instead of routing it to a DLX."""

    def __init__(self, *args, **kwargs):
        self.dead: list[tuple[bytes, str]] = []
        super().__init__(*args, **kwargs)

    def dead_letter(self, msg, reason):
        self.dead.append((msg.body, reason))


class FakeConsumer:
    def __init__(self, name, credit=None, priority=0, exclusive=False):
        self.name = name
        self.credit = credit  # None: unlimited
        self.priority = priority
        self.exclusive = exclusive
        self.unacked = 0
        self.got: list[bytes] = []

    def can_take(self) -> bool:
        return self.credit is None or self.credit > 0

    def deliver(self, entry) -> None:
        self.got.append(entry.msg.body)
        if self.credit is not None:
            self.credit -= 1

    def __repr__(self):
        return f"<Fake {self.name}>"


def message(body: bytes, ttl: int | None = None) -> Message:
    msg = Message("", "q", b"", body)
    msg.ttl = ttl
    return msg


def ttl_queue(**arguments) -> RecordingQueue:
    return RecordingQueue(FakeVHost(), "q", arguments=arguments)


class FakeStore:
    """The message operations of storage.sqlite.SQLiteStore that a queue uses, in memory,
    for one queue. Reads are coroutines, as the real ones (they yield to the loop once)."""

    persists_messages = True

    def __init__(self):
        self.rows: dict[int, tuple] = {}  # seq -> (message id, Message, expires_at)
        self.next_id = 1
        self.delivered = 0
        self.reads = 0

    def add_entry(self, queue_id, seq, msg, expires_at=None):
        if msg.store_id is None:
            msg.store_id = self.next_id
            self.next_id += 1
        self.rows[seq] = (msg.store_id, msg, expires_at)

    def remove_entry(self, queue_id, seq, msg_id):
        self.rows.pop(seq, None)

    def purge_range(self, queue_id, after, upto):
        for seq in [s for s in self.rows if after < s <= upto]:
            del self.rows[seq]

    def mark_delivered(self, queue_id, seq):
        self.delivered = seq

    async def read_entries(self, queue_id, after, limit):
        self.reads += 1
        seqs = sorted(s for s in self.rows if s > after)[:limit]
        rows = [self._row(s) for s in seqs]
        await asyncio.sleep(0)
        return rows

    async def read_seqs(self, queue_id, seqs):
        rows = [self._row(s) for s in sorted(seqs) if s in self.rows]
        await asyncio.sleep(0)
        return rows

    def _row(self, seq):
        msg_id, msg, expires_at = self.rows[seq]
        return (seq, msg_id, msg.exchange, msg.routing_key, msg.header, msg.body, expires_at)
