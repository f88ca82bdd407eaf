"""The store interface: everything the broker asks of durable storage, declared in one place.

The broker calls these synchronously from the event loop; an implementation that touches a
disk must queue the work and commit it in batches (group commit), never block the loop.
Definitions are plain data (names, flags, argument tables as encoded bytes) so a store never
holds broker objects, and the same calls could be replayed on another node.

Argument tables reach the store already encoded (the AMQP field-table encoding with its
4-byte length, what the `arguments` columns hold) and come back from load() as the same
bytes: the store never decodes them, so it needs neither the wire codec nor a notion of
AMQP types, and recovery restores the exact types the client declared.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

EMPTY_TABLE = b"\x00\x00\x00\x00"  # an encoded field table with no entries
# RabbitMQ's default password hashing (rabbit_password_hashing_sha256): the hashing a stored
# user has unless it was saved with another one
DEFAULT_HASHING = "rabbit_password_hashing_sha256"


@dataclass(frozen=True)
class ExchangeDef:
    vhost: str
    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: bytes = EMPTY_TABLE  # encoded AMQP field table, exactly as stored


@dataclass(frozen=True)
class QueueDef:
    vhost: str
    name: str
    durable: bool = True
    auto_delete: bool = False
    arguments: bytes = EMPTY_TABLE  # encoded AMQP field table, exactly as stored
    # what a message store knows about the queue's stored messages (filled in by load())
    store_id: int | None = None
    message_count: int = 0
    min_seq: int = 0
    max_seq: int = 0
    delivered_seq: int = 0  # every stored message with seq <= this was delivered once


@dataclass(frozen=True)
class BindingDef:
    vhost: str
    source: str
    destination_type: str  # "queue" or "exchange"
    destination: str
    routing_key: str
    arguments: bytes = EMPTY_TABLE  # encoded AMQP field table; part of the binding's identity


@dataclass
class Definitions:
    exchanges: list[ExchangeDef] = field(default_factory=list)
    queues: list[QueueDef] = field(default_factory=list)
    bindings: list[BindingDef] = field(default_factory=list)


class StoreError(Exception):
    """The store cannot be used (locked, corrupt, from a newer version). str() is one line
    meant for the operator."""


# A stored queue entry as read back: (seq, message id, exchange, routing key, header, body,
# expires_at epoch ms or None).
EntryRow = tuple[int, int, str, str, bytes, bytes, "int | None"]
# A message held by a delayed exchange: (id, vhost, exchange, routing key, due_at epoch ms,
# header, body).
DelayedRow = tuple[int, str, str, str, int, bytes, bytes]


class Store(ABC):
    """Durable definitions of a broker, vhosts, users, permissions, policies, delayed
    messages and (when `persists_messages`) persistent messages.

    Every method is implemented by every store; `persists_messages` only tells the broker
    whether to route persistent messages of durable queues through the message operations
    (add_entry ... expiring) and to wait for on_commit before confirming them.
    """

    persists_messages: bool = False

    # -- lifecycle -----------------------------------------------------------------------------

    @abstractmethod
    async def open(self) -> None:
        """Prepare the store (create files, check versions, read what recovery needs)."""

    @abstractmethod
    async def close(self) -> None:
        """Flush pending writes and release resources."""

    # -- definitions ---------------------------------------------------------------------------

    @abstractmethod
    def save_exchange(self, exchange: ExchangeDef) -> None: ...

    @abstractmethod
    def delete_exchange(self, vhost: str, name: str) -> None:
        """Forget the exchange and every binding it is the source or destination of."""

    @abstractmethod
    def save_queue(self, queue: QueueDef) -> int:
        """Store a queue definition (its store_id and counts are ignored); returns the id the
        message operations know the queue by."""

    @abstractmethod
    def delete_queue(self, vhost: str, name: str, queue_id: int | None = None) -> None:
        """Forget the queue, the bindings to it and (given its id) its stored messages."""

    @abstractmethod
    def save_binding(self, binding: BindingDef) -> None: ...

    @abstractmethod
    def delete_binding(self, binding: BindingDef) -> None:
        """Forget the binding equal to `binding` (arguments compared as bytes)."""

    @abstractmethod
    def load(self) -> Definitions:
        """Everything durable, for recovery at start (after open())."""

    # -- vhosts, users, permissions -------------------------------------------------------------

    @abstractmethod
    def vhosts(self) -> list[tuple[str, str]]:
        """(name, metadata json) rows: every virtual host, with RabbitMQ's metadata
        (description, tags, tracing) as the broker saved it."""

    @abstractmethod
    def save_vhost(self, name: str, metadata_json: str) -> None:
        """Create or update a virtual host."""

    @abstractmethod
    def delete_vhost(self, name: str) -> None:
        """Forget the vhost and everything stored under it: its exchanges, queues with their
        stored messages, bindings, policies, permissions and delayed messages."""

    @abstractmethod
    def users(self) -> list[tuple[str, bytes, bytes, str, str]]:
        """(name, salt, password_hash, tags, hashing_algorithm) rows."""

    @abstractmethod
    def save_user(self, name: str, salt: bytes, password_hash: bytes, tags: str,
                  hashing_algorithm: str = DEFAULT_HASHING) -> None:
        """Create or replace a user; `tags` comma-separated, `password_hash` the digest
        (empty: no password)."""

    @abstractmethod
    def delete_user(self, name: str) -> None:
        """Forget the user and its permissions on every vhost."""

    @abstractmethod
    def permissions(self) -> list[tuple[str, str, str, str, str]]:
        """(user, vhost, configure, write, read) rows."""

    @abstractmethod
    def save_permission(self, user: str, vhost: str, configure: str, write: str, read: str) -> None:
        """Create or replace a user's permissions on a vhost (regular expressions)."""

    @abstractmethod
    def delete_permission(self, user: str, vhost: str) -> None: ...

    # -- policies, delayed messages ------------------------------------------------------------

    @abstractmethod
    def policies(self) -> list[tuple[str, str, str]]:
        """(vhost, name, definition json) rows."""

    @abstractmethod
    def save_policy(self, vhost: str, name: str, definition_json: str) -> None: ...

    @abstractmethod
    def delete_policy(self, vhost: str, name: str) -> None: ...

    @abstractmethod
    def delayed(self) -> list[DelayedRow]:
        """Messages held by delayed exchanges, by due time then id."""

    @abstractmethod
    def add_delayed(self, row_id: int | None, vhost: str, exchange: str, routing_key: str,
                    due_at: int, header: bytes, body: bytes) -> int:
        """A message held by a durable x-delayed-message exchange until `due_at` (epoch ms);
        `row_id` None picks the next free id. Returns the row id."""

    @abstractmethod
    def remove_delayed(self, row_id: int) -> None:
        """The held message was routed (or dropped with its exchange)."""

    # -- messages ------------------------------------------------------------------------------

    @abstractmethod
    def add_entry(self, queue_id: int, seq: int, msg, expires_at: int | None = None) -> None:
        """A persistent message entered a durable queue at position `seq` (expiring at
        `expires_at`, epoch ms, if it has a TTL). The first add of a message sets
        `msg.store_id`; later adds (other queues) reference the same stored message."""

    @abstractmethod
    def remove_entry(self, queue_id: int, seq: int, msg_id: int) -> None:
        """The entry was acked, dropped or expired: forget it (and the message with its last
        entry)."""

    @abstractmethod
    def purge_range(self, queue_id: int, after: int, upto: int) -> None:
        """Forget every stored entry of a queue with after < seq <= upto."""

    @abstractmethod
    def mark_delivered(self, queue_id: int, seq: int) -> None:
        """Entries of the queue with seq <= `seq` were delivered once (redelivered after a
        restart)."""

    @abstractmethod
    async def read_entries(self, queue_id: int, after: int, limit: int) -> list[EntryRow]:
        """Up to `limit` stored entries of a queue with seq > `after`, in seq order; sees
        everything changed before the call."""

    @abstractmethod
    async def read_seqs(self, queue_id: int, seqs: list[int]) -> list[EntryRow]:
        """The stored entries of a queue with these seqs, in seq order."""

    @abstractmethod
    async def expiring(self, queue_id: int) -> list[tuple[int, int]]:
        """(seq, expires_at) of a queue's stored entries that have an expiry (recovery)."""

    # -- commits -------------------------------------------------------------------------------

    @property
    @abstractmethod
    def batch_id(self) -> int:
        """The batch that changes made now will be committed with (grows by one per commit)."""

    @abstractmethod
    def on_commit(self, callback: Callable[[int, bool], None]) -> None:
        """Call `callback(batch_id, ok)` once the current batch is committed (or failed),
        never synchronously. Callbacks of one batch run in registration order."""

    @abstractmethod
    async def flush(self) -> None:
        """Wait until everything changed so far is committed (after the callbacks registered
        before it)."""

    # -- backpressure --------------------------------------------------------------------------

    @property
    @abstractmethod
    def backlogged(self) -> bool:
        """Too much waits for the disk: publishers should stop sending until on_caught_up."""

    @abstractmethod
    def on_caught_up(self, callback: Callable[[], None]) -> None:
        """Call `callback()` once, never synchronously, when the backlog is below the
        low-water mark (at the next turn of the loop if it is already)."""
