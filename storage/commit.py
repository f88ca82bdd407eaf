"""Group commit: one writer task turns each batch of changes into one transaction.

Why it is shaped like this:

* **Group commit.** The event loop never waits for the disk inside the per-message path. Every
  change is appended to the current in-memory `Batch`; one writer task turns a whole batch
  into one transaction (a few `executemany` calls and a COMMIT on aiosqlite's thread), then
  calls the batch's waiters (publisher confirms, tx.commit-ok). While one batch commits, the
  next one fills, so the batch size grows with the load and one fsync covers many messages.
* **Confirmed means on disk.** The database runs WAL with `synchronous=FULL` (set by the
  store): COMMIT returns only after the WAL is fsynced, so a waiter is never told a batch is
  committed before a power cut could no longer lose it.
* **Backpressure is a signal.** When too many body bytes wait for the disk the store reports
  `backlogged`; whoever owns the client connections pauses reading and asks to be called
  back (`on_caught_up`) once the backlog is below the low-water mark. The store never touches
  a transport.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import aiosqlite

from .aiosqlite_batch import run_in_connection_thread
from .batch import Batch, write_batch

log = logging.getLogger("amqp_broker.storage")

# Backpressure: publishers are paused while this many body bytes wait for the disk
# (SQLiteStore.backlogged reads BACKLOG_HIGH on the publish path), and resumed once fewer than
# BACKLOG_LOW do.
BACKLOG_HIGH = 64 << 20
BACKLOG_LOW = 16 << 20


class GroupCommit:
    """The batch being filled, and the writer task that commits the batches one by one.

    A write that fails marks the store failed for good (`failed` holds the one-line reason):
    from then on every batch is reported not ok, so persistent messages are nacked rather than
    confirmed without being on disk.
    """

    def __init__(self, path: Path):
        self.path = path  # for log messages
        self.db: aiosqlite.Connection | None = None  # set while the store is open
        self.batch = Batch(1)
        self.failed: str | None = None
        self._task: asyncio.Task | None = None
        self.inflight_bytes = 0  # body bytes of the batch being written
        self._caught_up: list[Callable[[], None]] = []

    def kick(self) -> None:
        """Something was added to the batch: make sure the writer runs."""
        if self._task is None and self.db is not None:
            self._task = asyncio.get_running_loop().create_task(self._write_loop())

    def on_commit(self, callback: Callable[[int, bool], None]) -> None:
        self.batch.waiters.append(callback)
        self.kick()

    async def flush(self) -> None:
        if self.batch.empty() and self._task is None:
            return
        fut = asyncio.get_running_loop().create_future()
        self.on_commit(lambda _batch_id, _ok: fut.done() or fut.set_result(None))
        await fut

    def on_caught_up(self, callback: Callable[[], None]) -> None:
        if self.batch.bytes + self.inflight_bytes < BACKLOG_LOW:
            asyncio.get_running_loop().call_soon(callback)
        else:
            self._caught_up.append(callback)  # the writer is running: it calls back

    async def _write_loop(self) -> None:
        try:
            while not self.batch.empty() or self.batch.waiters:
                batch = self.batch
                self.batch = Batch(batch.id + 1)
                self.inflight_bytes = batch.bytes
                ok = True
                if not batch.empty():
                    if self.failed is None:
                        try:
                            await run_in_connection_thread(self.db, write_batch, batch)
                        except Exception as exc:
                            self.failed = f"{type(exc).__name__}: {exc}"
                            log.critical("writing to %s failed, persistent messages are nacked from now on: %s",
                                         self.path, self.failed)
                    ok = self.failed is None
                self.inflight_bytes = 0
                for waiter in batch.waiters:
                    try:
                        waiter(batch.id, ok)
                    except Exception:
                        log.exception("commit callback failed")
                if self._caught_up and self.batch.bytes < BACKLOG_LOW:
                    callbacks, self._caught_up = self._caught_up, []
                    for callback in callbacks:
                        try:
                            callback()
                        except Exception:
                            log.exception("caught-up callback failed")
        finally:
            self._task = None
            if not self.batch.empty() or self.batch.waiters:
                self.kick()
