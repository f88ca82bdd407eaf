"""Helpers of the exchange tests (test_exchanges*.py): a cleanup registry for queues and
exchanges, declare helpers, `get_one`, `exchange_exists`.
"""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from pika_helpers import ch, conn  # noqa: F401 - pytest fixtures
from pika_helpers import connect

DEFAULT_EXCHANGE_REFUSED = "ACCESS_REFUSED - operation not permitted on the default exchange"


@pytest.fixture
def cleanup(amqp_url):
    """Register names to delete at teardown (on a fresh connection)."""
    names: dict[str, list[str]] = {"queues": [], "exchanges": []}
    yield names
    c = connect(amqp_url)
    try:
        for q in names["queues"]:
            c.channel().queue_delete(q)
        for x in names["exchanges"]:
            try:
                c.channel().exchange_delete(x)
            except pika.exceptions.ChannelClosedByBroker:
                pass
    finally:
        c.close()


def declare_queue(ch, cleanup, name: str, **kw) -> str:
    name = ch.queue_declare(name, **kw).method.queue
    cleanup["queues"].append(name)
    return name


def declare_exchange(ch, cleanup, name: str, type_: str = "direct", **kw) -> str:
    ch.exchange_declare(name, type_, **kw)
    cleanup["exchanges"].append(name)
    return name


def get_one(ch, queue: str):
    method, props, body = ch.basic_get(queue, auto_ack=True)
    assert method is not None, f"no message in {queue!r}"
    return method, props, body


def exchange_exists(conn, name: str) -> bool:
    channel = conn.channel()
    try:
        channel.exchange_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404
        return False
    channel.close()
    return True
