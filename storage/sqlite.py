"""The durable store: definitions and persistent messages in one SQLite database.

Why it is shaped like this:

* **Group commit.** The event loop never waits for the disk inside the per-message path. Every
  change is appended to the current in-memory `_Batch`; one writer task turns a whole batch
  into one transaction (a few `executemany` calls and a COMMIT on aiosqlite's thread), then
  calls the batch's waiters (publisher confirms, tx.commit-ok). While one batch commits, the
  next one fills, so the batch size grows with the load and one fsync covers many messages.
* **Confirmed means on disk.** WAL with `synchronous=FULL`: COMMIT returns only after the WAL
  is fsynced, so a confirm is never sent for a message a power cut could lose (NORMAL would
  survive kill -9 but not power loss).
* **Stored once, referenced per queue.** `messages` holds the body and raw content header once;
  `queue_messages` holds one (queue, seq) row per queue that has the message. A message row
  goes when its last reference goes. Purging or deleting a queue is a set operation.
* **Cheap when consumers keep up.** A reference removed before its batch was written cancels
  the insert: a message published and acked within one commit window never touches the disk.
* **Redelivered flags without a write per delivery.** A queue delivers in `seq` order, so
  each durable queue stores one watermark `delivered_seq`; after a restart the messages at or
  below it come back with redelivered=true.

The schema carries a version (`meta.schema_version`) and a list of migration steps.
"""
from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
from pathlib import Path

import aiosqlite

from ..args import encode_typed_table, guess_typed, plain_table, typed_table
from .base import BindingDef, Definitions, ExchangeDef, QueueDef, Store, StoreError

log = logging.getLogger("amqp_broker.storage")

SCHEMA_VERSION = 2
DB_NAME = "broker.db"
LOCK_NAME = "broker.lock"

# Backpressure: publishers are paused while this many body bytes wait for the disk.
BACKLOG_HIGH = 64 << 20
BACKLOG_LOW = 16 << 20


