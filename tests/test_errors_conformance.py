"""Error conformance: reply code, exact reply text, class_id/method_id, and scope (channel.close
vs connection.close) for every protocol error a client can trigger — plus the cases that must
*not* be errors. Recorded against a real RabbitMQ 3.10 (AMQP_REFERENCE_URL set).

The tables drive a raw frame-level client (amqp_raw.py) so class_id/method_id are visible;
a smaller table repeats key cases through pika / aio-pika to check what real clients see.

In text templates `{u}` is the test's unique suffix. Every name is unique per test because the
reference server is shared.
"""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Callable

import pika
import pika.compat
import pika.exceptions
import pytest
from pamqp import commands as C

from amqp_raw import RawConnection

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:This command is deprecated:DeprecationWarning"),
]

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
def _get_one(c: Ctx, q: str, channel: int = 1) -> int:
    """basic.get one message (ack mode) and swallow its content frames; returns delivery tag."""
    c.send(C.Basic.Get(queue=q), channel)
    ok = c.conn.expect(C.Basic.GetOk, channel)
    c.conn.recv_frame()  # header
    c.conn.recv_frame()  # body
    return ok.delivery_tag


def _redeclare_queue(first: dict, second: dict):
    def run(c: Ctx):
        q = c.queue(f"q-{c.u}", **first)
        c.send(C.Queue.Declare(queue=q, **second))

    return run


def _redeclare_exchange(first: dict, second: dict, name: str | None = None):
    def run(c: Ctx):
        f = {"exchange_type": "direct", **first}
        s = {"exchange_type": "direct", **second}
        x = f"x-{c.u}"
        c.ok(C.Exchange.Declare(exchange=x, **f))
        c.exchanges.append(x)
        c.send(C.Exchange.Declare(exchange=x, **s))

    return run


def _from_other_connection(method_factory):
    """Declare exclusive queue q-{u} on ctx.conn; send the method from another connection."""

    def run(c: Ctx):
        c.queue(f"q-{c.u}", exclusive=True)
        other = c.new_conn()
        other.open_channel(1)
        other.send_frame(method_factory(c), 1)
        return other, 1

    return run


def _bad_queue_arg(args: dict):
    def run(c: Ctx):
        c.queues.append(f"q-{c.u}")  # in case it gets created after all
        c.send(C.Queue.Declare(queue=f"q-{c.u}", arguments=args))

    return run


def _publish(c: Ctx, **kw):
    body = kw.pop("body", b"x")
    c.conn.publish(1, body, **kw)


def _ack_twice(c: Ctx):
    q = c.queue(f"q-{c.u}", auto_delete=True)
    c.conn.publish(1, b"m", routing_key=q)
    tag = _get_one(c, q)
    c.send(C.Basic.Ack(delivery_tag=tag))
    c.send(C.Basic.Ack(delivery_tag=tag))


def _ack_on_other_channel(c: Ctx):
    q = c.queue(f"q-{c.u}", auto_delete=True)
    c.conn.open_channel(2)
    c.conn.publish(1, b"m", routing_key=q)
    tag = _get_one(c, q)
    c.send(C.Basic.Ack(delivery_tag=tag), 2)
    return c.conn, 2


def _consume_then(c: Ctx, second: dict, first: dict | None = None):
    q = c.queue(f"q-{c.u}", auto_delete=True)
    c.ok(C.Basic.Consume(queue=q, consumer_tag=f"ct-{c.u}", **(first or {})))
    c.send(C.Basic.Consume(queue=q, **second))


def _delete_in_use(c: Ctx):
    q = c.queue(f"q-{c.u}")
    c.ok(C.Basic.Consume(queue=q))
    c.send(C.Queue.Delete(queue=q, if_unused=True))


def _delete_not_empty(c: Ctx):
    q = c.queue(f"q-{c.u}")
    c.conn.publish(1, b"m", routing_key=q)
    c.send(C.Queue.Delete(queue=q, if_empty=True))


def _exchange_delete_in_use(c: Ctx):
    src = c.exchange(f"x-{c.u}")
    dst = c.exchange(f"x2-{c.u}")
    c.ok(C.Exchange.Bind(destination=dst, source=src, routing_key="k"))
    c.send(C.Exchange.Delete(exchange=src, if_unused=True))


def _exchange_delete_in_use_by_queue(c: Ctx):
    x = c.exchange(f"x-{c.u}")
    q = c.queue(f"q-{c.u}", auto_delete=True)
    c.ok(C.Queue.Bind(queue=q, exchange=x, routing_key="k"))
    c.send(C.Exchange.Delete(exchange=x, if_unused=True))


