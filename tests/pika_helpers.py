"""Small pika (BlockingConnection) helpers shared by several test modules (exchanges, queues):
connection and queue fixtures, draining a queue, expecting a channel error, polling a condition.
"""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

# --------------------------------------------------------------------------------------------
# helpers


def connect(url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.blocked_connection_timeout = 10
    return pika.BlockingConnection(params)


@pytest.fixture
def conn(amqp_url):
    c = connect(amqp_url)
    yield c
    if c.is_open:
        c.close()


@pytest.fixture
def queue(amqp_url, uid, request):
    """Factory: declare a uniquely named queue (deleted at teardown). Returns its name."""
    admin = connect(amqp_url)
    prefix = "test-" + request.module.__name__.removeprefix("test_").replace("_", "-")
    names: list[str] = []

    def _declare(**kwargs) -> str:
        name = f"{prefix}-{uid}-{len(names) + 1}"
        ch = admin.channel()
        ch.queue_declare(name, **kwargs)
        ch.close()
        names.append(name)
        return name

    yield _declare
    try:
        ch = admin.channel()
        for n in names:
            ch.queue_delete(n)
        admin.close()
    except Exception:
        pass


@pytest.fixture
def ch(conn):
    """A confirm-mode channel: a publish returns only once the broker has routed it."""
    channel = conn.channel()
    channel.confirm_delivery()
    return channel


def drain(ch, queue: str) -> list[bytes]:
    """All ready messages of `queue` (auto-ack), in order."""
    out = []
    while True:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append(body)


def expect_channel_error(conn, fn, code: int, text: str | None = None):
    """Run fn(channel) on a fresh channel; it must be closed by the broker with code/text."""
    channel = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        fn(channel)
    assert ei.value.reply_code == code, ei.value
    if text is not None:
        assert ei.value.reply_text == text
    return ei.value


def wait_until(pred, timeout: float = 2.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