def _migrate_0_to_1(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA_V1:
        db.execute(statement)


_SCHEMA_V1 = (
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE vhosts (name TEXT PRIMARY KEY)""",
    """CREATE TABLE users (name TEXT PRIMARY KEY, salt BLOB NOT NULL, password_hash BLOB NOT NULL,
tags TEXT NOT NULL DEFAULT '')""",
    """CREATE TABLE permissions (user TEXT NOT NULL, vhost TEXT NOT NULL, configure TEXT NOT NULL,
write TEXT NOT NULL, read TEXT NOT NULL, PRIMARY KEY (user, vhost))""",
    """CREATE TABLE exchanges (vhost TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,
auto_delete INTEGER NOT NULL, internal INTEGER NOT NULL,
arguments BLOB NOT NULL, PRIMARY KEY (vhost, name))""",
    """CREATE TABLE queues (id INTEGER PRIMARY KEY, vhost TEXT NOT NULL, name TEXT NOT NULL,
auto_delete INTEGER NOT NULL, arguments BLOB NOT NULL,
delivered_seq INTEGER NOT NULL DEFAULT 0, UNIQUE (vhost, name))""",
    """CREATE TABLE bindings (vhost TEXT NOT NULL, source TEXT NOT NULL, dest_type TEXT NOT NULL,
destination TEXT NOT NULL, routing_key TEXT NOT NULL,
arguments BLOB NOT NULL,
PRIMARY KEY (vhost, source, dest_type, destination, routing_key, arguments))""",
    """CREATE TABLE policies (vhost TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL,
PRIMARY KEY (vhost, name))""",
    """CREATE TABLE messages (id INTEGER PRIMARY KEY, exchange TEXT NOT NULL,
routing_key TEXT NOT NULL, header BLOB NOT NULL, body BLOB NOT NULL)""",
    """CREATE TABLE queue_messages (queue_id INTEGER NOT NULL, seq INTEGER NOT NULL,
message_id INTEGER NOT NULL, PRIMARY KEY (queue_id, seq))
WITHOUT ROWID""",
    """CREATE INDEX queue_messages_by_message ON queue_messages (message_id)""",
    """INSERT INTO vhosts (name) VALUES ('/')""",
)


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    # Message lifetimes: each stored entry keeps its absolute expiry (epoch ms) so TTLs run
    # on across restarts, and delayed-exchange messages wait in their own table.
    db.execute("ALTER TABLE queue_messages ADD COLUMN expires_at INTEGER")
    db.execute(
        "CREATE TABLE delayed_messages (id INTEGER PRIMARY KEY, vhost TEXT NOT NULL, "
        "exchange TEXT NOT NULL, routing_key TEXT NOT NULL, due_at INTEGER NOT NULL, "
        "header BLOB NOT NULL, body BLOB NOT NULL, mandatory INTEGER NOT NULL DEFAULT 0)"
    )


# MIGRATIONS[n] takes a database at version n to version n + 1.
MIGRATIONS = [_migrate_0_to_1, _migrate_1_to_2]
assert len(MIGRATIONS) == SCHEMA_VERSION


class _Batch:
    """Everything to write in one transaction, in the order it must be applied."""

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


class SQLiteStore(Store):
    persists_messages = True

    def __init__(self, data_dir: str | os.PathLike, synchronous: str = "FULL"):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._lock_fd: int | None = None
        self._batch = _Batch(1)
        self._committed = 0
        self._writer: asyncio.Task | None = None
        self._defs = Definitions()
        self._users: list[tuple] = []
        self._policies: list[tuple] = []
        self._next_message_id = 1
        self._next_queue_id = 1
        self._inflight_bytes = 0
        self._throttled: list = []  # callbacks waiting for the backlog to shrink
        self.failed: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        self._lock()
        try:
            connection = aiosqlite.connect(self.path, isolation_level=None)
            try:
                self._db = await connection
            except BaseException:
                # aiosqlite stops its worker thread on a failed connect; wait for it, or it
                # would post its last result to an event loop that is already closed
                await asyncio.get_running_loop().run_in_executor(None, connection._thread.join, 5)
                raise
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute(f"PRAGMA synchronous={self.synchronous}")
            await self._db.execute("PRAGMA cache_size=-8000")  # 8 MB page cache: bounded RAM
            await self._migrate()
            await self._load()
        except sqlite3.DatabaseError as exc:
            await self._close_db()
            self._unlock()
            raise StoreError(f"cannot open database {self.path}: {exc}") from None
        except BaseException:
            await self._close_db()
            self._unlock()
            raise

    async def close(self) -> None:
        try:
            await self.flush()
        finally:
            await self._close_db()
            self._unlock()

    async def _close_db(self) -> None:
        if self._db is not None:
            try:
                await self._db.close()
            except Exception:  # closing after a failure must not hide the failure
                log.exception("closing the database failed")
            self._db = None

    def _lock(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot use data dir {self.data_dir}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                owner = os.pread(fd, 32, 0).decode().strip()
            except OSError:
                owner = "?"
            os.close(fd)
            raise StoreError(
                f"data dir {self.data_dir} is in use by another amqp-broker (pid {owner or '?'})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    async def _migrate(self) -> None:
        db = self._db
        async with db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'") as cur:
            has_meta = await cur.fetchone() is not None
        version = 0
        if has_meta:
            async with db.execute("SELECT value FROM meta WHERE key='schema_version'") as cur:
                row = await cur.fetchone()
            version = int(row[0]) if row else 0
        else:
            async with db.execute("SELECT count(*) FROM sqlite_master") as cur:
                if (await cur.fetchone())[0]:
                    raise StoreError(f"{self.path} is not an amqp-broker database")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"database {self.path} has schema version {version}, newer than this "
                f"amqp-broker supports ({SCHEMA_VERSION}); upgrade amqp-broker"
            )
        while version < SCHEMA_VERSION:
            step = MIGRATIONS[version]
            version += 1

            def run(conn, step=step, version=version):
                conn.execute("BEGIN IMMEDIATE")
                try:
                    step(conn)
                    conn.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(version),),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise

            await db._execute(run, db._conn)  # one transaction for the whole step
            log.info("database %s migrated to schema version %d", self.path, version)

    async def _load(self) -> None:
        db = self._db
        defs = Definitions()
        async with db.execute("SELECT vhost, name, type, auto_delete, internal, arguments FROM exchanges") as cur:
            async for vhost, name, type_, auto_delete, internal, args in cur:
                typed = typed_table(args, 0)[0]
                defs.exchanges.append(ExchangeDef(vhost, name, type_, True, bool(auto_delete), bool(internal),
                                                  plain_table(typed), typed))
        stats = {}
        async with db.execute(
            "SELECT queue_id, count(*), min(seq), max(seq) FROM queue_messages GROUP BY queue_id"
        ) as cur:
            async for queue_id, count, lo, hi in cur:
                stats[queue_id] = (count, lo, hi)
        async with db.execute("SELECT id, vhost, name, auto_delete, arguments, delivered_seq FROM queues") as cur:
            async for qid, vhost, name, auto_delete, args, delivered in cur:
                typed = typed_table(args, 0)[0]
                count, lo, hi = stats.get(qid, (0, 0, 0))
                defs.queues.append(QueueDef(vhost, name, True, bool(auto_delete), plain_table(typed), typed,
                                            qid, count, lo, hi, delivered))
                self._next_queue_id = max(self._next_queue_id, qid + 1)
        async with db.execute(
            "SELECT vhost, source, dest_type, destination, routing_key, arguments FROM bindings"
        ) as cur:
            async for vhost, source, dest_type, dest, key, args in cur:
                defs.bindings.append(BindingDef(vhost, source, dest_type, dest, key,
                                                plain_table(typed_table(args, 0)[0])))
        async with db.execute("SELECT coalesce(max(id), 0) FROM messages") as cur:
            self._next_message_id = (await cur.fetchone())[0] + 1
        async with db.execute("SELECT name, salt, password_hash, tags FROM users") as cur:
            self._users = [tuple(row) async for row in cur]
        async with db.execute("SELECT vhost, name, definition FROM policies") as cur:
            self._policies = [tuple(row) async for row in cur]
        async with db.execute(
            "SELECT id, vhost, exchange, routing_key, due_at, header, body FROM delayed_messages "
            "ORDER BY due_at, id"
        ) as cur:
            self._delayed = [tuple(row) async for row in cur]
        self._next_delayed_id = max((row[0] for row in self._delayed), default=0) + 1
        self._defs = defs

    def load(self) -> Definitions:
        return self._defs

    def users(self) -> list[tuple]:
        """(name, salt, password_hash, tags) rows."""
        return list(self._users)

    # -- definitions ---------------------------------------------------------------------------

    def _def(self, sql: str, params: tuple) -> None:
        self._batch.defs.append((sql, params))
        self._kick()

    def save_exchange(self, vhost, exchange) -> None:
        typed = getattr(exchange, "typed_arguments", None) or guess_typed(exchange.arguments)
        self._def(
            "INSERT OR REPLACE INTO exchanges (vhost, name, type, auto_delete, internal, arguments) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (vhost, exchange.name, exchange.type_name, int(exchange.auto_delete), int(exchange.internal),
             encode_typed_table(typed)),
        )

    def delete_exchange(self, vhost, name) -> None:
        self._def("DELETE FROM exchanges WHERE vhost=? AND name=?", (vhost, name))
        self._def("DELETE FROM bindings WHERE vhost=? AND (source=? OR (dest_type='exchange' AND destination=?))",
                  (vhost, name, name))

    def save_queue(self, vhost, queue) -> int:
        queue_id = self._next_queue_id
        self._next_queue_id += 1
        self._def(
            "INSERT OR REPLACE INTO queues (id, vhost, name, auto_delete, arguments, delivered_seq) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            (queue_id, vhost, queue.name, int(queue.auto_delete), encode_typed_table(queue.typed_arguments)),
        )
        return queue_id

    def delete_queue(self, vhost, name, queue_id: int | None = None) -> None:
        self._def("DELETE FROM queues WHERE vhost=? AND name=?", (vhost, name))
        self._def("DELETE FROM bindings WHERE vhost=? AND dest_type='queue' AND destination=?", (vhost, name))
        if queue_id is not None:
            self._forget_pending_refs(queue_id, None, None)
            self._batch.range_ops.append((queue_id, None, None))
            self._kick()

    def save_binding(self, vhost, source, destination, routing_key, arguments) -> None:
        self._def(
            "INSERT OR REPLACE INTO bindings (vhost, source, dest_type, destination, routing_key, arguments) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (vhost, source, destination[0], destination[1], routing_key,
             encode_typed_table(guess_typed(arguments))),
        )

    def delete_binding(self, vhost, source, destination, routing_key, arguments) -> None:
        self._def(
            "DELETE FROM bindings WHERE vhost=? AND source=? AND dest_type=? AND destination=? "
            "AND routing_key=? AND arguments=?",
            (vhost, source, destination[0], destination[1], routing_key,
             encode_typed_table(guess_typed(arguments))),
        )

    def save_policy(self, vhost: str, name: str, definition_json: str) -> None:
        self._def("INSERT OR REPLACE INTO policies (vhost, name, definition) VALUES (?, ?, ?)",
                  (vhost, name, definition_json))

    def delete_policy(self, vhost: str, name: str) -> None:
        self._def("DELETE FROM policies WHERE vhost=? AND name=?", (vhost, name))

    def policies(self) -> list[tuple]:
        """(vhost, name, definition json) rows."""
        return list(self._policies)

    def add_delayed(self, row_id: int | None, vhost: str, exchange: str, routing_key: str,
                    due_at: int, header: bytes, body: bytes) -> int:
        """A message held by a durable x-delayed-message exchange until `due_at` (epoch ms);
        `row_id` None picks the next free id. Returns the row id."""
        if row_id is None:
            row_id = self._next_delayed_id
        self._next_delayed_id = max(self._next_delayed_id, row_id + 1)
        self._def(
            "INSERT OR REPLACE INTO delayed_messages (id, vhost, exchange, routing_key, due_at, header, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row_id, vhost, exchange, routing_key, due_at, header, body),
        )
        return row_id

    def remove_delayed(self, row_id: int) -> None:
        """The held message was routed (or dropped with its exchange)."""
        self._def("DELETE FROM delayed_messages WHERE id=?", (row_id,))

    def delayed(self) -> list[tuple]:
        """(id, vhost, exchange, routing key, due at, header, body) rows held at open, by due time."""
        return list(self._delayed)

    def save_user(self, name: str, salt: bytes, password_hash: bytes, tags: str) -> None:
        self._def("INSERT OR REPLACE INTO users (name, salt, password_hash, tags) VALUES (?, ?, ?, ?)",
                  (name, salt, password_hash, tags))

    # -- messages ------------------------------------------------------------------------------

    @property
    def batch_id(self) -> int:
        """The batch that changes made now will be committed with."""
        return self._batch.id

    def add_entry(self, queue_id: int, seq: int, msg, expires_at: int | None = None) -> None:
        """A persistent message entered a durable queue at position `seq` (expiring at
        `expires_at`, epoch ms, if it has a TTL)."""
        batch = self._batch
        msg_id = msg.store_id
        if msg_id is None:
            msg_id = msg.store_id = self._next_message_id
            self._next_message_id += 1
            batch.msgs[msg_id] = (msg_id, msg.exchange, msg.routing_key, msg.header, msg.body)
            batch.bytes += len(msg.body)
        batch.refs[(queue_id, seq)] = (msg_id, expires_at)
        batch.msg_refs[msg_id] = batch.msg_refs.get(msg_id, 0) + 1
        self._kick()

    def remove_entry(self, queue_id: int, seq: int, msg_id: int) -> None:
        """The entry was acked, dropped or expired: forget it."""
        batch = self._batch
        if batch.refs.pop((queue_id, seq), None) is not None:
            # never written: cancel the insert, and the message row if nothing else wants it
            self._unref_pending(batch, msg_id)
            return
        batch.ref_deletes.append((queue_id, seq))
        batch.candidates.add(msg_id)
        self._kick()

    def purge_range(self, queue_id: int, after: int, upto: int) -> None:
        """Forget every stored entry of a queue with after < seq <= upto (a set operation)."""
        self._forget_pending_refs(queue_id, after, upto)
        self._batch.range_ops.append((queue_id, after, upto))
        self._kick()

    def _forget_pending_refs(self, queue_id, after, upto) -> None:
        batch = self._batch
        doomed = [key for key in batch.refs if key[0] == queue_id and (after is None or after < key[1] <= upto)]
        for key in doomed:
            self._unref_pending(batch, batch.refs.pop(key)[0])

    @staticmethod
    def _unref_pending(batch: _Batch, msg_id: int) -> None:
        left = batch.msg_refs[msg_id] - 1
        if left:
            batch.msg_refs[msg_id] = left
            return
        del batch.msg_refs[msg_id]
        row = batch.msgs.pop(msg_id, None)
        if row is not None:
            batch.bytes -= len(row[4])
        else:
            batch.candidates.add(msg_id)  # the row was written by an earlier batch

    def mark_delivered(self, queue_id: int, seq: int) -> None:
        self._batch.delivered[queue_id] = seq
        self._kick()

    async def read_entries(self, queue_id: int, after: int, limit: int) -> list[tuple]:
        """Stored entries of a queue in order: (seq, message id, exchange, routing key, header,
        body). Waits for pending writes first, so it sees everything enqueued before."""
        await self.flush()
        async with self._db.execute(
            "SELECT q.seq, m.id, m.exchange, m.routing_key, m.header, m.body, q.expires_at "
            "FROM queue_messages q JOIN messages m ON m.id = q.message_id "
            "WHERE q.queue_id = ? AND q.seq > ? ORDER BY q.seq LIMIT ?",
            (queue_id, after, limit),
        ) as cur:
            return await cur.fetchall()

    async def read_seqs(self, queue_id: int, seqs: list[int]) -> list[tuple]:
        """Stored entries of a queue by seq, same columns as read_entries."""
        await self.flush()
        rows = []
        for start in range(0, len(seqs), 500):
            chunk = seqs[start : start + 500]
            marks = ",".join("?" * len(chunk))
            async with self._db.execute(
                "SELECT q.seq, m.id, m.exchange, m.routing_key, m.header, m.body, q.expires_at "
                f"FROM queue_messages q JOIN messages m ON m.id = q.message_id "
                f"WHERE q.queue_id = ? AND q.seq IN ({marks}) ORDER BY q.seq",
                (queue_id, *chunk),
            ) as cur:
                rows.extend(await cur.fetchall())
        return rows

    async def expiring(self, queue_id: int) -> list[tuple[int, int]]:
        """(seq, expires_at) of a queue's stored entries that have an expiry (recovery)."""
        async with self._db.execute(
            "SELECT seq, expires_at FROM queue_messages WHERE queue_id=? AND expires_at IS NOT NULL",
            (queue_id,),
        ) as cur:
            return await cur.fetchall()

    # -- group commit --------------------------------------------------------------------------

    def on_commit(self, callback) -> None:
        """Call `callback(batch_id, ok)` once the current batch is durable (or failed)."""
        self._batch.waiters.append(callback)
        self._kick()

    async def flush(self) -> None:
        """Wait until everything changed so far is committed."""
        if self._batch.empty() and self._writer is None:
            return
        fut = asyncio.get_running_loop().create_future()
        self.on_commit(lambda _batch_id, _ok: fut.done() or fut.set_result(None))
        await fut

    @property
    def backlogged(self) -> bool:
        return self._batch.bytes + self._inflight_bytes > BACKLOG_HIGH

    def on_caught_up(self, callback) -> None:
        """Call `callback()` once the backlog is below the low-water mark again."""
        self._throttled.append(callback)

    def _kick(self) -> None:
        if self._writer is None and self._db is not None:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _write_loop(self) -> None:
        try:
            while not self._batch.empty() or self._batch.waiters:
                batch = self._batch
                self._batch = _Batch(batch.id + 1)
                self._inflight_bytes = batch.bytes
                ok = True
                if not batch.empty():
                    if self.failed is None:
                        try:
                            await self._db._execute(_write_batch, self._db._conn, batch)
                        except Exception as exc:
                            self.failed = f"{type(exc).__name__}: {exc}"
                            log.critical("writing to %s failed, persistent messages are nacked from now on: %s",
                                         self.path, self.failed)
                    ok = self.failed is None
                self._committed = batch.id
                self._inflight_bytes = 0
                for waiter in batch.waiters:
                    try:
                        waiter(batch.id, ok)
                    except Exception:
                        log.exception("commit callback failed")
                if self._throttled and self._batch.bytes < BACKLOG_LOW:
                    callbacks, self._throttled = self._throttled, []
                    for callback in callbacks:
                        callback()
        finally:
            self._writer = None
            if not self._batch.empty() or self._batch.waiters:
                self._kick()


def _write_batch(conn: sqlite3.Connection, batch: _Batch) -> None:
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
