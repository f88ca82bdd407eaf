"""An in-memory Store: everything lives as long as the store object.

Used for transient brokers and embedding; a broker restarted in-process with the same
MemoryStore recovers its durable definitions, vhosts, users, permissions, policies and delayed
messages, which
lets recovery be tested without a disk.

It implements the message operations too (memory_messages.py), but reports
`persists_messages = False` unless built with `persist_messages=True`: a transient broker
then keeps persistent messages only in its queues, and its publish path never touches the
store. Commits are immediate; on_commit still calls back on a later turn of the loop, and
batch ids advance per commit, so callers see the same ordering as with a disk store.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from .base import DEFAULT_HASHING, BindingDef, DelayedRow, Definitions, EntryRow, ExchangeDef, QueueDef, Store
from .memory_messages import MessageTable

log = logging.getLogger("amqp_broker.storage")


class MemoryStore(Store):
    def __init__(self, persist_messages: bool = False) -> None:
        self.persists_messages = persist_messages
        self._exchanges: dict[tuple[str, str], ExchangeDef] = {}
        self._queues: dict[tuple[str, str], QueueDef] = {}
        self._bindings: dict[BindingDef, None] = {}  # a dict keeps them in insertion order
        self._users: dict[str, tuple] = {}
        self._vhosts: dict[str, str] = {}  # name -> metadata json
        self._permissions: dict[tuple[str, str], tuple[str, str, str]] = {}  # (user, vhost) -> patterns
        self._policies: dict[tuple[str, str], str] = {}
        self._delayed: dict[int, DelayedRow] = {}
        self._next_delayed_id = 1
        self._next_queue_id = 1
        self._messages = MessageTable()
        self._batch_id = 1
        self._waiters: list[Callable[[int, bool], None]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        """Nothing to prepare."""

    async def close(self) -> None:
        await self.flush()

    # -- definitions ---------------------------------------------------------------------------

    def save_exchange(self, exchange: ExchangeDef) -> None:
        self._exchanges[(exchange.vhost, exchange.name)] = exchange

    def delete_exchange(self, vhost: str, name: str) -> None:
        self._exchanges.pop((vhost, name), None)
        self._drop_bindings(lambda b: b.vhost == vhost and (
            b.source == name or (b.destination_type == "exchange" and b.destination == name)))

    def save_queue(self, queue: QueueDef) -> int:
        queue_id = self._next_queue_id
        self._next_queue_id += 1
        self._queues[(queue.vhost, queue.name)] = replace(
            queue, store_id=queue_id, message_count=0, min_seq=0, max_seq=0, delivered_seq=0)
        return queue_id

    def delete_queue(self, vhost: str, name: str, queue_id: int | None = None) -> None:
        self._queues.pop((vhost, name), None)
        self._drop_bindings(lambda b: b.vhost == vhost and b.destination_type == "queue" and b.destination == name)
        if queue_id is not None:
            self._messages.drop_queue(queue_id)

    def save_binding(self, binding: BindingDef) -> None:
        self._bindings[binding] = None

    def delete_binding(self, binding: BindingDef) -> None:
        self._bindings.pop(binding, None)

    def _drop_bindings(self, doomed: Callable[[BindingDef], bool]) -> None:
        for binding in [b for b in self._bindings if doomed(b)]:
            del self._bindings[binding]

    def load(self) -> Definitions:
        queues = []
        for queue in self._queues.values():
            count, lo, hi, delivered = self._messages.stats(queue.store_id)
            queues.append(replace(queue, message_count=count, min_seq=lo, max_seq=hi, delivered_seq=delivered))
        return Definitions(list(self._exchanges.values()), queues, list(self._bindings))

    # -- users, policies, delayed messages -----------------------------------------------------

    def users(self) -> list[tuple]:
        return list(self._users.values())

    def save_user(self, name: str, salt: bytes, password_hash: bytes, tags: str,
                  hashing_algorithm: str = DEFAULT_HASHING) -> None:
        self._users[name] = (name, salt, password_hash, tags, hashing_algorithm)

    def delete_user(self, name: str) -> None:
        self._users.pop(name, None)
        for key in [k for k in self._permissions if k[0] == name]:
            del self._permissions[key]

    def vhosts(self) -> list[tuple]:
        return list(self._vhosts.items())

    def save_vhost(self, name: str, metadata_json: str) -> None:
        self._vhosts[name] = metadata_json

    def delete_vhost(self, name: str) -> None:
        self._vhosts.pop(name, None)
        for key in [k for k in self._queues if k[0] == name]:
            self._messages.drop_queue(self._queues.pop(key).store_id)
        for key in [k for k in self._exchanges if k[0] == name]:
            del self._exchanges[key]
        self._drop_bindings(lambda b: b.vhost == name)
        for key in [k for k in self._policies if k[0] == name]:
            del self._policies[key]
        for key in [k for k in self._permissions if k[1] == name]:
            del self._permissions[key]
        for row_id in [i for i, row in self._delayed.items() if row[1] == name]:
            del self._delayed[row_id]

    def permissions(self) -> list[tuple]:
        return [(user, vhost, *patterns) for (user, vhost), patterns in self._permissions.items()]

    def save_permission(self, user: str, vhost: str, configure: str, write: str, read: str) -> None:
        self._permissions[(user, vhost)] = (configure, write, read)

    def delete_permission(self, user: str, vhost: str) -> None:
        self._permissions.pop((user, vhost), None)

    def policies(self) -> list[tuple]:
        return [(vhost, name, text) for (vhost, name), text in self._policies.items()]

    def save_policy(self, vhost: str, name: str, definition_json: str) -> None:
        self._policies[(vhost, name)] = definition_json

    def delete_policy(self, vhost: str, name: str) -> None:
        self._policies.pop((vhost, name), None)

    def delayed(self) -> list[DelayedRow]:
        return sorted(self._delayed.values(), key=lambda row: (row[4], row[0]))

    def add_delayed(self, row_id: int | None, vhost: str, exchange: str, routing_key: str,
                    due_at: int, header: bytes, body: bytes) -> int:
        if row_id is None:
            row_id = self._next_delayed_id
        self._next_delayed_id = max(self._next_delayed_id, row_id + 1)
        self._delayed[row_id] = (row_id, vhost, exchange, routing_key, due_at, bytes(header), bytes(body))
        return row_id

    def remove_delayed(self, row_id: int) -> None:
        self._delayed.pop(row_id, None)

    # -- messages (memory_messages.py) ---------------------------------------------------------

    def add_entry(self, queue_id: int, seq: int, msg, expires_at: int | None = None) -> None:
        self._messages.add(queue_id, seq, msg, expires_at)

    def remove_entry(self, queue_id: int, seq: int, msg_id: int) -> None:
        self._messages.remove(queue_id, seq)

    def purge_range(self, queue_id: int, after: int, upto: int) -> None:
        self._messages.purge_range(queue_id, after, upto)

    def mark_delivered(self, queue_id: int, seq: int) -> None:
        self._messages.mark_delivered(queue_id, seq)

    async def read_entries(self, queue_id: int, after: int, limit: int) -> list[EntryRow]:
        return self._messages.read_after(queue_id, after, limit)

    async def read_seqs(self, queue_id: int, seqs: list[int]) -> list[EntryRow]:
        return self._messages.read_seqs(queue_id, seqs)

    async def expiring(self, queue_id: int) -> list[tuple[int, int]]:
        return self._messages.expiring(queue_id)

    # -- commits and backpressure --------------------------------------------------------------

    @property
    def batch_id(self) -> int:
        return self._batch_id

    def on_commit(self, callback: Callable[[int, bool], None]) -> None:
        self._waiters.append(callback)
        if len(self._waiters) == 1:
            asyncio.get_running_loop().call_soon(self._commit)

    def _commit(self) -> None:
        waiters, self._waiters = self._waiters, []
        batch_id = self._batch_id
        self._batch_id = batch_id + 1
        for waiter in waiters:
            try:
                waiter(batch_id, True)
            except Exception:
                log.exception("commit callback failed")

    async def flush(self) -> None:
        if not self._waiters:
            return  # every change is already "committed"
        fut = asyncio.get_running_loop().create_future()
        self.on_commit(lambda _batch_id, _ok: fut.done() or fut.set_result(None))
        await fut

    @property
    def backlogged(self) -> bool:
        return False  # nothing ever waits for a disk

    def on_caught_up(self, callback: Callable[[], None]) -> None:
        asyncio.get_running_loop().call_soon(callback)
