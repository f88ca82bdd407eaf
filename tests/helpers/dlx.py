"""Helpers of the dead-lettering / TTL / expiry / limits / policy tests.

`Env` owns one pika connection with a confirm-mode channel and remembers every queue and
exchange it declared, deleting them at teardown (the reference broker is shared: all names
carry the test's uid); the `env` fixture makes one. `dl_get` reads the next message of a
dead-letter queue with its wire types; the typed x-death assertions work on
`helpers.typed.RawMessage` headers.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import pika
import pika.exceptions
import pytest

from helpers.pika_client import connect, delete_all, drain, queue_exists, ready_count
from helpers.typed import raw_get
from helpers.wait import HANG_GUARD, wait_until


class Env:
    def __init__(self, url: str, uid: str):
        self.url = url
        self.uid = uid
        self.conn = connect(url)
        self.ch = self.conn.channel()
        self.ch.confirm_delivery()
        self.queues: list[str] = []
        self.exchanges: list[str] = []

    # ---------------------------------------------------------------- topology
    def name(self, prefix: str) -> str:
        return f"{prefix}-{self.uid}"

    def queue(self, prefix: str, args: dict | None = None, *, exact: bool = False, **kw) -> str:
        """Declare queue `{prefix}-{uid}` (or `prefix` itself if exact) with `args`."""
        name = prefix if exact else self.name(prefix)
        self.ch.queue_declare(name, arguments=args, **kw)
        if name not in self.queues:
            self.queues.append(name)
        return name

    def exchange(self, prefix: str, type: str = "fanout", *, exact: bool = False, **kw) -> str:
        name = prefix if exact else self.name(prefix)
        self.ch.exchange_declare(name, type, **kw)
        if name not in self.exchanges:
            self.exchanges.append(name)
        return name

    def bind(self, queue: str, exchange: str, routing_key: str = "") -> None:
        self.ch.queue_bind(queue, exchange, routing_key)

    def dlx_pair(self, prefix: str = "dl") -> tuple[str, str]:
        """A fanout dead-letter exchange with one bound queue: (exchange, queue)."""
        x = self.exchange(f"{prefix}x")
        q = self.queue(f"{prefix}q")
        self.bind(q, x)
        return x, q

    # ---------------------------------------------------------------- messages
    def publish(self, exchange: str, routing_key: str, body: bytes = b"m", **props) -> None:
        """Confirmed publish; raises pika.exceptions.NackError on a nack."""
        self.ch.basic_publish(exchange, routing_key, body, pika.BasicProperties(**props))

    def marker_queue(self, dlx: str, ttl_ms: int) -> str:
        """A queue whose x-message-ttl of `ttl_ms` dead-letters to `dlx`. A message published
        there is a clock on the broker's side: "X is dead-lettered before the marker" bounds
        when X expired without timing anything on the client (which a slow, shared machine
        would make flaky). The marker's deadline starts when the broker takes its publish."""
        return self.queue(f"marker{len(self.queues)}", {"x-message-ttl": ttl_ms,
                                                        "x-dead-letter-exchange": dlx})

    def count(self, queue: str) -> int:
        """Ready message count (passive declare, on a throwaway channel)."""
        ch = self.conn.channel()
        try:
            return ready_count(ch, queue)
        finally:
            if ch.is_open:
                ch.close()

    def exists(self, queue: str) -> bool:
        return queue_exists(self.conn, queue)

    def get(self, queue: str, auto_ack: bool = True):
        return self.ch.basic_get(queue, auto_ack=auto_ack)

    def bodies(self, queue: str) -> list[bytes]:
        return drain(self.ch, queue)

    def wait_count(self, queue: str, n: int, timeout: float = HANG_GUARD) -> int:
        wait_until(lambda: self.count(queue) == n, timeout)
        return self.count(queue)

    def channel_error(self, fn: Callable[[Any], Any]) -> pika.exceptions.ChannelClosedByBroker:
        """Run fn(channel) on a fresh channel; it must be closed by the broker."""
        ch = self.conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            fn(ch)
        return ei.value

    def close(self) -> None:
        """Delete what this Env declared (on a fresh connection), then close its connection."""
        try:
            delete_all(self.url, self.queues, self.exchanges)
        except Exception:  # noqa: BLE001 - teardown of a test that may have broken the server
            pass
        try:
            if self.conn.is_open:
                self.conn.close()
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture
def env(amqp_url, uid):
    e = Env(amqp_url, uid)
    yield e
    e.close()


