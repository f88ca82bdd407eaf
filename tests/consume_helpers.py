"""Shared pika helpers and fixtures of the consuming tests (test_consume.py, test_acks.py,
test_qos.py, test_properties_roundtrip.py): connections, a queue factory, pumping I/O, counting.
"""

from __future__ import annotations

import time
from urllib.parse import unquote, urlparse

import pika
import pika.exceptions
import pytest

from pika_helpers import conn, queue  # noqa: F401 - pytest fixtures, re-exported
from pika_helpers import connect  # noqa: F401 - re-exported

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def url_user(url: str) -> str:
    return unquote(urlparse(url).username or "guest")


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
