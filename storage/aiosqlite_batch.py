"""The one place that relies on aiosqlite internals (pinned by tests/test_aiosqlite_adapter.py).

aiosqlite's public API sends each statement to its worker thread separately and back: a
batch of thousands of rows would cost thousands of thread hops. Its (private) `_execute`
runs any function on that thread, so a whole transaction (BEGIN, executemany..., COMMIT)
costs one hop. And a failed connect leaves the worker thread stopping on its own; its last
result must not be posted to an event loop that is closed by then, so we wait for it.
"""
from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite

JOIN_TIMEOUT = 5.0  # seconds to wait for the worker thread of a failed connect


async def connect(path, **kwargs) -> aiosqlite.Connection:
    """aiosqlite.connect, but a failure returns only once the worker thread has stopped."""
    connection = aiosqlite.connect(path, **kwargs)
    try:
        return await connection
    except BaseException:
        # aiosqlite stops its worker thread on a failed connect; wait for it, or it would post
        # its last result to an event loop that is already closed
        await asyncio.get_running_loop().run_in_executor(None, connection._thread.join, JOIN_TIMEOUT)
        raise


async def run_in_connection_thread(db: aiosqlite.Connection, fn: Callable[..., Any], *args) -> Any:
    """Run `fn(sqlite3_connection, *args)` on aiosqlite's thread, in one hop; its result."""
    conn: sqlite3.Connection = db._conn
    return await db._execute(fn, conn, *args)
