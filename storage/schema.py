"""The database schema, its version and the migration steps between versions.

The schema carries a version (`meta.schema_version`) and a list of migration steps:
MIGRATIONS[n] takes a database at version n to version n + 1, each step in one transaction,
so a database is never left between two versions. A database newer than this code is refused
(with a one-line StoreError), never downgraded or rewritten.
"""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import aiosqlite

from .aiosqlite_batch import run_in_connection_thread
from .base import StoreError

log = logging.getLogger("amqp_broker.storage")

SCHEMA_VERSION = 3


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


DEFAULT_VHOST_METADATA = '{"description": "Default virtual host", "tags": [], "tracing": false}'


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    # The access domain: vhosts carry RabbitMQ's metadata (description, tags, tracing) as
    # JSON, users the hashing algorithm of their password hash (imported definitions may
    # use SHA-512 or MD5). Additive only, so databases of earlier versions keep working.
    db.execute("ALTER TABLE vhosts ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'")
    db.execute("UPDATE vhosts SET metadata = ? WHERE name = '/'", (DEFAULT_VHOST_METADATA,))
    db.execute(
        "ALTER TABLE users ADD COLUMN hashing_algorithm TEXT NOT NULL "
        "DEFAULT 'rabbit_password_hashing_sha256'"
    )
    # Before version 3 every user could use every vhost: keep it so for the users and vhosts
    # already there (a fresh database has neither, and the broker grants the defaults).
    db.execute(
        "INSERT OR IGNORE INTO permissions (user, vhost, configure, write, read) "
        "SELECT users.name, vhosts.name, '.*', '.*', '.*' FROM users, vhosts"
    )


# MIGRATIONS[n] takes a database at version n to version n + 1.
MIGRATIONS = [_migrate_0_to_1, _migrate_1_to_2, _migrate_2_to_3]
assert len(MIGRATIONS) == SCHEMA_VERSION


async def migrate(db: aiosqlite.Connection, path: Path) -> None:
    """Bring the database at `path` to SCHEMA_VERSION (StoreError if it cannot be)."""
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
                raise StoreError(f"{path} is not an amqp-broker database")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database {path} has schema version {version}, newer than this "
            f"amqp-broker supports ({SCHEMA_VERSION}); upgrade amqp-broker"
        )
    while version < SCHEMA_VERSION:
        step = MIGRATIONS[version]
        version += 1
        await run_in_connection_thread(db, apply_step, step, version)  # one transaction a step
        log.info("database %s migrated to schema version %d", path, version)


def apply_step(conn: sqlite3.Connection, step, version: int) -> None:
    """Run one migration step and record `version`, in one transaction."""
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