# --------------------------------------------------------------------------- the error table
CASES: list[Case] = [
    # ---- 404 NOT_FOUND
    Case("queue.declare passive missing",
         lambda c: c.send(C.Queue.Declare(queue=f"q-{c.u}", passive=True)),
         CH, 404, "NOT_FOUND - no queue 'q-{u}' in vhost '/'", 50, 10),
    Case("exchange.declare passive missing",
         lambda c: c.send(C.Exchange.Declare(exchange=f"x-{c.u}", passive=True)),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 40, 10),
    Case("queue.declare passive missing amq. name",
         lambda c: c.send(C.Queue.Declare(queue=f"amq.q-{c.u}", passive=True)),
         CH, 404, "NOT_FOUND - no queue 'amq.q-{u}' in vhost '/'", 50, 10),
    Case("exchange.declare passive missing amq. name",
         lambda c: c.send(C.Exchange.Declare(exchange=f"amq.x-{c.u}", passive=True)),
         CH, 404, "NOT_FOUND - no exchange 'amq.x-{u}' in vhost '/'", 40, 10),
    Case("exchange.declare passive amq.default",
         lambda c: c.send(C.Exchange.Declare(exchange="amq.default", passive=True)),
         CH, 404, "NOT_FOUND - no exchange 'amq.default' in vhost '/'", 40, 10),
    Case("queue.declare passive empty name",
         lambda c: c.send(C.Queue.Declare(queue="", passive=True)),
         CH, 404, "NOT_FOUND - no queue '' in vhost '/'", 50, 10),
    Case("queue.bind missing queue",
         lambda c: c.send(C.Queue.Bind(queue=f"q-{c.u}", exchange="amq.direct", routing_key="k")),
         CH, 404, "NOT_FOUND - no queue 'q-{u}' in vhost '/'", 50, 20),
    Case("queue.bind missing exchange",
         lambda c: (c.queue(f"q-{c.u}", auto_delete=True),
                    c.send(C.Queue.Bind(queue=f"q-{c.u}", exchange=f"x-{c.u}")))[-1],
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 50, 20),
    Case("queue.bind both missing reports the exchange",
         lambda c: c.send(C.Queue.Bind(queue=f"q-{c.u}", exchange=f"x-{c.u}")),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 50, 20),
    Case("basic.consume missing queue",
         lambda c: c.send(C.Basic.Consume(queue=f"q-{c.u}")),
         CH, 404, "NOT_FOUND - no queue 'q-{u}' in vhost '/'", 60, 20),
    Case("basic.get missing queue",
         lambda c: c.send(C.Basic.Get(queue=f"q-{c.u}")),
         CH, 404, "NOT_FOUND - no queue 'q-{u}' in vhost '/'", 60, 70),
    Case("queue.purge missing queue",
         lambda c: c.send(C.Queue.Purge(queue=f"q-{c.u}")),
         CH, 404, "NOT_FOUND - no queue 'q-{u}' in vhost '/'", 50, 30),
    Case("basic.publish missing exchange",
         lambda c: _publish(c, exchange=f"x-{c.u}", routing_key="k"),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 60, 40),
    Case("basic.publish mandatory missing exchange",
         lambda c: _publish(c, exchange=f"x-{c.u}", routing_key="k", mandatory=True),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 60, 40),
    Case("exchange.bind missing destination",
         lambda c: c.send(C.Exchange.Bind(destination=f"x-{c.u}", source="amq.direct",
                                          routing_key="k")),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 40, 30),
    Case("exchange.bind missing source",
         lambda c: c.send(C.Exchange.Bind(destination="amq.fanout", source=f"x-{c.u}",
                                          routing_key="k")),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 40, 30),
    Case("basic.get empty name without previous declare",
         lambda c: c.send(C.Basic.Get(queue="")),
         CH, 404, "NOT_FOUND - no previously declared queue", 60, 70),
    Case("basic.consume empty name without previous declare",
         lambda c: c.send(C.Basic.Consume(queue="")),
         CH, 404, "NOT_FOUND - no previously declared queue", 60, 20),
    Case("queue.bind empty name without previous declare",
         lambda c: c.send(C.Queue.Bind(queue="", exchange="amq.direct")),
         CH, 404, "NOT_FOUND - no previously declared queue", 50, 20),
    Case("queue.purge empty name without previous declare",
         lambda c: c.send(C.Queue.Purge(queue="")),
         CH, 404, "NOT_FOUND - no previously declared queue", 50, 30),
    Case("queue.delete empty name without previous declare",
         lambda c: c.send(C.Queue.Delete(queue="")),
         CH, 404, "NOT_FOUND - no previously declared queue", 50, 40),
    # ---- 405 RESOURCE_LOCKED: exclusive queue of another connection
    Case("405 exclusive redeclare from other connection",
         _from_other_connection(lambda c: C.Queue.Declare(queue=f"q-{c.u}", exclusive=True)),
         CH, 405, LOCKED, 50, 10),
    Case("405 plain redeclare from other connection",
         _from_other_connection(lambda c: C.Queue.Declare(queue=f"q-{c.u}")),
         CH, 405, LOCKED, 50, 10),
    Case("405 passive declare from other connection",
         _from_other_connection(lambda c: C.Queue.Declare(queue=f"q-{c.u}", passive=True)),
         CH, 405, LOCKED, 50, 10),
    Case("405 consume from other connection",
         _from_other_connection(lambda c: C.Basic.Consume(queue=f"q-{c.u}")),
         CH, 405, LOCKED, 60, 20),
    Case("405 get from other connection",
         _from_other_connection(lambda c: C.Basic.Get(queue=f"q-{c.u}")),
         CH, 405, LOCKED, 60, 70),
    Case("405 bind from other connection",
         _from_other_connection(lambda c: C.Queue.Bind(queue=f"q-{c.u}", exchange="amq.direct")),
         CH, 405, LOCKED, 50, 20),
    Case("405 purge from other connection",
         _from_other_connection(lambda c: C.Queue.Purge(queue=f"q-{c.u}")),
         CH, 405, LOCKED, 50, 30),
    Case("405 delete from other connection",
         _from_other_connection(lambda c: C.Queue.Delete(queue=f"q-{c.u}")),
         CH, 405, LOCKED, 50, 40),
    Case("405 exclusive flag mismatch exclusive->plain (same connection)",
         _redeclare_queue({"exclusive": True}, {"exclusive": False}),
         CH, 405, LOCKED, 50, 10),
    Case("405 exclusive flag mismatch plain->exclusive (same connection)",
         _redeclare_queue({"auto_delete": True}, {"auto_delete": True, "exclusive": True}),
         CH, 405, LOCKED, 50, 10),
    # ---- 406 inequivalent queue redeclare
    Case("queue durable false->true", _redeclare_queue({}, {"durable": True}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q-{u}' in vhost "
         "'/': received 'true' but current is 'false'", 50, 10),
    Case("queue durable true->false", _redeclare_queue({"durable": True}, {}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q-{u}' in vhost "
         "'/': received 'false' but current is 'true'", 50, 10),
    Case("queue auto_delete true->false",
         _redeclare_queue({"auto_delete": True}, {"auto_delete": False}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q-{u}' in vhost "
         "'/': received 'false' but current is 'true'", 50, 10),
    Case("queue auto_delete false->true", _redeclare_queue({}, {"auto_delete": True}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q-{u}' in vhost "
         "'/': received 'true' but current is 'false'", 50, 10),
    # pamqp encodes 1000 as a 16-bit 's' field: the broker must keep and report the wire type
    Case("queue x-message-ttl missing on redeclare",
         _redeclare_queue({"arguments": {"x-message-ttl": 1000}}, {}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q-{u}' in "
         "vhost '/': received none but current is the value '1000' of type 'short'", 50, 10),
    Case("queue x-message-ttl added on redeclare",
         _redeclare_queue({}, {"arguments": {"x-message-ttl": 1000}}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q-{u}' in "
         "vhost '/': received the value '1000' of type 'short' but current is none", 50, 10),
    Case("queue x-message-ttl different value",
         _redeclare_queue({"arguments": {"x-message-ttl": 1000}},
                          {"arguments": {"x-message-ttl": 2000}}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q-{u}' in "
         "vhost '/': received '2000' but current is '1000'", 50, 10),
    Case("queue x-max-priority missing (byte type)",
         _redeclare_queue({"arguments": {"x-max-priority": 5}}, {}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'q-{u}' in "
         "vhost '/': received none but current is the value '5' of type 'byte'", 50, 10),
    Case("queue x-dead-letter-exchange different",
         _redeclare_queue({"arguments": {"x-dead-letter-exchange": "a"}},
                          {"arguments": {"x-dead-letter-exchange": "b"}}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue "
         "'q-{u}' in vhost '/': received 'b' but current is 'a'", 50, 10),
    Case("queue x-dead-letter-exchange missing",
         _redeclare_queue({"arguments": {"x-dead-letter-exchange": "a"}}, {}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue "
         "'q-{u}' in vhost '/': received none but current is the value 'a' of type 'longstr'",
         50, 10),
    Case("queue x-max-length int vs string",
         _redeclare_queue({"arguments": {"x-max-length": 10}},
                          {"arguments": {"x-max-length": "10"}}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q-{u}' in "
         "vhost '/': received '10' but current is '10'", 50, 10),
    # ---- 406 inequivalent exchange redeclare
    Case("exchange type", _redeclare_exchange({}, {"exchange_type": "topic"}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x-{u}' in vhost "
         "'/': received 'topic' but current is 'direct'", 40, 10),
    Case("exchange durable", _redeclare_exchange({}, {"durable": True}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x-{u}' in vhost "
         "'/': received 'true' but current is 'false'", 40, 10),
    Case("exchange auto_delete", _redeclare_exchange({}, {"auto_delete": True}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange 'x-{u}' in "
         "vhost '/': received 'true' but current is 'false'", 40, 10),
    Case("exchange internal", _redeclare_exchange({}, {"internal": True}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'internal' for exchange 'x-{u}' in "
         "vhost '/': received 'true' but current is 'false'", 40, 10),
    Case("exchange alternate-exchange different",
         _redeclare_exchange({"arguments": {"alternate-exchange": "a"}},
                             {"arguments": {"alternate-exchange": "b"}}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange "
         "'x-{u}' in vhost '/': received 'b' but current is 'a'", 40, 10),
    Case("exchange alternate-exchange missing",
         _redeclare_exchange({"arguments": {"alternate-exchange": "a"}}, {}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange "
         "'x-{u}' in vhost '/': received none but current is the value 'a' of type 'longstr'",
         40, 10),
    Case("amq.direct redeclared as fanout",
         lambda c: c.send(C.Exchange.Declare(exchange="amq.direct", exchange_type="fanout",
                                             durable=True)),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.direct' in "
         "vhost '/': received 'fanout' but current is 'direct'", 40, 10),
    # ---- 406 delivery tags
    Case("ack unknown tag", lambda c: c.send(C.Basic.Ack(delivery_tag=100)),
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 100", 60, 80),
    Case("ack tag 0 single", lambda c: c.send(C.Basic.Ack(delivery_tag=0, multiple=False)),
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 0", 60, 80),
    Case("ack unknown tag multiple", lambda c: c.send(C.Basic.Ack(delivery_tag=5, multiple=True)),
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 5", 60, 80),
    Case("nack unknown tag", lambda c: c.send(C.Basic.Nack(delivery_tag=7)),
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 7", 60, 120),
    Case("reject unknown tag", lambda c: c.send(C.Basic.Reject(delivery_tag=8)),
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 8", 60, 90),
    Case("ack twice", _ack_twice,
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 1", 60, 80),
    Case("ack another channel's tag", _ack_on_other_channel,
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 1", 60, 80),
    # ---- 406 in use / not empty
    Case("queue.delete if_unused with consumer", _delete_in_use,
         CH, 406, "PRECONDITION_FAILED - queue 'q-{u}' in vhost '/' in use", 50, 40),
    Case("queue.delete if_empty with message", _delete_not_empty,
         CH, 406, "PRECONDITION_FAILED - queue 'q-{u}' in vhost '/' not empty", 50, 40),
    Case("exchange.delete if_unused with e2e binding", _exchange_delete_in_use,
         CH, 406, "PRECONDITION_FAILED - exchange 'x-{u}' in vhost '/' in use", 40, 20),
    Case("exchange.delete if_unused with queue binding", _exchange_delete_in_use_by_queue,
         CH, 406, "PRECONDITION_FAILED - exchange 'x-{u}' in vhost '/' in use", 40, 20),
    # ---- 406 tx / confirm
    Case("tx.commit without tx.select", lambda c: c.send(C.Tx.Commit()),
         CH, 406, "PRECONDITION_FAILED - channel is not transactional", 90, 20),
    Case("tx.rollback without tx.select", lambda c: c.send(C.Tx.Rollback()),
         CH, 406, "PRECONDITION_FAILED - channel is not transactional", 90, 30),
    Case("confirm.select after tx.select",
         lambda c: (c.ok(C.Tx.Select()), c.send(C.Confirm.Select()))[-1],
         CH, 406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode", 85, 10),
    Case("tx.select after confirm.select",
         lambda c: (c.ok(C.Confirm.Select()), c.send(C.Tx.Select()))[-1],
         CH, 406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode", 90, 10),
    # ---- 406 argument validation
    Case("x-message-ttl negative", _bad_queue_arg({"x-message-ttl": -1}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q-{u}' in vhost "
         "'/': {value_negative,-1}", 50, 10),
    Case("x-message-ttl string", _bad_queue_arg({"x-message-ttl": "abc"}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q-{u}' in vhost "
         "'/': \"expected integer, got longstr\"", 50, 10),
    Case("x-expires zero", _bad_queue_arg({"x-expires": 0}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q-{u}' in vhost "
         "'/': {value_zero,0}", 50, 10),
    Case("x-overflow invalid", _bad_queue_arg({"x-overflow": "foo"}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'q-{u}' in vhost "
         "'/': invalid_overflow", 50, 10),
    Case("x-dead-letter-routing-key without dlx",
         _bad_queue_arg({"x-dead-letter-routing-key": "k"}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue "
         "'q-{u}' in vhost '/': routing_key_but_no_dlx_defined", 50, 10),
    Case("x-max-length negative", _bad_queue_arg({"x-max-length": -1}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q-{u}' in vhost "
         "'/': {value_negative,-1}", 50, 10),
    Case("x-max-priority too large", _bad_queue_arg({"x-max-priority": 256}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q-{u}' in vhost "
         "'/': {max_value_exceeded,256}", 50, 10),
    Case("x-queue-type unknown", _bad_queue_arg({"x-queue-type": "foo"}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q-{u}' in vhost "
         "'/': \"unsupported queue type 'foo'\"", 50, 10),
    Case("x-single-active-consumer not a bool", _bad_queue_arg({"x-single-active-consumer": 1}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue "
         "'q-{u}' in vhost '/': {unacceptable_type,byte}", 50, 10),
    Case("publish with non-integer expiration",
         lambda c: _publish(c, routing_key="k", properties=C.Basic.Properties(expiration="abc")),
         CH, 406, "PRECONDITION_FAILED - invalid expiration 'abc': no_integer", 60, 40),
    Case("publish with negative expiration",
         lambda c: _publish(c, routing_key="k", properties=C.Basic.Properties(expiration="-5")),
         CH, 406, "PRECONDITION_FAILED - invalid expiration '-5': {value_negative,-5}", 60, 40),
    Case("headers bind with invalid x-match",
         lambda c: (c.exchange(f"x-{c.u}", "headers"), c.queue(f"q-{c.u}", auto_delete=True),
                    c.send(C.Queue.Bind(queue=f"q-{c.u}", exchange=f"x-{c.u}",
                                        arguments={"x-match": "foo"})))[-1],
         CH, 406, "PRECONDITION_FAILED - Invalid x-match field value <<\"foo\">>; expected all, "
         "any, all-with-x, or any-with-x", 50, 20),
    # ---- 406 direct reply-to
    Case("reply-to consume with acks",
         lambda c: c.send(C.Basic.Consume(queue="amq.rabbitmq.reply-to", no_ack=False)),
         CH, 406, "PRECONDITION_FAILED - reply consumer cannot acknowledge", 60, 20),
    Case("reply-to second consumer",
         lambda c: (c.ok(C.Basic.Consume(queue="amq.rabbitmq.reply-to", no_ack=True)),
                    c.send(C.Basic.Consume(queue="amq.rabbitmq.reply-to", no_ack=True)))[-1],
         CH, 406, "PRECONDITION_FAILED - reply consumer already set", 60, 20),
    Case("reply-to publish without reply consumer",
         lambda c: _publish(c, routing_key="k",
                            properties=C.Basic.Properties(reply_to="amq.rabbitmq.reply-to")),
         CH, 406, "PRECONDITION_FAILED - fast reply consumer does not exist", 60, 40),
    # ---- 403 ACCESS_REFUSED
    Case("queue.declare reserved amq. prefix",
         lambda c: c.send(C.Queue.Declare(queue=f"amq.q-{c.u}")),
         CH, 403, "ACCESS_REFUSED - queue name 'amq.q-{u}' contains reserved prefix 'amq.*'",
         50, 10),
    Case("exchange.declare reserved amq. prefix",
         lambda c: c.send(C.Exchange.Declare(exchange=f"amq.x-{c.u}", exchange_type="direct")),
         CH, 403, "ACCESS_REFUSED - exchange name 'amq.x-{u}' contains reserved prefix 'amq.*'",
         40, 10),
    Case("exchange.declare default exchange",
         lambda c: c.send(C.Exchange.Declare(exchange="", exchange_type="direct", durable=True)),
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 10),
    Case("exchange.declare passive default exchange",
         lambda c: c.send(C.Exchange.Declare(exchange="", passive=True)),
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 10),
    Case("exchange.delete default exchange",
         lambda c: c.send(C.Exchange.Delete(exchange="")),
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 20),
    Case("exchange.delete amq.direct",
         lambda c: c.send(C.Exchange.Delete(exchange="amq.direct")),
         CH, 403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not "
         "allowed", 40, 20),
    Case("exchange.delete amq.default",
         lambda c: c.send(C.Exchange.Delete(exchange="amq.default")),
         CH, 403, "ACCESS_REFUSED - deletion of system exchange 'amq.default' in vhost '/' not "
         "allowed", 40, 20),
    Case("queue.bind to default exchange",
         lambda c: (c.queue(f"q-{c.u}", auto_delete=True),
                    c.send(C.Queue.Bind(queue=f"q-{c.u}", exchange="", routing_key="k")))[-1],
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 50, 20),
    Case("queue.unbind from default exchange",
         lambda c: (c.queue(f"q-{c.u}", auto_delete=True),
                    c.send(C.Queue.Unbind(queue=f"q-{c.u}", exchange="",
                                          routing_key=f"q-{c.u}")))[-1],
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 50, 50),
    Case("exchange.bind with default exchange as source",
         lambda c: c.send(C.Exchange.Bind(destination="amq.fanout", source="", routing_key="k")),
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 30),
    Case("exchange.bind with default exchange as destination",
         lambda c: c.send(C.Exchange.Bind(destination="", source="amq.direct", routing_key="k")),
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 30),
    Case("publish to internal exchange",
         lambda c: (c.exchange(f"x-{c.u}", "fanout", internal=True),
                    _publish(c, exchange=f"x-{c.u}"))[-1],
         CH, 403, "ACCESS_REFUSED - cannot publish to internal exchange 'x-{u}' in vhost '/'",
         60, 40),
    Case("exclusive consume on queue with consumers",
         lambda c: _consume_then(c, {"exclusive": True}),
         CH, 403, "ACCESS_REFUSED - queue 'q-{u}' in vhost '/' in exclusive use", 60, 20),
    Case("consume on queue with exclusive consumer",
         lambda c: _consume_then(c, {}, first={"exclusive": True}),
         CH, 403, "ACCESS_REFUSED - queue 'q-{u}' in vhost '/' in exclusive use", 60, 20),
    # ---- hard errors: connection.close
    Case("consumer tag reuse",
         lambda c: _consume_then(c, {"consumer_tag": f"ct-{c.u}"}),
         CONN, 530, "NOT_ALLOWED - attempt to reuse consumer tag 'ct-{u}'", 60, 20),
    Case("publish immediate=true",
         lambda c: _publish(c, routing_key="k", immediate=True),
         CONN, 540, "NOT_IMPLEMENTED - immediate=true", 60, 40),
    Case("basic.qos prefetch_size != 0",
         lambda c: c.send(C.Basic.Qos(prefetch_size=10)),
         CONN, 540, "NOT_IMPLEMENTED - prefetch_size!=0 (10)", 60, 10),
    Case("basic.recover requeue=false",
         lambda c: c.send(C.Basic.Recover(requeue=False)),
         CONN, 540, "NOT_IMPLEMENTED - requeue=false", 60, 110),
    Case("basic.recover-async requeue=false",
         lambda c: c.send(C.Basic.RecoverAsync(requeue=False)),
         CONN, 540, "NOT_IMPLEMENTED - requeue=false", 60, 100),
    Case("channel.flow active=false",
         lambda c: c.send(C.Channel.Flow(active=False)),
         CONN, 540, "NOT_IMPLEMENTED - active=false", 20, 20),
    # RabbitMQ says "unknown exchange type" for a name that is not an Erlang atom; for names that
    # happen to be existing atoms ('foo', 'queue', 'error', ...) it says "invalid exchange type".
    # Only the general case is pinned here.
    Case("exchange.declare unknown type",
         lambda c: c.send(C.Exchange.Declare(exchange=f"x-{c.u}", exchange_type=f"no-type-{c.u}")),
         CONN, 503, "COMMAND_INVALID - unknown exchange type 'no-type-{u}'", 40, 10),
    Case("exchange.declare unknown type, plugin name not installed",
         lambda c: c.send(C.Exchange.Declare(exchange=f"x-{c.u}",
                                             exchange_type="x-consistent-hash")),
         CONN, 503, "COMMAND_INVALID - unknown exchange type 'x-consistent-hash'", 40, 10),
    Case("exchange.declare type is case-sensitive",
         lambda c: c.send(C.Exchange.Declare(exchange=f"x-{c.u}", exchange_type="DIRECT")),
         CONN, 503, "COMMAND_INVALID - unknown exchange type 'DIRECT'", 40, 10),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_error(ctx, case: Case):
    where = case.run(ctx)
    conn, channel = where if where else (ctx.conn, 1)
    if case.scope == CH:
        code, text, class_id, method_id = conn.expect_channel_close(channel)
    else:
        code, text, class_id, method_id = conn.expect_close()
    assert (code, text, class_id, method_id) == (
        case.code, case.text.replace("{u}", ctx.u), case.class_id, case.method_id
    )
    if case.scope == CH:
        # only the channel died: the connection (and a fresh channel) still work
        conn.open_channel(channel + 100)
        conn.rpc(C.Queue.Declare(queue="", exclusive=True), channel + 100, C.Queue.DeclareOk)
    else:
        assert conn.wait_closed(5), "server must close the socket after connection.close-ok"


# --------------------------------------------------------------------------- no-error cases
def _no_error(c: Ctx, method, reply_cls, **fields):
    reply = c.conn.rpc(method, 1)
    assert isinstance(reply, reply_cls), (
        f"{reply.name} {getattr(reply, 'reply_code', '')} {getattr(reply, 'reply_text', '')}"
    )
    for k, v in fields.items():
        assert getattr(reply, k) == v, (k, getattr(reply, k), v)
    return reply


def test_delete_missing_queue_is_ok(ctx):
    _no_error(ctx, C.Queue.Delete(queue=f"q-{ctx.u}"), C.Queue.DeleteOk, message_count=0)


def test_delete_missing_queue_with_if_flags_is_ok(ctx):
    _no_error(ctx, C.Queue.Delete(queue=f"q-{ctx.u}", if_unused=True, if_empty=True),
              C.Queue.DeleteOk, message_count=0)


def test_delete_missing_exchange_is_ok(ctx):
    _no_error(ctx, C.Exchange.Delete(exchange=f"x-{ctx.u}"), C.Exchange.DeleteOk)


def test_unbind_missing_binding_is_ok(ctx):
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    _no_error(ctx, C.Queue.Unbind(queue=q, exchange="amq.direct", routing_key="nokey"),
              C.Queue.UnbindOk)


def test_unbind_missing_queue_is_ok(ctx):
    _no_error(ctx, C.Queue.Unbind(queue=f"q-{ctx.u}", exchange="amq.direct", routing_key="k"),
              C.Queue.UnbindOk)


def test_unbind_missing_exchange_is_ok(ctx):
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    _no_error(ctx, C.Queue.Unbind(queue=q, exchange=f"x-{ctx.u}", routing_key="k"),
              C.Queue.UnbindOk)


def test_exchange_unbind_missing_is_ok(ctx):
    _no_error(ctx, C.Exchange.Unbind(destination=f"x-{ctx.u}", source="amq.direct",
                                     routing_key="k"), C.Exchange.UnbindOk)
    _no_error(ctx, C.Exchange.Unbind(destination="amq.fanout", source="amq.direct",
                                     routing_key=f"nokey-{ctx.u}"), C.Exchange.UnbindOk)


def test_cancel_unknown_consumer_tag_is_ok(ctx):
    _no_error(ctx, C.Basic.Cancel(consumer_tag=f"nope-{ctx.u}"), C.Basic.CancelOk,
              consumer_tag=f"nope-{ctx.u}")


def test_ack_multiple_tag_zero_with_nothing_outstanding_is_ok(ctx):
    ctx.send(C.Basic.Ack(delivery_tag=0, multiple=True))
    _no_error(ctx, C.Queue.Declare(queue="", exclusive=True), C.Queue.DeclareOk)


def test_ack_multiple_tag_zero_acks_everything(ctx):
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    for i in range(3):
        ctx.conn.publish(1, b"m%d" % i, routing_key=q)
    tags = [_get_one(ctx, q) for _ in range(3)]
    assert tags == [1, 2, 3]
    ctx.send(C.Basic.Ack(delivery_tag=0, multiple=True))
    ok = _no_error(ctx, C.Queue.Declare(queue=q, passive=True), C.Queue.DeclareOk)
    assert ok.message_count == 0
    # all three are gone: acking one of them again is an unknown tag
    ctx.send(C.Basic.Ack(delivery_tag=2))
    assert ctx.conn.expect_channel_close(1)[:2] == (
        406, "PRECONDITION_FAILED - unknown delivery tag 2"
    )


def test_recover_requeue_true_is_ok(ctx):
    _no_error(ctx, C.Basic.Recover(requeue=True), C.Basic.RecoverOk)


def test_redeclare_amq_direct_with_same_properties_is_ok(ctx):
    _no_error(ctx, C.Exchange.Declare(exchange="amq.direct", exchange_type="direct",
                                      durable=True), C.Exchange.DeclareOk)
    _no_error(ctx, C.Exchange.Declare(exchange="amq.direct", passive=True), C.Exchange.DeclareOk)


def test_passive_declare_ignores_other_fields(ctx):
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    _no_error(ctx, C.Queue.Declare(queue=q, passive=True, durable=True, exclusive=False,
                                   auto_delete=False, arguments={"x-message-ttl": 5}),
              C.Queue.DeclareOk, queue=q)
    x = ctx.exchange(f"x-{ctx.u}", "direct")
    _no_error(ctx, C.Exchange.Declare(exchange=x, passive=True, exchange_type="foo",
                                      durable=True), C.Exchange.DeclareOk)


def test_redeclare_with_uncompared_arguments_is_ok(ctx):
    q = ctx.queue(f"q-{ctx.u}", arguments={"x-foo": "a", "x-max-length": 10})
    _no_error(ctx, C.Queue.Declare(queue=q, arguments={"x-foo": "b", "x-max-length": 10,
                                                       "x-bar": 1}), C.Queue.DeclareOk)
    x = ctx.exchange(f"x-{ctx.u}", arguments={"x-foo": "a"})
    _no_error(ctx, C.Exchange.Declare(exchange=x, exchange_type="direct",
                                      arguments={"x-foo": "b"}), C.Exchange.DeclareOk)


def test_exchange_delete_if_unused_counts_only_source_bindings(ctx):
    src = ctx.exchange(f"x-{ctx.u}")
    dst = ctx.exchange(f"x2-{ctx.u}")
    ctx.ok(C.Exchange.Bind(destination=dst, source=src, routing_key="k"))
    _no_error(ctx, C.Exchange.Delete(exchange=dst, if_unused=True), C.Exchange.DeleteOk)


def test_unbind_on_other_connections_exclusive_queue_is_ok(ctx):
    q = ctx.queue(f"q-{ctx.u}", exclusive=True)
    other = ctx.new_conn()
    other.open_channel(1)
    reply = other.rpc(C.Queue.Unbind(queue=q, exchange="amq.direct", routing_key="k"), 1)
    assert isinstance(reply, C.Queue.UnbindOk), reply.name


def test_passive_declare_with_unknown_type_on_existing_exchange_is_ok(ctx):
    _no_error(ctx, C.Exchange.Declare(exchange="amq.direct", exchange_type=f"no-type-{ctx.u}",
                                      passive=True),
              C.Exchange.DeclareOk)


def test_x_max_priority_zero_is_accepted(ctx):
    q = f"q-{ctx.u}"
    ctx.queues.append(q)
    _no_error(ctx, C.Queue.Declare(queue=q, arguments={"x-max-priority": 0}), C.Queue.DeclareOk)


def test_reply_to_pseudo_queue_declare(ctx):
    _no_error(ctx, C.Queue.Declare(queue="amq.rabbitmq.reply-to", passive=True),
              C.Queue.DeclareOk, queue="amq.rabbitmq.reply-to", message_count=0,
              consumer_count=1)


def test_mandatory_unroutable_gets_return_312(ctx):
    ctx.conn.publish(1, b"lost", exchange="amq.direct", routing_key=f"nokey-{ctx.u}",
                     mandatory=True)
    ret = ctx.conn.expect(C.Basic.Return, 1)
    assert (ret.reply_code, ret.reply_text) == (312, "NO_ROUTE")
    assert (ret.exchange, ret.routing_key) == ("amq.direct", f"nokey-{ctx.u}")
    _ch, hdr = ctx.conn.recv_frame()
    assert hdr.body_size == 4
    _ch, body = ctx.conn.recv_frame()
    assert body.value == b"lost"


def test_mandatory_to_default_exchange_missing_queue_gets_return(ctx):
    ctx.conn.publish(1, b"x", exchange="", routing_key=f"q-{ctx.u}", mandatory=True)
    ret = ctx.conn.expect(C.Basic.Return, 1)
    assert (ret.reply_code, ret.reply_text, ret.exchange, ret.routing_key) == (
        312, "NO_ROUTE", "", f"q-{ctx.u}"
    )


def test_publish_to_missing_queue_via_default_exchange_is_silent(ctx):
    ctx.conn.publish(1, b"x", exchange="", routing_key=f"q-{ctx.u}")
    with pytest.raises((socket.timeout, TimeoutError)):
        ctx.conn.recv_method(timeout=0.5)
    _no_error(ctx, C.Queue.Declare(queue="", exclusive=True), C.Queue.DeclareOk)


# --------------------------------------------------------------------------- real clients
def _pika_conn(amqp_url) -> pika.BlockingConnection:
    params = pika.URLParameters(amqp_url)
    params.socket_timeout = 5
    return pika.BlockingConnection(params)


@pytest.fixture
def pika_conn(amqp_url):
    conn = _pika_conn(amqp_url)
    yield conn
    if conn.is_open:
        conn.close()


@pytest.fixture
def pika_cleanup(amqp_url):
    names: dict[str, list[str]] = {"queues": [], "exchanges": []}
    yield names
    if names["queues"] or names["exchanges"]:
        conn = _pika_conn(amqp_url)
        ch = conn.channel()
        for q in names["queues"]:
            ch.queue_delete(q)
        for x in names["exchanges"]:
            ch.exchange_delete(x)
        conn.close()


def test_pika_passive_declare_missing_queue(pika_conn, uid):
    ch = pika_conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(f"q-{uid}", passive=True)
    assert info.value.reply_code == 404
    assert info.value.reply_text == f"NOT_FOUND - no queue 'q-{uid}' in vhost '/'"
    assert pika_conn.is_open


def test_pika_publish_to_missing_exchange(pika_conn, uid):
    ch = pika_conn.channel()
    ch.basic_publish(f"x-{uid}", "k", b"x")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare("", exclusive=True)  # the close arrives while waiting for this
    assert info.value.reply_code == 404
    assert info.value.reply_text == f"NOT_FOUND - no exchange 'x-{uid}' in vhost '/'"


def test_pika_typed_argument_equivalence(pika_conn, pika_cleanup, uid):
    """Integer arguments are compared by type class: signedint 1000 == long 1000."""
    q = f"q-{uid}"
    pika_cleanup["queues"].append(q)
    ch = pika_conn.channel()
    ch.queue_declare(q, arguments={"x-message-ttl": pika.compat.long(1000)})  # 'l' long
    ch.queue_declare(q, arguments={"x-message-ttl": 1000})  # 'I' signedint: equivalent
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(q, arguments={"x-message-ttl": 2000})
    assert info.value.reply_code == 406
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '{q}' in vhost '/': "
        "received '2000' but current is '1000'"
    )
    ch = pika_conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(q)
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '{q}' in vhost '/': "
        "received none but current is the value '1000' of type 'long'"
    )
    ch = pika_conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(q, arguments={"x-message-ttl": 1000, "x-max-length": 7})
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{q}' in vhost '/': "
        "received the value '7' of type 'signedint' but current is none"
    )


def test_pika_bool_vs_int_argument(pika_conn, pika_cleanup, uid):
    q = f"q-{uid}"
    pika_cleanup["queues"].append(q)
    ch = pika_conn.channel()
    ch.queue_declare(q, arguments={"x-single-active-consumer": True})
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(q, arguments={"x-single-active-consumer": 1})
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for queue '{q}' in "
        "vhost '/': received '1' but current is 'true'"
    )


def test_pika_sac_signedint_rejected(pika_conn, uid):
    ch = pika_conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(f"q-{uid}", arguments={"x-single-active-consumer": 1})
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue 'q-{uid}' in "
        "vhost '/': {unacceptable_type,signedint}"
    )


def test_consumer_tag_is_per_channel(ctx):
    """The same consumer tag on two different channels is not a reuse."""
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    ctx.ok(C.Basic.Consume(queue=q, consumer_tag=f"ct-{ctx.u}"))
    ctx.conn.open_channel(2)
    ok = ctx.ok(C.Basic.Consume(queue=q, consumer_tag=f"ct-{ctx.u}"), 2)
    assert ok.consumer_tag == f"ct-{ctx.u}"


def test_consumer_tag_reusable_after_cancel(ctx):
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    ctx.ok(C.Queue.Declare(queue=f"q2-{ctx.u}", auto_delete=True))
    ctx.queues.append(f"q2-{ctx.u}")
    ctx.ok(C.Basic.Consume(queue=f"q2-{ctx.u}", consumer_tag="keep"))  # keeps q2 alive
    ctx.ok(C.Basic.Consume(queue=q, consumer_tag=f"ct-{ctx.u}"))
    ctx.ok(C.Basic.Cancel(consumer_tag=f"ct-{ctx.u}"))
    ctx.queues.remove(q)  # auto-deleted by the cancel
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    ok = ctx.ok(C.Basic.Consume(queue=q, consumer_tag=f"ct-{ctx.u}"))
    assert ok.consumer_tag == f"ct-{ctx.u}"


def test_pika_qos_prefetch_size_closes_connection(pika_conn):
    ch = pika_conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        ch.basic_qos(prefetch_size=10)
    assert (info.value.reply_code, info.value.reply_text) == (
        540, "NOT_IMPLEMENTED - prefetch_size!=0 (10)"
    )


def test_pika_unknown_exchange_type_closes_connection(pika_conn, uid):
    ch = pika_conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        ch.exchange_declare(f"x-{uid}", exchange_type=f"no-type-{uid}")
    assert (info.value.reply_code, info.value.reply_text) == (
        503, f"COMMAND_INVALID - unknown exchange type 'no-type-{uid}'"
    )


def test_pika_reserved_queue_name(pika_conn, uid):
    ch = pika_conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(f"amq.q-{uid}")
    assert (info.value.reply_code, info.value.reply_text) == (
        403, f"ACCESS_REFUSED - queue name 'amq.q-{uid}' contains reserved prefix 'amq.*'"
    )


def test_pika_exclusive_queue_other_connection(amqp_url, pika_conn, uid):
    ch = pika_conn.channel()
    q = f"q-{uid}"
    ch.queue_declare(q, exclusive=True)
    other = _pika_conn(amqp_url)
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            other.channel().basic_consume(q, lambda *a: None)
        assert info.value.reply_code == 405
        assert info.value.reply_text == LOCKED.replace("{u}", uid)
    finally:
        other.close()


def test_pika_double_ack(pika_conn, uid):
    ch = pika_conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x")
    method = None
    for _ in range(100):
        method, _p, _b = ch.basic_get(q)
        if method:
            break
        pika_conn.sleep(0.01)
    ch.basic_ack(method.delivery_tag)
    ch.basic_ack(method.delivery_tag)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare("", exclusive=True)
    assert (info.value.reply_code, info.value.reply_text) == (
        406, f"PRECONDITION_FAILED - unknown delivery tag {method.delivery_tag}"
    )


async def test_aio_pika_not_found_maps_to_channel_not_found_entity(amqp_url, uid):
    import aio_pika
    import aiormq.exceptions

    conn = await asyncio.wait_for(aio_pika.connect(amqp_url), 10)
    try:
        ch = await conn.channel()
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity) as info:
            await ch.declare_queue(f"q-{uid}", passive=True)
        assert f"NOT_FOUND - no queue 'q-{uid}' in vhost '/'" in str(info.value)
        ch2 = await conn.channel()
        await ch2.declare_queue("", exclusive=True)
    finally:
        await conn.close()


async def test_aio_pika_precondition_failed(amqp_url, uid):
    import aio_pika
    import aiormq.exceptions

    conn = await asyncio.wait_for(aio_pika.connect(amqp_url), 10)
    try:
        ch = await conn.channel()
        q = await ch.declare_queue(f"q-{uid}", auto_delete=True)
        ch2 = await conn.channel()
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as info:
            await ch2.declare_queue(f"q-{uid}", durable=True)
        assert "inequivalent arg 'durable'" in str(info.value)
        await q.delete()
    finally:
        await conn.close()
