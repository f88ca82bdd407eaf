"""Helpers shared by test_ttl_dlx.py, test_limits_priority.py and test_policies.py.

`Env` owns one pika connection with a confirm-mode channel and remembers every queue and
exchange it declared, deleting them at teardown (the reference broker is shared: all names
carry the test's uid). Typed x-death assertions work on `amqp_typed.RawMessage` headers.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable

import pika
import pika.exceptions
import pytest

REFERENCE = bool(os.environ.get("AMQP_REFERENCE_URL"))


def connect(url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.blocked_connection_timeout = 10
    return pika.BlockingConnection(params)


def wait_until(pred: Callable[[], Any], timeout: float = 2.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


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

    def count(self, queue: str) -> int:
        """Ready message count (passive declare, on a throwaway channel)."""
        ch = self.conn.channel()
        try:
            return ch.queue_declare(queue, passive=True).method.message_count
        finally:
            if ch.is_open:
                ch.close()

    def exists(self, queue: str) -> bool:
        ch = self.conn.channel()
        try:
            ch.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            assert exc.reply_code == 404, exc
            return False
        ch.close()
        return True

    def get(self, queue: str, auto_ack: bool = True):
        return self.ch.basic_get(queue, auto_ack=auto_ack)

    def bodies(self, queue: str) -> list[bytes]:
        out = []
        while True:
            method, _props, body = self.ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append(body)

    def wait_count(self, queue: str, n: int, timeout: float = 2.0) -> int:
        wait_until(lambda: self.count(queue) == n, timeout)
        return self.count(queue)

    def channel_error(self, fn: Callable[[Any], Any]) -> pika.exceptions.ChannelClosedByBroker:
        """Run fn(channel) on a fresh channel; it must be closed by the broker."""
        ch = self.conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
            fn(ch)
        return ei.value

    def close(self) -> None:
        try:
            c = connect(self.url)
        except Exception:
            return
        try:
            for q in self.queues:
                ch = c.channel()
                try:
                    ch.queue_delete(q)
                    ch.close()
                except pika.exceptions.ChannelClosedByBroker:
                    pass
            for x in self.exchanges:
                ch = c.channel()
                try:
                    ch.exchange_delete(x)
                    ch.close()
                except pika.exceptions.ChannelClosedByBroker:
                    pass
        finally:
            try:
                c.close()
            except Exception:
                pass
            try:
                if self.conn.is_open:
                    self.conn.close()
            except Exception:
                pass


def pump(conn: pika.BlockingConnection, seconds: float) -> None:
    """Service a blocking connection's I/O for `seconds` (process_data_events may return early)."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        conn.process_data_events(time_limit=min(left, 0.05))


def consume_until(conn: pika.BlockingConnection, ch, queue: str, n: int = 1,
                  timeout: float = 3.0, auto_ack: bool = True, **consume_kw):
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
        assert abs(t - time.time()) < 30, f"time {t} is not seconds since the epoch"
    else:
        assert t == time_sec


def assert_first_death(msg, *, reason: str, queue: str, exchange: str) -> None:
    assert msg.header("x-first-death-reason") == ("S", reason)
    assert msg.header("x-first-death-queue") == ("S", queue)
    assert msg.header("x-first-death-exchange") == ("S", exchange)
