"""Shared fixtures: a real broker on a free port, driven by real clients.

`amqp_url` points at our broker, started in a background thread with its own event loop, so
blocking clients (pika, kombu) and asyncio clients (aio-pika, aiormq) can both talk to it.
When AMQP_REFERENCE_URL is set, `amqp_url` points at that server instead (a real RabbitMQ,
see ../shared/tools/reference-rabbitmq): the same tests then prove that our expectations are
RabbitMQ's. Tests that need our broker specifically (restarts, in-process API) use
`own_broker` instead.
"""
from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import uuid

import pytest

REFERENCE_URL = os.environ.get("AMQP_REFERENCE_URL")


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
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(30)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "BrokerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture(scope="session")
def own_broker():
    """Our broker, always (never the reference)."""
    with BrokerThread() as bt:
        yield bt


@pytest.fixture(scope="session")
def amqp_url(request):
    """URL of the broker under test: the reference RabbitMQ if AMQP_REFERENCE_URL is set."""
    if REFERENCE_URL:
        return REFERENCE_URL
    return request.getfixturevalue("own_broker").url


@pytest.fixture
def uid() -> str:
    """A unique suffix for names, so tests never collide on a shared server."""
    return uuid.uuid4().hex[:10]
