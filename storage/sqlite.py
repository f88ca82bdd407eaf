"""The durable store: definitions and persistent messages in one SQLite database.

Why it is shaped like this (each point is explained where it is implemented):

* **Group commit** and **confirmed means on disk** (commit.py): the event loop never waits for
  the disk inside the per-message path; one writer task commits a whole batch in one
  transaction, in WAL mode with `synchronous=FULL`, and only then calls the batch's waiters.
* **Stored once, referenced per queue**, **cheap when consumers keep up**, **redelivered
  flags without a write per delivery** (batch.py).
* **Versioned schema** with migration steps (schema.py); **one broker per data dir**
  (lock.py); the definition tables, read once at open (sqlite_defs.py).

This class is the core that ties them together and implements the Store interface.
"""
from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import aiosqlite

from . import sqlite_defs as sql
from .aiosqlite_batch import connect
from .base import (DEFAULT_HASHING, BindingDef, DelayedRow, Definitions, EntryRow, ExchangeDef, QueueDef, Store,
                   StoreError)
from .commit import BACKLOG_HIGH, BACKLOG_LOW, GroupCommit
from .lock import DataDirLock
from .schema import SCHEMA_VERSION, migrate
from .sqlite_defs import Snapshot, read_snapshot

__all__ = ["SQLiteStore", "SCHEMA_VERSION", "DB_NAME", "LOCK_NAME", "BACKLOG_HIGH", "BACKLOG_LOW"]

log = logging.getLogger("amqp_broker.storage")

DB_NAME = "broker.db"
LOCK_NAME = "broker.lock"

_ENTRY_COLUMNS = "q.seq, m.id, m.exchange, m.routing_key, m.header, m.body, q.expires_at"


