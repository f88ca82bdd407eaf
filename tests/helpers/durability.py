"""Helpers of the durability and restart tests: a restartable broker `Node` on one data dir
(`node` fixture, in the test's tmp_path), persistent / transient properties, publish helpers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

from helpers.broker import BrokerThread
from helpers.pika_client import connect, exchange_exists, queue_exists

PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)


class Node:
    """One data dir, brokers started and stopped on it in turn."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.bt: BrokerThread | None = None
        self.conns: list[pika.BlockingConnection] = []
        self.restarts = 0

    def start(self) -> "Node":
        self.bt = BrokerThread(data_dir=str(self.data_dir)).start()
        return self

    def stop(self, close_clients: bool = True) -> None:
        """Stop the broker. Clients are closed first unless `close_clients` is false: then the
        broker stops under them (connection.close 320; an idle blocking client does not answer,
        so the broker waits its few seconds for close-ok)."""
        if close_clients:
            self._close_clients()
        if self.bt is not None:
            self.bt.stop()
            self.bt = None
        self._close_clients()

    def _close_clients(self) -> None:
        for c in self.conns:
            with contextlib.suppress(Exception):
                if c.is_open:
                    c.close()
        self.conns.clear()

    def restart(self, close_clients: bool = True) -> "Node":
        self.stop(close_clients)
        self.restarts += 1
        return self.start()

    @property
    def url(self) -> str:
        return self.bt.url

    def connect(self) -> pika.BlockingConnection:
        """A connection to the running broker, closed when it stops."""
        c = connect(self.url)
        self.conns.append(c)
        return c

    def channel(self, confirm: bool = True):
        ch = self.connect().channel()
        if confirm:
            ch.confirm_delivery()
        return ch

    def open(self) -> tuple[pika.BlockingConnection, BlockingChannel]:
        """A new connection and a confirm-mode channel on it."""
        c = self.connect()
        ch = c.channel()
        ch.confirm_delivery()
        return c, ch

    def has_queue(self, q: str) -> bool:
        return queue_exists(self.connect(), q)

    def has_exchange(self, x: str) -> bool:
        return exchange_exists(self.connect(), x)


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path / "data").start()
    yield n
    n.stop()


# --------------------------------------------------------------------------------------------
# helpers


def publish(ch, routing_key, bodies, exchange="", props=PERSISTENT, mandatory=False) -> None:
    for b in bodies:
        ch.basic_publish(exchange, routing_key, b if isinstance(b, bytes) else str(b).encode(),
                         properties=props, mandatory=mandatory)


def numbers(n, start=1) -> list[bytes]:
    return [str(i).encode() for i in range(start, start + n)]


def closed_with(code: int, fn, *args, **kwargs) -> pika.exceptions.ChannelClosedByBroker:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        fn(*args, **kwargs)
    assert info.value.reply_code == code, info.value
    return info.value


def data_files(node: Node) -> list[Path]:
    return [p for p in node.data_dir.rglob("*") if p.is_file()]
