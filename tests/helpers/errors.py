"""Shared by the error-conformance tests: the raw-client test context (`Ctx`, `ctx` fixture), the
`Case` record of the error table, scope constants and the scenario helpers the table uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
from pamqp import commands as C

from helpers.raw import RawConnection

CH = "channel"
CONN = "connection"

LOCKED = (
    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'q-{u}' in vhost '/'. "
    "It could be originally declared on another connection or the exclusive property value "
    "does not match that of the original declaration."
)


class Ctx:
    """What a scenario gets: an open raw connection with channel 1, a unique suffix, helpers."""

    def __init__(self, url: str, u: str):
        self.url = url
        self.u = u
        self.conns: list[RawConnection] = []
        self.conn = self.new_conn()
        self.conn.open_channel(1)
        self.queues: list[str] = []
        self.exchanges: list[str] = []

    def new_conn(self) -> RawConnection:
        conn = RawConnection.connect(self.url)
        self.conns.append(conn)
        return conn

    def ok(self, method, channel: int = 1, conn: RawConnection | None = None):
        """A synchronous method that must succeed; returns its *-Ok reply."""
        conn = conn or self.conn
        reply = conn.rpc(method, channel)
        assert reply.name.endswith("Ok"), (
            f"setup {method.name} failed: {reply.name} "
            f"{getattr(reply, 'reply_code', '')} {getattr(reply, 'reply_text', '')}"
        )
        return reply

    def queue(self, name: str, **kw) -> str:
        """Declare a queue (and remember to delete it)."""
        self.ok(C.Queue.Declare(queue=name, **kw))
        self.queues.append(name)
        return name

    def exchange(self, name: str, type_: str = "direct", **kw) -> str:
        self.ok(C.Exchange.Declare(exchange=name, exchange_type=type_, **kw))
        self.exchanges.append(name)
        return name

    def send(self, method, channel: int = 1, conn: RawConnection | None = None) -> None:
        (conn or self.conn).send_frame(method, channel)

    def cleanup(self) -> None:
        for conn in self.conns:
            conn.close()
        if not (self.queues or self.exchanges):
            return
        with RawConnection.connect(self.url) as conn:
            conn.open_channel(1)
            for q in self.queues:
                conn.rpc(C.Queue.Delete(queue=q), 1)
            for x in self.exchanges:
                conn.rpc(C.Exchange.Delete(exchange=x), 1)
            conn.close_connection()


@pytest.fixture
def ctx(amqp_url, uid):
    c = Ctx(amqp_url, uid)
    yield c
    c.cleanup()


@dataclass
class Case:
    id: str
    run: Callable[[Ctx], "tuple[RawConnection, int] | None"]
    scope: str
    code: int
    text: str
    class_id: int
    method_id: int


# --------------------------------------------------------------------------- scenario helpers
def scenario_get_one(c: Ctx, q: str, channel: int = 1) -> int:
    """basic.get one message (ack mode) and swallow its content frames; returns delivery tag."""
    c.send(C.Basic.Get(queue=q), channel)
    ok = c.conn.expect(C.Basic.GetOk, channel)
    c.conn.recv_frame()  # header
    c.conn.recv_frame()  # body
    return ok.delivery_tag


def redeclare_queue(first: dict, second: dict):
    def run(c: Ctx):
        q = c.queue(f"q-{c.u}", **first)
        c.send(C.Queue.Declare(queue=q, **second))

    return run


def redeclare_exchange(first: dict, second: dict, name: str | None = None):
    def run(c: Ctx):
        f = {"exchange_type": "direct", **first}
        s = {"exchange_type": "direct", **second}
        x = f"x-{c.u}"
        c.ok(C.Exchange.Declare(exchange=x, **f))
        c.exchanges.append(x)
        c.send(C.Exchange.Declare(exchange=x, **s))

    return run


def from_other_connection(method_factory):
    """Declare exclusive queue q-{u} on ctx.conn; send the method from another connection."""

    def run(c: Ctx):
        c.queue(f"q-{c.u}", exclusive=True)
        other = c.new_conn()
        other.open_channel(1)
        other.send_frame(method_factory(c), 1)
        return other, 1

    return run


def bad_queue_arg(args: dict):
    def run(c: Ctx):
        c.queues.append(f"q-{c.u}")  # in case it gets created after all
        c.send(C.Queue.Declare(queue=f"q-{c.u}", arguments=args))

    return run


def scenario_publish(c: Ctx, **kw):
    body = kw.pop("body", b"x")
    c.conn.publish(1, body, **kw)


def ack_twice(c: Ctx):
    q = c.queue(f"q-{c.u}", auto_delete=True)
    c.conn.publish(1, b"m", routing_key=q)
    tag = scenario_get_one(c, q)
    c.send(C.Basic.Ack(delivery_tag=tag))
    c.send(C.Basic.Ack(delivery_tag=tag))


def ack_on_other_channel(c: Ctx):
    q = c.queue(f"q-{c.u}", auto_delete=True)
    c.conn.open_channel(2)
    c.conn.publish(1, b"m", routing_key=q)
    tag = scenario_get_one(c, q)
    c.send(C.Basic.Ack(delivery_tag=tag), 2)
    return c.conn, 2


def consume_then(c: Ctx, second: dict, first: dict | None = None):
    q = c.queue(f"q-{c.u}", auto_delete=True)
    c.ok(C.Basic.Consume(queue=q, consumer_tag=f"ct-{c.u}", **(first or {})))
    c.send(C.Basic.Consume(queue=q, **second))


def delete_in_use(c: Ctx):
    q = c.queue(f"q-{c.u}")
    c.ok(C.Basic.Consume(queue=q))
    c.send(C.Queue.Delete(queue=q, if_unused=True))


def delete_not_empty(c: Ctx):
    q = c.queue(f"q-{c.u}")
    c.conn.publish(1, b"m", routing_key=q)
    c.send(C.Queue.Delete(queue=q, if_empty=True))


def exchange_delete_in_use(c: Ctx):
    src = c.exchange(f"x-{c.u}")
    dst = c.exchange(f"x2-{c.u}")
    c.ok(C.Exchange.Bind(destination=dst, source=src, routing_key="k"))
    c.send(C.Exchange.Delete(exchange=src, if_unused=True))


def exchange_delete_in_use_by_queue(c: Ctx):
    x = c.exchange(f"x-{c.u}")
    q = c.queue(f"q-{c.u}", auto_delete=True)
    c.ok(C.Queue.Bind(queue=q, exchange=x, routing_key="k"))
    c.send(C.Exchange.Delete(exchange=x, if_unused=True))
