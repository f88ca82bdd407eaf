"""The definition tables of the SQLite store: the statements that write them, and reading
everything recovery needs at open.

Definitions change rarely, so each change is one statement queued in the current batch (it
commits with the messages of that batch, in order). They are read once, at open: the store
answers load(), users(), vhosts(), permissions(), policies() and delayed() from that
snapshot, without a query.
Argument tables are stored and returned as the encoded bytes the broker gave; nothing here
decodes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import aiosqlite

from .base import BindingDef, DelayedRow, Definitions, ExchangeDef, QueueDef

SAVE_EXCHANGE = (
    "INSERT OR REPLACE INTO exchanges (vhost, name, type, auto_delete, internal, arguments) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
DELETE_EXCHANGE = "DELETE FROM exchanges WHERE vhost=? AND name=?"
DELETE_EXCHANGE_BINDINGS = (
    "DELETE FROM bindings WHERE vhost=? AND (source=? OR (dest_type='exchange' AND destination=?))"
)
SAVE_QUEUE = (
    "INSERT OR REPLACE INTO queues (id, vhost, name, auto_delete, arguments, delivered_seq) "
    "VALUES (?, ?, ?, ?, ?, 0)"
)
DELETE_QUEUE = "DELETE FROM queues WHERE vhost=? AND name=?"
DELETE_QUEUE_BINDINGS = "DELETE FROM bindings WHERE vhost=? AND dest_type='queue' AND destination=?"
SAVE_BINDING = (
    "INSERT OR REPLACE INTO bindings (vhost, source, dest_type, destination, routing_key, arguments) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
DELETE_BINDING = (
    "DELETE FROM bindings WHERE vhost=? AND source=? AND dest_type=? AND destination=? "
    "AND routing_key=? AND arguments=?"
)
SAVE_POLICY = "INSERT OR REPLACE INTO policies (vhost, name, definition) VALUES (?, ?, ?)"
DELETE_POLICY = "DELETE FROM policies WHERE vhost=? AND name=?"
ADD_DELAYED = (
    "INSERT OR REPLACE INTO delayed_messages (id, vhost, exchange, routing_key, due_at, header, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
REMOVE_DELAYED = "DELETE FROM delayed_messages WHERE id=?"
SAVE_USER = (
    "INSERT OR REPLACE INTO users (name, salt, password_hash, tags, hashing_algorithm) VALUES (?, ?, ?, ?, ?)"
)
DELETE_USER = "DELETE FROM users WHERE name=?"
DELETE_USER_PERMISSIONS = "DELETE FROM permissions WHERE user=?"
SAVE_VHOST = "INSERT OR REPLACE INTO vhosts (name, metadata) VALUES (?, ?)"
SAVE_PERMISSION = (
    "INSERT OR REPLACE INTO permissions (user, vhost, configure, write, read) VALUES (?, ?, ?, ?, ?)"
)
DELETE_PERMISSION = "DELETE FROM permissions WHERE user=? AND vhost=?"
# Deleting a vhost: its queues' stored messages first (while the queue rows still say which
# queues were the vhost's), then every definition row that names the vhost.
DELETE_VHOST = (
    "DELETE FROM messages WHERE id IN (SELECT message_id FROM queue_messages WHERE queue_id IN "
    "(SELECT id FROM queues WHERE vhost=?1)) AND NOT EXISTS (SELECT 1 FROM queue_messages o "
    "WHERE o.message_id = messages.id AND o.queue_id NOT IN (SELECT id FROM queues WHERE vhost=?1))",
    "DELETE FROM queue_messages WHERE queue_id IN (SELECT id FROM queues WHERE vhost=?1)",
    "DELETE FROM queues WHERE vhost=?1",
    "DELETE FROM exchanges WHERE vhost=?1",
    "DELETE FROM bindings WHERE vhost=?1",
    "DELETE FROM policies WHERE vhost=?1",
    "DELETE FROM permissions WHERE vhost=?1",
    "DELETE FROM delayed_messages WHERE vhost=?1",
    "DELETE FROM vhosts WHERE name=?1",
)


def binding_params(binding: BindingDef) -> tuple:
    """The parameters of SAVE_BINDING and DELETE_BINDING."""
    return (binding.vhost, binding.source, binding.destination_type, binding.destination,
            binding.routing_key, binding.arguments)


@dataclass
class Snapshot:
    """What the database held at open."""

    definitions: Definitions = field(default_factory=Definitions)
    users: list[tuple] = field(default_factory=list)
    vhosts: list[tuple] = field(default_factory=list)
    permissions: list[tuple] = field(default_factory=list)
    policies: list[tuple] = field(default_factory=list)
    delayed: list[DelayedRow] = field(default_factory=list)
    next_message_id: int = 1
    next_queue_id: int = 1
    next_delayed_id: int = 1


async def read_snapshot(db: aiosqlite.Connection) -> Snapshot:
    snap = Snapshot()
    defs = snap.definitions
    async with db.execute("SELECT vhost, name, type, auto_delete, internal, arguments FROM exchanges") as cur:
        async for vhost, name, type_, auto_delete, internal, args in cur:
            defs.exchanges.append(ExchangeDef(vhost, name, type_, True, bool(auto_delete), bool(internal), args))
    stats = {}
    async with db.execute(
        "SELECT queue_id, count(*), min(seq), max(seq) FROM queue_messages GROUP BY queue_id"
    ) as cur:
        async for queue_id, count, lo, hi in cur:
            stats[queue_id] = (count, lo, hi)
    async with db.execute("SELECT id, vhost, name, auto_delete, arguments, delivered_seq FROM queues") as cur:
        async for qid, vhost, name, auto_delete, args, delivered in cur:
            count, lo, hi = stats.get(qid, (0, 0, 0))
            defs.queues.append(QueueDef(vhost, name, True, bool(auto_delete), args, qid, count, lo, hi, delivered))
            snap.next_queue_id = max(snap.next_queue_id, qid + 1)
    async with db.execute(
        "SELECT vhost, source, dest_type, destination, routing_key, arguments FROM bindings"
    ) as cur:
        async for vhost, source, dest_type, dest, key, args in cur:
            defs.bindings.append(BindingDef(vhost, source, dest_type, dest, key, args))
    async with db.execute("SELECT coalesce(max(id), 0) FROM messages") as cur:
        snap.next_message_id = (await cur.fetchone())[0] + 1
    async with db.execute("SELECT name, salt, password_hash, tags, hashing_algorithm FROM users") as cur:
        snap.users = [tuple(row) async for row in cur]
    async with db.execute("SELECT name, metadata FROM vhosts") as cur:
        snap.vhosts = [tuple(row) async for row in cur]
    async with db.execute("SELECT user, vhost, configure, write, read FROM permissions") as cur:
        snap.permissions = [tuple(row) async for row in cur]
    async with db.execute("SELECT vhost, name, definition FROM policies") as cur:
        snap.policies = [tuple(row) async for row in cur]
    async with db.execute(
        "SELECT id, vhost, exchange, routing_key, due_at, header, body FROM delayed_messages "
        "ORDER BY due_at, id"
    ) as cur:
        snap.delayed = [tuple(row) async for row in cur]
    snap.next_delayed_id = max((row[0] for row in snap.delayed), default=0) + 1
    return snap
