"""Persistent messages kept in process memory, shaped like the SQLite store's tables.

Each message is stored once and referenced by (queue id, seq) entries; it goes with its last
entry. A queue's delivered watermark is one number, as on disk. This lets a broker restarted
in-process with the same MemoryStore get its persistent messages back, and lets the store
contract tests run the message operations against memory and SQLite alike.
"""
from __future__ import annotations

from .base import EntryRow


class MessageTable:
    def __init__(self) -> None:
        self._next_id = 1
        self._messages: dict[int, list] = {}  # id -> [exchange, routing key, header, body, entries]
        self._queues: dict[int, dict[int, tuple[int, int | None]]] = {}  # queue -> seq -> (id, expires_at)
        self._delivered: dict[int, int] = {}  # queue -> delivered watermark

    def add(self, queue_id: int, seq: int, msg, expires_at: int | None) -> None:
        msg_id = msg.store_id
        if msg_id is None:
            msg_id = msg.store_id = self._next_id
            self._next_id += 1
        row = self._messages.get(msg_id)
        if row is None:
            # bytes() copies only a buffer that might change later; bytes stay shared
            row = self._messages[msg_id] = [msg.exchange, msg.routing_key, bytes(msg.header), bytes(msg.body), 0]
        entries = self._queues.get(queue_id)
        if entries is None:
            entries = self._queues[queue_id] = {}
        replaced = entries.get(seq)
        entries[seq] = (msg_id, expires_at)
        row[4] += 1
        if replaced is not None:
            self._unref(replaced[0])

    def remove(self, queue_id: int, seq: int) -> None:
        entries = self._queues.get(queue_id)
        ref = entries.pop(seq, None) if entries is not None else None
        if ref is not None:
            self._unref(ref[0])

    def purge_range(self, queue_id: int, after: int, upto: int) -> None:
        entries = self._queues.get(queue_id)
        if entries is None:
            return
        for seq in [seq for seq in entries if after < seq <= upto]:
            self._unref(entries.pop(seq)[0])

    def drop_queue(self, queue_id: int) -> None:
        for msg_id, _expires_at in self._queues.pop(queue_id, {}).values():
            self._unref(msg_id)
        self._delivered.pop(queue_id, None)

    def mark_delivered(self, queue_id: int, seq: int) -> None:
        if seq > self._delivered.get(queue_id, 0):
            self._delivered[queue_id] = seq

    def _unref(self, msg_id: int) -> None:
        row = self._messages[msg_id]
        row[4] -= 1
        if not row[4]:
            del self._messages[msg_id]

    # -- reading -------------------------------------------------------------------------------

    def read_after(self, queue_id: int, after: int, limit: int) -> list[EntryRow]:
        entries = self._queues.get(queue_id, {})
        # entries arrive in seq order almost always, so this sort is nearly linear
        return self._rows(queue_id, sorted(seq for seq in entries if seq > after)[:limit])

    def read_seqs(self, queue_id: int, seqs: list[int]) -> list[EntryRow]:
        entries = self._queues.get(queue_id, {})
        return self._rows(queue_id, sorted({seq for seq in seqs if seq in entries}))

    def _rows(self, queue_id: int, seqs: list[int]) -> list[EntryRow]:
        entries = self._queues.get(queue_id, {})
        rows = []
        for seq in seqs:
            msg_id, expires_at = entries[seq]
            exchange, routing_key, header, body, _refs = self._messages[msg_id]
            rows.append((seq, msg_id, exchange, routing_key, header, body, expires_at))
        return rows

    def expiring(self, queue_id: int) -> list[tuple[int, int]]:
        entries = self._queues.get(queue_id, {})
        return [(seq, expires_at) for seq, (_id, expires_at) in entries.items() if expires_at is not None]

    def stats(self, queue_id: int) -> tuple[int, int, int, int]:
        """(entry count, lowest seq, highest seq, delivered watermark) of a queue."""
        entries = self._queues.get(queue_id)
        delivered = self._delivered.get(queue_id, 0)
        if not entries:
            return 0, 0, 0, delivered
        return len(entries), min(entries), max(entries), delivered
