"""Our broker in a background thread, and whether the suite runs against the reference.

`BrokerThread` runs a Broker with its own event loop in a daemon thread, so blocking clients
(pika, kombu) and asyncio clients (aio-pika, aiormq) can both talk to it. Each instance listens
on a port the OS picks (port 0) and keeps its data in its own temporary directory, so any
number of them (pytest-xdist workers, restart tests) run side by side.
"""
from __future__ import annotations

import asyncio
import os
import tempfile
import threading

# A real RabbitMQ (see the module docstring of tests/conftest.py): when set, `amqp_url` points at it.
REFERENCE_URL = os.environ.get("AMQP_REFERENCE_URL")
REFERENCE = bool(REFERENCE_URL)


class BrokerThread:
    """Runs a Broker in a daemon thread; usable as a context manager from sync code."""

    def __init__(self, **kwargs):
        kwargs.setdefault("port", 0)
        kwargs.setdefault("host", "127.0.0.1")
        self._kwargs = kwargs
        self._tmp = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.broker = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.broker.url

    def is_alive(self) -> bool:
        """The broker's thread (and so its event loop) still runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            from amqp_broker import Broker

            self.broker = Broker(**self._kwargs)
            self.loop.run_until_complete(self.broker.start())
        except BaseException as exc:  # surfaced to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.broker.stop())
        self.loop.close()

    def call(self, coro_fn, *args, timeout: float = 10):
        """Run `coro_fn(*args)` on the broker's loop and return its result."""
        fut = asyncio.run_coroutine_threadsafe(coro_fn(*args), self.loop)
        return fut.result(timeout)

    def start(self) -> "BrokerThread":
        if "data_dir" not in self._kwargs:
            self._tmp = tempfile.TemporaryDirectory(prefix="amqp-broker-test-")
            self._kwargs["data_dir"] = self._tmp.name
        self._thread = threading.Thread(target=self._run, name="broker", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self.loop is not None and self.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "BrokerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
