"""Storage: one store interface (base.Store) with implementations behind it.

`memory.MemoryStore` keeps everything in process memory (transient data, tests, embedding);
`sqlite.SQLiteStore` implements the same interface for durable data. Nothing here knows the
AMQP wire format or sockets: argument tables arrive and leave as encoded bytes, and
backpressure is a signal (Store.backlogged / Store.on_caught_up) for whoever owns the clients.
"""
from .base import EMPTY_TABLE, BindingDef, Definitions, ExchangeDef, QueueDef, Store, StoreError
from .memory import MemoryStore

__all__ = ["Store", "StoreError", "MemoryStore", "ExchangeDef", "QueueDef", "BindingDef", "Definitions",
           "EMPTY_TABLE"]
