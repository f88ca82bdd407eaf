"""The store interface the broker writes durable definitions through.

The broker calls these synchronously from the event loop; an implementation that touches a
disk must queue the work and commit it in batches (group commit), never block the loop.
Definitions are plain data (names, flags, argument tables) so a store never holds broker
objects, and the same calls could be replayed on another node.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass
class ExchangeDef:
    vhost: str
    name: str
    type: str
    durable: bool = True
    auto_delete: bool = False
    internal: bool = False
    arguments: dict = field(default_factory=dict)
    typed_arguments: dict = field(default_factory=dict)  # key -> (AMQP type letter, value)


@dataclass
class QueueDef:
    vhost: str
    name: str
    durable: bool = True
    auto_delete: bool = False
    arguments: dict = field(default_factory=dict)
    typed_arguments: dict = field(default_factory=dict)
    # what a message store knows about the queue's stored messages (see Store.persists_messages)
    store_id: int | None = None
    message_count: int = 0
    min_seq: int = 0
    max_seq: int = 0
    delivered_seq: int = 0  # every stored message with seq <= this was delivered once


@dataclass
class BindingDef:
    vhost: str
    source: str
    destination_type: str  # "queue" or "exchange"
    destination: str
    routing_key: str
    arguments: dict = field(default_factory=dict)


@dataclass
class Definitions:
    exchanges: list[ExchangeDef] = field(default_factory=list)
    queues: list[QueueDef] = field(default_factory=list)
    bindings: list[BindingDef] = field(default_factory=list)


class StoreError(Exception):
    """The store cannot be used (locked, corrupt, from a newer version). str() is one line
    meant for the operator."""


class Store(ABC):
    """Durable definitions of a broker, and (when `persists_messages`) persistent messages.

    A store that persists messages also implements the message operations of
    storage.sqlite.SQLiteStore (add_entry, remove_entry, purge_queue, read_entries, ...);
    the broker only calls them when `persists_messages` is true.
    """

    persists_messages = False

    async def open(self) -> None:
        """Prepare the store (create files, check versions). Default: nothing to prepare."""

    async def close(self) -> None:
        """Flush pending writes and release resources. Default: nothing to release."""

    @abstractmethod
    def save_exchange(self, vhost: str, exchange) -> None: ...

    @abstractmethod
    def delete_exchange(self, vhost: str, name: str) -> None: ...

    @abstractmethod
    def save_queue(self, vhost: str, queue) -> int | None:
        """Store a queue definition; a message-persisting store returns the queue's id."""

    @abstractmethod
    def delete_queue(self, vhost: str, name: str, queue_id: int | None = None) -> None: ...

    @abstractmethod
    def save_binding(self, vhost: str, source: str, destination: tuple[str, str], routing_key: str, arguments: dict) -> None: ...

    @abstractmethod
    def delete_binding(self, vhost: str, source: str, destination: tuple[str, str], routing_key: str, arguments: dict) -> None: ...

    @abstractmethod
    def load(self) -> Definitions:
        """Everything durable, for recovery at start."""
