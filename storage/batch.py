"""One batch of changes to the SQLite database, and how it is written as one transaction.

Why it is shaped like this:

* **Stored once, referenced per queue.** `messages` holds the body and raw content header once;
  `queue_messages` holds one (queue, seq) row per queue that has the message. A message row
  goes when its last reference goes. Purging or deleting a queue is a set operation.
* **Cheap when consumers keep up.** A reference removed before its batch was written cancels
  the insert: a message published and acked within one commit window never touches the disk.
* **Redelivered flags without a write per delivery.** A queue delivers in `seq` order, so
  each durable queue stores one watermark `delivered_seq`; after a restart the messages at or
  below it come back with redelivered=true.
"""
from __future__ import annotations

import sqlite3


class Batch:
    """Everything to write in one transaction, in the order it must be applied.

    The store fills it from the event loop; once handed to the writer it is only read (on
    aiosqlite's thread, by write_batch) and the store fills the next one.
    """

    __slots__ = ("id", "defs", "msgs", "msg_refs", "refs", "ref_deletes", "candidates", "range_ops",
                 "delivered", "waiters", "bytes")

    def __init__(self, batch_id: int):
        self.id = batch_id
        self.defs: list[tuple[str, tuple]] = []
        self.msgs: dict[int, tuple] = {}  # message id -> row
        self.msg_refs: dict[int, int] = {}  # message id -> how many of `refs` point at it
        self.refs: dict[tuple[int, int], tuple[int, int | None]] = {}  # (queue, seq) -> (msg id, expires_at)
        self.ref_deletes: list[tuple[int, int]] = []
        self.candidates: set[int] = set()  # message ids that may have lost their last reference
        self.range_ops: list[tuple] = []
        self.delivered: dict[int, int] = {}  # queue id -> delivered watermark
        self.waiters: list = []
        self.bytes = 0

    def empty(self) -> bool:
        return not (self.defs or self.msgs or self.refs or self.ref_deletes or self.range_ops
                    or self.delivered or self.candidates)

    def forget_pending_refs(self, queue_id: int, after: int | None, upto: int | None) -> None:
        """Cancel this batch's not yet written entries of a queue with after < seq <= upto
        (all of them when `after` is None)."""
        doomed = [key for key in self.refs if key[0] == queue_id and (after is None or after < key[1] <= upto)]
        for key in doomed:
            self.unref_pending(self.refs.pop(key)[0])

    def unref_pending(self, msg_id: int) -> None:
        """One of this batch's references to `msg_id` was cancelled."""
        left = self.msg_refs[msg_id] - 1
        if left:
            self.msg_refs[msg_id] = left
            return
        del self.msg_refs[msg_id]
        row = self.msgs.pop(msg_id, None)
        if row is not None:
            self.bytes -= len(row[4])
        else:
            self.candidates.add(msg_id)  # the row was written by an earlier batch


def write_batch(conn: sqlite3.Connection, batch: Batch) -> None:
    """Apply one batch as one transaction (runs on aiosqlite's thread)."""
    conn.execute("BEGIN")
    try:
        for sql, params in batch.defs:
            conn.execute(sql, params)
        if batch.msgs:
            conn.executemany(
                "INSERT INTO messages (id, exchange, routing_key, header, body) VALUES (?, ?, ?, ?, ?)",
                batch.msgs.values(),
            )
        if batch.refs:
            conn.executemany(
                "INSERT OR REPLACE INTO queue_messages (queue_id, seq, message_id, expires_at) "
                "VALUES (?, ?, ?, ?)",
                [(q, s, m, e) for (q, s), (m, e) in batch.refs.items()],
            )
        if batch.ref_deletes:
            conn.executemany("DELETE FROM queue_messages WHERE queue_id=? AND seq=?", batch.ref_deletes)
        for queue_id, after, upto in batch.range_ops:
            # messages referenced only from the doomed range go too: two set operations
            if after is None:
                conn.execute(
                    "DELETE FROM messages WHERE id IN (SELECT message_id FROM queue_messages "
                    "WHERE queue_id=?) AND NOT EXISTS (SELECT 1 FROM queue_messages o "
                    "WHERE o.message_id = messages.id AND o.queue_id != ?)",
                    (queue_id, queue_id),
                )
                conn.execute("DELETE FROM queue_messages WHERE queue_id=?", (queue_id,))
            else:
                span = (queue_id, after, upto)
                conn.execute(
                    "DELETE FROM messages WHERE id IN (SELECT message_id FROM queue_messages "
                    "WHERE queue_id=? AND seq>? AND seq<=?) AND NOT EXISTS (SELECT 1 FROM "
                    "queue_messages o WHERE o.message_id = messages.id AND NOT "
                    "(o.queue_id=? AND o.seq>? AND o.seq<=?))",
                    span + span,
                )
                conn.execute("DELETE FROM queue_messages WHERE queue_id=? AND seq>? AND seq<=?", span)
        if batch.candidates:
            conn.executemany(
                "DELETE FROM messages WHERE id=? AND NOT EXISTS "
                "(SELECT 1 FROM queue_messages WHERE message_id=?)",
                [(m, m) for m in batch.candidates],
            )
        if batch.delivered:
            conn.executemany(
                "UPDATE queues SET delivered_seq=max(delivered_seq, ?) WHERE id=?",
                [(seq, q) for q, seq in batch.delivered.items()],
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
