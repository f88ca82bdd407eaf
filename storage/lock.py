"""The data-dir lock: one broker process per data directory.

Two brokers writing one SQLite database would each believe it owns the queues and messages;
SQLite's own locking only serialises their transactions. An exclusive flock on a file next to
the database makes the second broker refuse to start, and the file holds the owner's pid for
the error message. The kernel releases a flock when its process dies, so a crash never leaves
a stale lock behind.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .base import StoreError


class DataDirLock:
    def __init__(self, data_dir: Path, file_name: str):
        self.data_dir = data_dir
        self.file_name = file_name
        self._fd: int | None = None

    def acquire(self) -> None:
        """Create the data dir if needed and lock it; StoreError when it is in use."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.data_dir / self.file_name, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot use data dir {self.data_dir}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                owner = os.pread(fd, 32, 0).decode().strip()
            except OSError:
                owner = "?"
            os.close(fd)
            raise StoreError(
                f"data dir {self.data_dir} is in use by another amqp-broker (pid {owner or '?'})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
