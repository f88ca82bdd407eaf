"""pika (BlockingConnection) helpers and fixtures shared by the client-level tests.

Fixtures: `conn` (a connection to `amqp_url`), `ch` (a confirm-mode channel on it), `queue` (a
factory of uniquely named queues, deleted at teardown) and `cleanup` (names to delete at
teardown). Helpers: connecting, servicing a connection's I/O until a condition holds, reading a
queue empty, counting and checking for queues and exchanges.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator, Sequence
from urllib.parse import unquote, urlparse

import pika
import pika.exceptions
import pytest

from helpers.wait import HANG_GUARD, wait_until

# --------------------------------------------------------------------------------------------
# connections


def connect(url: str, **params: Any) -> pika.BlockingConnection:
    """A blocking connection with bounded socket / blocked-connection timeouts; `params` set
    further pika.URLParameters attributes (heartbeat=..., channel_max=...)."""
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = 5
    parameters.blocked_connection_timeout = 10
    for name, value in params.items():
        setattr(parameters, name, value)
    return pika.BlockingConnection(parameters)


@contextlib.contextmanager
def connection(url: str, **params: Any) -> Iterator[pika.BlockingConnection]:
    """`connect`, closing the connection on exit unless the broker already closed it."""
    c = connect(url, **params)
    try:
        yield c
    finally:
        if c.is_open:
            c.close()


def url_user(url: str) -> str:
    return unquote(urlparse(url).username or "guest")


@pytest.fixture
def conn(amqp_url):
    with connection(amqp_url) as c:
        yield c


@pytest.fixture
def ch(conn):
    """A confirm-mode channel: a publish returns only once the broker has routed it."""
    channel = conn.channel()
    channel.confirm_delivery()
    return channel


@pytest.fixture
def queue(amqp_url, uid, request):
    """Factory: declare a uniquely named queue (deleted at teardown). Returns its name."""
    admin = connect(amqp_url)
    prefix = "test-" + request.module.__name__.removeprefix("test_").replace("_", "-")
    names: list[str] = []

    def _declare(**kwargs) -> str:
        name = f"{prefix}-{uid}-{len(names) + 1}"
        channel = admin.channel()
        channel.queue_declare(name, **kwargs)
        channel.close()
        names.append(name)
        return name

    yield _declare
    try:
        channel = admin.channel()
        for n in names:
            channel.queue_delete(n)
        admin.close()
    except Exception:
        pass


@pytest.fixture
def cleanup(amqp_url):
    """{"queues": [...], "exchanges": [...]}: names to `delete_all` at teardown."""
    names: dict[str, list[str]] = {"queues": [], "exchanges": []}
    yield names
    delete_all(amqp_url, names["queues"], names["exchanges"])


def delete_all(url: str, queues: Sequence[str] = (), exchanges: Sequence[str] = ()) -> None:
    """Delete queues and exchanges over a fresh connection, each on its own channel; a name
    the broker refuses to delete (say an exclusive queue of a connection that is still open,
    which dies with it) is skipped."""
    if not (queues or exchanges):
        return
    with connection(url) as c:
        for q in queues:
            try:
                c.channel().queue_delete(q)
            except pika.exceptions.ChannelClosedByBroker:
                pass
        for x in exchanges:
            try:
                c.channel().exchange_delete(x)
            except pika.exceptions.ChannelClosedByBroker:
                pass


# --------------------------------------------------------------------------------------------
# servicing I/O


def _each(conns) -> Sequence[pika.BlockingConnection]:
    return conns if isinstance(conns, (list, tuple)) else (conns,)


def pump(conns, until: Callable[[], Any], timeout: float = HANG_GUARD) -> bool:
    """Process the I/O of one connection (or a list of them) until `until()` is true or
    `timeout` passes; returns until()."""
    deadline = time.monotonic() + timeout
    while not until() and time.monotonic() < deadline:
        for c in _each(conns):
            c.process_data_events(time_limit=0.01)
    return until()


def settle(conns, seconds: float = 0.3) -> None:
    """Process the I/O of one connection (or a list of them) for `seconds`: to show that
    nothing (more) arrives, or to let timers fire while callbacks run."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        for c in _each(conns):
            c.process_data_events(time_limit=min(left, 0.02))


# --------------------------------------------------------------------------------------------
# queues and exchanges


def ready_count(ch, q) -> int:
    """Ready messages of `q` (passive declare on `ch`)."""
    return ch.queue_declare(q, passive=True).method.message_count


def wait_ready(ch, q, n: int, timeout: float = HANG_GUARD) -> int:
    """Poll until `q` has `n` ready messages (or `timeout` passed); returns the last count."""
    deadline = time.monotonic() + timeout
    while True:
        count = ready_count(ch, q)
        if count == n or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def message_count(url: str, q: str) -> int | None:
    """Ready messages of `q` over a fresh connection; None when it does not exist (404)."""
    c = connect(url)
    try:
        channel = c.channel()
        try:
            return ready_count(channel, q)
        except pika.exceptions.ChannelClosedByBroker as exc:
            assert exc.reply_code == 404, exc
            return None
    finally:
        if c.is_open:
            c.close()


def _passive_declare_ok(conn, declare: Callable[[Any], Any]) -> bool:
    """Run a passive declare on a throwaway channel: True if it succeeds, False on 404."""
    channel = conn.channel()
    try:
        declare(channel)
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404, exc
        return False
    channel.close()
    return True


def queue_exists(conn, name: str) -> bool:
    return _passive_declare_ok(conn, lambda channel: channel.queue_declare(name, passive=True))


def exchange_exists(conn, name: str) -> bool:
    return _passive_declare_ok(conn, lambda channel: channel.exchange_declare(name, passive=True))


def publish_numbers(ch, q, n: int, start: int = 1) -> None:
    """Publish bodies b"start" .. b"start+n-1" to `q` through the default exchange."""
    for i in range(start, start + n):
        ch.basic_publish("", q, str(i).encode())


def poll_get(ch, q: str, timeout: float = HANG_GUARD):
    """basic.get (auto-ack) until a message arrives: (method, properties, body); fails after
    `timeout` seconds."""
    got = []

    def arrived() -> bool:
        method, props, body = ch.basic_get(q, auto_ack=True)
        if method is not None:
            got.append((method, props, body))
        return bool(got)

    if not wait_until(arrived, timeout):
        raise AssertionError(f"no message arrived in {q!r} within {timeout} s")
    return got[0]


def drain_flagged(ch, q, auto_ack: bool = True) -> list[tuple[bytes, bool]]:
    """basic.get until `q` is empty: [(body, redelivered)] in order."""
    out = []
    while True:
        method, _props, body = ch.basic_get(q, auto_ack=auto_ack)
        if method is None:
            return out
        out.append((body, method.redelivered))


def drain(ch, q: str) -> list[bytes]:
    """All ready messages of `q` (auto-ack), in order."""
    return [body for body, _redelivered in drain_flagged(ch, q)]


def expect_channel_error(conn, fn, code: int, text: str | None = None):
    """Run fn(channel) on a fresh channel; it must be closed by the broker with code/text."""
    channel = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        fn(channel)
    assert ei.value.reply_code == code, ei.value
    if text is not None:
        assert ei.value.reply_text == text
    return ei.value


def roundtrip(params: pika.ConnectionParameters, body: bytes) -> bytes:
    """Open a connection, publish `body` to a fresh exclusive queue, get it back, close."""
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.basic_publish(exchange="", routing_key=queue, body=body)
        return poll_get(channel, queue, timeout=5)[2]
    finally:
        if connection.is_open:
            connection.close()
