"""Storage: one store interface (base.Store) with implementations behind it.

`memory.MemoryStore` keeps definitions in process memory (transient data, tests, embedding);
a SQLite store implements the same interface for durable data.
"""
from .base import Store, StoreError
from .memory import MemoryStore

__all__ = ["Store", "StoreError", "MemoryStore"]
