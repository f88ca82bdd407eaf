"""Shared pika helpers and fixtures of the consuming tests (test_consume.py, test_acks.py,
test_qos.py, test_properties_roundtrip.py): connections, a queue factory, pumping I/O, counting.
"""

from __future__ import annotations

import time
from urllib.parse import unquote, urlparse

import pika
import pika.exceptions
import pytest

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def connect(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


def url_user(url: str) -> str:
    return unquote(urlparse(url).username or "guest")


@pytest.fixture
def conn(amqp_url):
    c = connect(amqp_url)
    yield c
    if c.is_open:
        c.close()


@pytest.fixture
def queue(amqp_url, uid):
    """Factory: declare a uniquely named queue (deleted at teardown). Returns its name."""
    admin = connect(amqp_url)
    names: list[str] = []
    counter = [0]

    def _declare(**kwargs) -> str:
        counter[0] += 1
        name = f"test-consume-{uid}-{counter[0]}"
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


def pump(c: pika.BlockingConnection, until, timeout: float = 2.0) -> bool:
    """Process I/O until `until()` is true or `timeout` passes; returns until()."""
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        c.process_data_events(time_limit=0.02)
    return until()


def settle(c: pika.BlockingConnection, seconds: float = 0.3) -> None:
    """Process I/O for a while (to show that nothing more arrives)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        c.process_data_events(time_limit=0.02)


def ready_count(ch, q) -> int:
    return ch.queue_declare(q, passive=True).method.message_count


def wait_ready(ch, q, n: int, timeout: float = 2.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        count = ready_count(ch, q)
        if count == n or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def publish_numbers(ch, q, n: int, start: int = 1) -> None:
    for i in range(start, start + n):
        ch.basic_publish("", q, str(i).encode())


def drain(ch, q, auto_ack: bool = True) -> list[tuple[bytes, bool]]:
    out = []
    while True:
        m, _p, b = ch.basic_get(q, auto_ack=auto_ack)
        if m is None:
            return out
        out.append((b, m.redelivered))
