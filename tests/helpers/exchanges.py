"""Helpers of the exchange tests (test_exchanges*.py): declare helpers that register the names
with the `cleanup` fixture (helpers.pika_client), `get_one`.
"""

from __future__ import annotations

DEFAULT_EXCHANGE_REFUSED = "ACCESS_REFUSED - operation not permitted on the default exchange"


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