def dl_get(env: Env, queue: str, wait: float = HANG_GUARD):
    """The next message of a dead-letter queue, decoded with its wire types (polls)."""
    msg = raw_get(env.url, queue, wait=wait)
    assert msg is not None, f"nothing dead-lettered into {queue}"
    return msg


def consume_until(conn: pika.BlockingConnection, ch, queue: str, n: int = 1,
                  timeout: float = HANG_GUARD, auto_ack: bool = True, **consume_kw):
    """basic.consume on `queue`, collect n deliveries (method, props, body, monotonic time)."""
    got: list[tuple[Any, Any, bytes, float]] = []

    def on_msg(_ch, method, props, body):
        got.append((method, props, body, time.monotonic()))

    tag = ch.basic_consume(queue, on_msg, auto_ack=auto_ack, **consume_kw)
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        conn.process_data_events(time_limit=0.01)
    ch.basic_cancel(tag)
    return got


# -------------------------------------------------------------------- typed x-death checks
FIRST_DEATH_KEYS = ["x-death", "x-first-death-exchange", "x-first-death-queue",
                    "x-first-death-reason"]
# The key order of an x-death table RabbitMQ 3.10 builds for the FIRST death of a message
# (rabbit_dead_letter:update_x_death_header prepends [count | Info] unsorted). Any later death
# rewrites the new/updated entry with rabbit_misc:sort_field_table, i.e. keys sorted.
FRESH_ENTRY_KEYS = ["count", "reason", "queue", "time", "exchange", "routing-keys"]


def xdeath_entries(msg) -> list[list[tuple[str, tuple[str, Any]]]]:
    letter, items = msg.header("x-death")
    assert letter == "A", f"x-death must be an array, got {letter!r}"
    out = []
    for item in items:
        assert item[0] == "F", f"x-death items must be tables, got {item[0]!r}"
        out.append(item[1])
    return out


def assert_entry(entry, *, count: int, reason: str, queue: str, exchange: str,
                 routing_keys: list[str], original_expiration: str | None = None,
                 sorted_keys: bool = False, time_sec: int | None = None) -> None:
    keys = FRESH_ENTRY_KEYS + (["original-expiration"] if original_expiration is not None else [])
    if sorted_keys:
        keys = sorted(keys)
    assert [k for k, _ in entry] == keys
    d = dict(entry)
    assert d["count"] == ("l", count)
    assert d["reason"] == ("S", reason)
    assert d["queue"] == ("S", queue)
    assert d["exchange"] == ("S", exchange)
    assert d["routing-keys"] == ("A", [("S", k) for k in routing_keys])
    if original_expiration is not None:
        assert d["original-expiration"] == ("S", original_expiration)
    letter, t = d["time"]
    assert letter == "T"
    if time_sec is None:
        # a unit check, not a timing: milliseconds would be ~1000 times off; a day of slack
        assert abs(t - time.time()) < 86400, f"time {t} is not seconds since the epoch"
    else:
        assert t == time_sec


def assert_first_death(msg, *, reason: str, queue: str, exchange: str) -> None:
    assert msg.header("x-first-death-reason") == ("S", reason)
    assert msg.header("x-first-death-queue") == ("S", queue)
    assert msg.header("x-first-death-exchange") == ("S", exchange)
