"""Shared fixtures: a real broker on a free port, driven by real clients.

`amqp_url` points at our broker (helpers.broker.BrokerThread), started in a background thread
with its own event loop, so blocking clients (pika, kombu) and asyncio clients (aio-pika,
aiormq) can both talk to it. When AMQP_REFERENCE_URL is set, `amqp_url` points at that server
instead (a real RabbitMQ): the same tests then prove that our expectations are RabbitMQ's.
Tests that need our broker specifically (restarts, in-process API) use `own_broker` instead.

Parallel runs (pytest-xdist, on by default, see pyproject.toml): session fixtures exist once
per worker, so every worker has its own broker, on a port the OS picked and with its own
temporary data directory; restart tests and subprocess brokers use the test's tmp_path and a
free port. Nothing is shared between workers but the reference server.

Reference mode (AMQP_REFERENCE_URL) runs with the same workers, all on one RabbitMQ (which
other people's runs may share too). That is safe because no test relies on a fixed name there:
every queue, exchange and policy name (and policy pattern) the tests create on `amqp_url`
carries the `uid` fixture's random suffix, or is server-named / exclusive; fixed names
("crash-q", "db-q", ...) appear only on brokers of a test's own (own_broker-only modules,
subprocess and restart brokers). Keep it so: a new test against `amqp_url` names things with
`uid`, and then needs no fewer workers.
"""
from __future__ import annotations

import uuid

import pytest

from helpers.broker import REFERENCE_URL, BrokerThread
from helpers.mgmt import mgmt  # noqa: F401 - the management API fixture, for every module
from helpers.serve_cli import serve_cli  # noqa: F401 - `amqp-broker serve` subprocesses


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