class SQLiteStore(Store):
    persists_messages = True

    def __init__(self, data_dir: str | os.PathLike, synchronous: str = "FULL"):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._lock = DataDirLock(self.data_dir, LOCK_NAME)
        self._commits = GroupCommit(self.path)
        self._snapshot = Snapshot()
        self._next_message_id = 1
        self._next_queue_id = 1
        self._next_delayed_id = 1

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        self._lock.acquire()
        try:
            self._db = await connect(self.path, isolation_level=None)
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute(f"PRAGMA synchronous={self.synchronous}")
            await self._db.execute("PRAGMA cache_size=-8000")  # 8 MB page cache: bounded RAM
            await migrate(self._db, self.path)
            snap = self._snapshot = await read_snapshot(self._db)
        except sqlite3.DatabaseError as exc:
            await self._close_db()
            self._lock.release()
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        except BaseException:
            await self._close_db()
            self._lock.release()
            raise
        self._next_message_id = snap.next_message_id
        self._next_queue_id = max(self._next_queue_id, snap.next_queue_id)
        self._next_delayed_id = snap.next_delayed_id
        self._commits.db = self._db

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            await self._close_db()
            self._lock.release()

    async def _close_db(self) -> None:
        self._commits.db = None
        if self._db is not None:
            try:
                await self._db.close()
            except Exception:  # closing after a failure must not hide the failure
                log.exception("closing the database failed")
            self._db = None

    # -- definitions ---------------------------------------------------------------------------

    def _def(self, statement: str, params: tuple) -> None:
        self._commits.batch.defs.append((statement, params))
        self._commits.kick()

    def load(self) -> Definitions:
        return self._snapshot.definitions

    def save_exchange(self, exchange: ExchangeDef) -> None:
        self._def(sql.SAVE_EXCHANGE, (exchange.vhost, exchange.name, exchange.type, int(exchange.auto_delete),
                                      int(exchange.internal), exchange.arguments))

    def delete_exchange(self, vhost: str, name: str) -> None:
        self._def(sql.DELETE_EXCHANGE, (vhost, name))
        self._def(sql.DELETE_EXCHANGE_BINDINGS, (vhost, name, name))

    def save_queue(self, queue: QueueDef) -> int:
        queue_id = self._next_queue_id
        self._next_queue_id += 1
        self._def(sql.SAVE_QUEUE, (queue_id, queue.vhost, queue.name, int(queue.auto_delete), queue.arguments))
        return queue_id

    def delete_queue(self, vhost: str, name: str, queue_id: int | None = None) -> None:
        self._def(sql.DELETE_QUEUE, (vhost, name))
        self._def(sql.DELETE_QUEUE_BINDINGS, (vhost, name))
        if queue_id is not None:
            batch = self._commits.batch
            batch.forget_pending_refs(queue_id, None, None)
            batch.range_ops.append((queue_id, None, None))

    def save_binding(self, binding: BindingDef) -> None:
        self._def(sql.SAVE_BINDING, sql.binding_params(binding))

    def delete_binding(self, binding: BindingDef) -> None:
        self._def(sql.DELETE_BINDING, sql.binding_params(binding))

    # -- users, policies, delayed messages -----------------------------------------------------

    def users(self) -> list[tuple]:
        return list(self._snapshot.users)

    def save_user(self, name: str, salt: bytes, password_hash: bytes, tags: str,
                  hashing_algorithm: str = DEFAULT_HASHING) -> None:
        self._def(sql.SAVE_USER, (name, salt, password_hash, tags, hashing_algorithm))

    def delete_user(self, name: str) -> None:
        self._def(sql.DELETE_USER, (name,))
        self._def(sql.DELETE_USER_PERMISSIONS, (name,))

    def vhosts(self) -> list[tuple]:
        return list(self._snapshot.vhosts)

    def save_vhost(self, name: str, metadata_json: str) -> None:
        self._def(sql.SAVE_VHOST, (name, metadata_json))

    def delete_vhost(self, name: str) -> None:
        for statement in sql.DELETE_VHOST:
            self._def(statement, (name,))

    def permissions(self) -> list[tuple]:
        return list(self._snapshot.permissions)

    def save_permission(self, user: str, vhost: str, configure: str, write: str, read: str) -> None:
        self._def(sql.SAVE_PERMISSION, (user, vhost, configure, write, read))

    def delete_permission(self, user: str, vhost: str) -> None:
        self._def(sql.DELETE_PERMISSION, (user, vhost))

    def policies(self) -> list[tuple]:
        return list(self._snapshot.policies)

    def save_policy(self, vhost: str, name: str, definition_json: str) -> None:
        self._def(sql.SAVE_POLICY, (vhost, name, definition_json))

    def delete_policy(self, vhost: str, name: str) -> None:
        self._def(sql.DELETE_POLICY, (vhost, name))

    def delayed(self) -> list[DelayedRow]:
        """The rows held at open, by due time."""
        return list(self._snapshot.delayed)

    def add_delayed(self, row_id: int | None, vhost: str, exchange: str, routing_key: str,
                    due_at: int, header: bytes, body: bytes) -> int:
        if row_id is None:
            row_id = self._next_delayed_id
        self._next_delayed_id = max(self._next_delayed_id, row_id + 1)
        self._def(sql.ADD_DELAYED, (row_id, vhost, exchange, routing_key, due_at, header, body))
        return row_id

    def remove_delayed(self, row_id: int) -> None:
        self._def(sql.REMOVE_DELAYED, (row_id,))

    # -- messages ------------------------------------------------------------------------------

    def add_entry(self, queue_id: int, seq: int, msg, expires_at: int | None = None) -> None:
        commits = self._commits
        batch = commits.batch
        msg_id = msg.store_id
        if msg_id is None:
            msg_id = msg.store_id = self._next_message_id
            self._next_message_id += 1
            batch.msgs[msg_id] = (msg_id, msg.exchange, msg.routing_key, msg.header, msg.body)
            batch.bytes += len(msg.body)
        batch.refs[(queue_id, seq)] = (msg_id, expires_at)
        batch.msg_refs[msg_id] = batch.msg_refs.get(msg_id, 0) + 1
        commits.kick()

    def remove_entry(self, queue_id: int, seq: int, msg_id: int) -> None:
        commits = self._commits
        batch = commits.batch
        if batch.refs.pop((queue_id, seq), None) is not None:
            # never written: cancel the insert, and the message row if nothing else wants it
            batch.unref_pending(msg_id)
            return
        batch.ref_deletes.append((queue_id, seq))
        batch.candidates.add(msg_id)
        commits.kick()

    def purge_range(self, queue_id: int, after: int, upto: int) -> None:
        batch = self._commits.batch
        batch.forget_pending_refs(queue_id, after, upto)
        batch.range_ops.append((queue_id, after, upto))
        self._commits.kick()

    def mark_delivered(self, queue_id: int, seq: int) -> None:
        self._commits.batch.delivered[queue_id] = seq
        self._commits.kick()

    async def read_entries(self, queue_id: int, after: int, limit: int) -> list[EntryRow]:
        await self.flush()  # sees everything enqueued before
        async with self._db.execute(
            f"SELECT {_ENTRY_COLUMNS} FROM queue_messages q JOIN messages m ON m.id = q.message_id "
            "WHERE q.queue_id = ? AND q.seq > ? ORDER BY q.seq LIMIT ?",
            (queue_id, after, limit),
        ) as cur:
            return await cur.fetchall()

    async def read_seqs(self, queue_id: int, seqs: list[int]) -> list[EntryRow]:
        await self.flush()
        rows = []
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            marks = ",".join("?" * len(chunk))
            async with self._db.execute(
                f"SELECT {_ENTRY_COLUMNS} FROM queue_messages q JOIN messages m ON m.id = q.message_id "
                f"WHERE q.queue_id = ? AND q.seq IN ({marks}) ORDER BY q.seq",
                (queue_id, *chunk),
            ) as cur:
                rows.extend(await cur.fetchall())
        return rows

    async def expiring(self, queue_id: int) -> list[tuple[int, int]]:
        async with self._db.execute(
            "SELECT seq, expires_at FROM queue_messages WHERE queue_id=? AND expires_at IS NOT NULL",
            (queue_id,),
        ) as cur:
            return await cur.fetchall()

    # -- commits and backpressure (commit.py) --------------------------------------------------

    @property
    def batch_id(self) -> int:
        return self._commits.batch.id

    def on_commit(self, callback: Callable[[int, bool], None]) -> None:
        self._commits.on_commit(callback)

    async def flush(self) -> None:
        await self._commits.flush()

    @property
    def backlogged(self) -> bool:
        commits = self._commits  # read on every stored publish: no further call
        return commits.batch.bytes + commits.inflight_bytes > BACKLOG_HIGH

    def on_caught_up(self, callback: Callable[[], None]) -> None:
        self._commits.on_caught_up(callback)
