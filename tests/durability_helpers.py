"""Helpers of the durability tests (test_durability*.py): a restartable broker `Node` on one data
dir (`node` fixture), persistent / transient properties, publish / get / existence helpers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pika
import pika.exceptions
import pytest

from conftest import BrokerThread

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
        params = pika.URLParameters(self.url)
        params.socket_timeout = 5
        params.blocked_connection_timeout = 10
        c = pika.BlockingConnection(params)
        self.conns.append(c)
        return c

    def channel(self, confirm: bool = True):
        ch = self.connect().channel()
        if confirm:
            ch.confirm_delivery()
        return ch


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


def get_all(ch, q) -> list[tuple[bytes, bool]]:
    """basic.get with auto-ack until empty: [(body, redelivered)]."""
    out = []
    while True:
        m, _p, b = ch.basic_get(q, auto_ack=True)
        if m is None:
            return out
        out.append((b, m.redelivered))


def bodies(ch, q) -> list[bytes]:
    return [b for b, _ in get_all(ch, q)]


def count(ch, q) -> int:
    return ch.queue_declare(q, passive=True).method.message_count


def exists_queue(node: Node, q: str) -> bool:
    ch = node.channel(confirm=False)
    try:
        ch.queue_declare(q, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404, exc
        return False


def exists_exchange(node: Node, x: str) -> bool:
    ch = node.channel(confirm=False)
    try:
        ch.exchange_declare(x, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404, exc
        return False


def closed_with(code: int, fn, *args, **kwargs) -> pika.exceptions.ChannelClosedByBroker:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        fn(*args, **kwargs)
    assert info.value.reply_code == code, info.value
    return info.value


def data_files(node: Node) -> list[Path]:
    return [p for p in node.data_dir.rglob("*") if p.is_file()]
