"""Pins the aiosqlite internals that storage/aiosqlite_batch.py relies on.

If aiosqlite changes under us, these fail loudly instead of the store failing at run time:
the private attributes still exist with the expected shape, a function run by the adapter gets
the sqlite3 connection on aiosqlite's own worker thread (one hop for a whole transaction), and
a failed connect returns only once that thread has stopped.
"""
from __future__ import annotations

import inspect
import sqlite3
import threading

import aiosqlite
import pytest

from amqp_broker.storage.aiosqlite_batch import connect, run_in_connection_thread


async def test_the_private_attributes_the_adapter_uses_exist(tmp_path):
    assert inspect.iscoroutinefunction(aiosqlite.Connection._execute)
    assert isinstance(aiosqlite.Connection.__dict__["_conn"], property)
    connection = aiosqlite.connect(tmp_path / "a.db")
    assert isinstance(connection._thread, threading.Thread)
    db = await connection
    try:
        assert isinstance(db._conn, sqlite3.Connection)
    finally:
        await db.close()


async def test_fn_runs_on_aiosqlites_thread_with_the_sqlite3_connection(tmp_path):
    db = await connect(tmp_path / "a.db", isolation_level=None)
    try:
        await db.create_function("thread_id", 0, threading.get_ident)
        async with db.execute("SELECT thread_id()") as cur:
            worker = (await cur.fetchone())[0]
        assert worker != threading.get_ident()  # not the event loop's thread

        seen = {}

        def fn(conn, a, b):
            seen["conn"], seen["thread"] = conn, threading.get_ident()
            conn.execute("BEGIN")
            conn.execute("CREATE TABLE t (x)")
            conn.executemany("INSERT INTO t VALUES (?)", [(a,), (b,)])
            conn.execute("COMMIT")
            return "done"

        assert await run_in_connection_thread(db, fn, 1, 2) == "done"
        assert isinstance(seen["conn"], sqlite3.Connection)
        assert seen["thread"] == worker
        async with db.execute("SELECT x FROM t ORDER BY x") as cur:
            assert await cur.fetchall() == [(1,), (2,)]
    finally:
        await db.close()


async def test_an_exception_in_fn_reaches_the_caller(tmp_path):
    db = await connect(tmp_path / "a.db", isolation_level=None)
    try:
        def fn(conn):
            conn.execute("SELECT * FROM no_such_table")

        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            await run_in_connection_thread(db, fn)
    finally:
        await db.close()


async def test_a_failed_connect_stops_the_worker_thread_before_raising(tmp_path):
    def workers():  # aiosqlite names its threads after their target
        return {t for t in threading.enumerate() if "_connection_worker_thread" in t.name and t.is_alive()}

    before = workers()
    with pytest.raises(sqlite3.OperationalError):
        await connect(tmp_path / "missing-dir" / "a.db")
    assert workers() <= before
