"""Shared fixtures: a real broker on a free port, driven by real clients.

`amqp_url` points at our broker (helpers.broker.BrokerThread), started in a background thread
with its own event loop, so blocking clients (pika, kombu) and asyncio clients (aio-pika,
aiormq) can both talk to it. When AMQP_REFERENCE_URL is set, `amqp_url` points at that server
instead (a real RabbitMQ): the same tests then prove that our expectations are RabbitMQ's.
Tests that need our broker specifically (restarts, in-process API) use `own_broker` instead.

Parallel runs (pytest-xdist, on by default, see pyproject.toml): session fixtures exist once
per worker, so every worker has its own broker, on a port the OS picked and with its own
temporary data directory; restart tests use their tmp_path. Nothing is shared between workers
but the reference server. Against the reference, tests of all workers share one RabbitMQ:
names carry the `uid` fixture's random suffix, and the few fixed names (examples/, the
benchmark smoke test, ...) stay within one test module, and `--dist loadfile` keeps a module on
one worker, so workers never collide on a name.
"""
from __future__ import annotations

import uuid

import pytest

from helpers.broker import REFERENCE_URL, BrokerThread


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
