"""RPC: RabbitMQ's direct reply-to (amq.rabbitmq.reply-to) and classic RPC over an exclusive,
server-named reply queue. Checked against RabbitMQ (AMQP_REFERENCE_URL)."""
from __future__ import annotations

import asyncio
import time
import uuid

import aio_pika
import aio_pika.patterns
import pika
import pika.exceptions
import pytest

from helpers.pika_client import connection, poll_get, pump, settle
from helpers.wait import HANG_GUARD

pytestmark = pytest.mark.timeout(60)

REPLY_TO = "amq.rabbitmq.reply-to"


@pytest.fixture
def client(amqp_url):
    with connection(amqp_url) as c:
        yield c


@pytest.fixture
def server(amqp_url):
    with connection(amqp_url) as c:
        yield c


@pytest.fixture
def request_queue(server, uid):
    ch = server.channel()
    name = f"test-rpc-requests-{uid}"
    ch.queue_declare(name)
    yield name
    try:
        if server.is_open:
            server.channel().queue_delete(name)
        else:
            raise RuntimeError
    except Exception:
        pass


# --------------------------------------------------------------------------------------------
# direct reply-to, pika
# --------------------------------------------------------------------------------------------

def test_direct_reply_to_rpc_pika(client, server, request_queue):
    cch = client.channel()
    replies = []
    cch.basic_consume(REPLY_TO, lambda c, m, p, b: replies.append((m, p, b)), auto_ack=True)
    cch.basic_publish("", request_queue, b"ping",
                      pika.BasicProperties(reply_to=REPLY_TO, correlation_id="c-1"))

    sch = server.channel()
    _m, props, body = poll_get(sch, request_queue)
    assert body == b"ping"
    assert props.correlation_id == "c-1"
    assert props.reply_to.startswith(REPLY_TO + ".")
    assert len(props.reply_to) > len(REPLY_TO) + 1
    sch.basic_publish("", props.reply_to, b"pong", pika.BasicProperties(correlation_id=props.correlation_id))

    assert pump([client], lambda: replies)
    m, p, b = replies[0]
    assert (b, p.correlation_id) == (b"pong", "c-1")
    assert m.exchange == "" and m.routing_key == props.reply_to
    assert m.redelivered is False


def test_reply_to_suffix_is_stable_per_channel_and_differs_between_channels(client, server, request_queue):
    ch1, ch2 = client.channel(), client.channel()
    for ch in (ch1, ch2):
        ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    for i, ch in enumerate((ch1, ch1, ch2)):
        ch.basic_publish("", request_queue, str(i).encode(), pika.BasicProperties(reply_to=REPLY_TO))
    sch = server.channel()
    seen = {}
    for _ in range(3):
        _m, p, b = poll_get(sch, request_queue)
        seen[b] = p.reply_to
    assert seen[b"0"] == seen[b"1"]
    assert seen[b"0"] != seen[b"2"]
    assert all(r.startswith(REPLY_TO + ".") for r in seen.values())


def test_many_concurrent_rpcs_matched_by_correlation_id(client, server, request_queue):
    cch = client.channel()
    replies = {}
    cch.basic_consume(REPLY_TO, lambda c, m, p, b: replies.__setitem__(p.correlation_id, b), auto_ack=True)
    ids = [uuid.uuid4().hex for _ in range(20)]
    for i, cid in enumerate(ids):
        cch.basic_publish("", request_queue, str(i).encode(),
                          pika.BasicProperties(reply_to=REPLY_TO, correlation_id=cid))
    sch = server.channel()
    for _ in ids:
        _m, p, b = poll_get(sch, request_queue)
        sch.basic_publish("", p.reply_to, b"re:" + b, pika.BasicProperties(correlation_id=p.correlation_id))
    assert pump([client], lambda: len(replies) == 20)
    assert replies == {cid: b"re:%d" % i for i, cid in enumerate(ids)}


def test_reply_consumer_cannot_acknowledge(client):
    ch = client.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=False)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - reply consumer cannot acknowledge"
    assert client.is_open


def test_second_reply_consumer_on_channel_is_refused(client):
    ch = client.channel()
    ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - reply consumer already set"


def test_reply_consumers_on_two_channels_are_fine(client):
    for _ in range(2):
        client.channel().basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)


def test_publish_with_reply_to_without_reply_consumer_fails(client, request_queue):
    ch = client.channel()
    ch.basic_publish("", request_queue, b"x", pika.BasicProperties(reply_to=REPLY_TO))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(request_queue, passive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - fast reply consumer does not exist"
    assert client.channel().queue_declare(request_queue, passive=True).method.message_count == 0


def test_reply_consumer_on_another_channel_does_not_count(client, request_queue):
    client.channel().basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    ch = client.channel()
    ch.basic_publish("", request_queue, b"x", pika.BasicProperties(reply_to=REPLY_TO))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(request_queue, passive=True)
    assert (ei.value.reply_code, ei.value.reply_text) == \
        (406, "PRECONDITION_FAILED - fast reply consumer does not exist")


def test_reply_consumer_after_cancel_no_longer_counts(client, request_queue):
    ch = client.channel()
    tag = ch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    ch.basic_cancel(tag)
    ch.basic_publish("", request_queue, b"x", pika.BasicProperties(reply_to=REPLY_TO))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(request_queue, passive=True)
    assert (ei.value.reply_code, ei.value.reply_text) == \
        (406, "PRECONDITION_FAILED - fast reply consumer does not exist")


def test_other_reply_to_values_are_not_checked(client, request_queue):
    ch = client.channel()
    ch.basic_publish("", request_queue, b"x", pika.BasicProperties(reply_to="some-queue"))
    ch.basic_publish("", request_queue, b"y", pika.BasicProperties(reply_to=REPLY_TO + "-not"))
    _m, p, _b = poll_get(ch, request_queue)
    assert p.reply_to == "some-queue"
    _m, p, _b = poll_get(ch, request_queue)
    assert p.reply_to == REPLY_TO + "-not"


@pytest.mark.parametrize("passive", [True, False])
def test_declare_reply_to_pseudo_queue(client, passive):
    ch = client.channel()
    ok = ch.queue_declare(REPLY_TO, passive=passive).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == (REPLY_TO, 0, 1)
    assert ch.is_open


def test_passive_declare_of_rewritten_name(client, server, request_queue):
    cch = client.channel()
    cch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    cch.basic_publish("", request_queue, b"x", pika.BasicProperties(reply_to=REPLY_TO))
    sch = server.channel()
    _m, p, _b = poll_get(sch, request_queue)
    ok = sch.queue_declare(p.reply_to, passive=True).method
    assert (ok.queue, ok.message_count, ok.consumer_count) == (p.reply_to, 0, 1)
    cch.close()
    settle([client, server], 0.2)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        sch.queue_declare(p.reply_to, passive=True)
    assert ei.value.reply_code == 404
    assert ei.value.reply_text == f"NOT_FOUND - no queue '{p.reply_to}' in vhost '/'"


def test_reply_through_other_exchange_is_not_delivered(client, server, request_queue):
    cch = client.channel()
    replies = []
    cch.basic_consume(REPLY_TO, lambda c, m, p, b: replies.append(b), auto_ack=True)
    cch.basic_publish("", request_queue, b"x", pika.BasicProperties(reply_to=REPLY_TO))
    sch = server.channel()
    _m, p, _b = poll_get(sch, request_queue)
    sch.basic_publish("amq.direct", p.reply_to, b"via-amq.direct")
    sch.basic_publish("", p.reply_to, b"via-default")
    assert pump([client], lambda: replies)
    settle([client], 0.2)
    assert replies == [b"via-default"]


def test_mandatory_reply_is_returned_and_still_delivered(client, server, request_queue):
    cch = client.channel()
    replies = []
    cch.basic_consume(REPLY_TO, lambda c, m, p, b: replies.append(b), auto_ack=True)
    cch.basic_publish("", request_queue, b"x", pika.BasicProperties(reply_to=REPLY_TO))
    sch = server.channel()
    _m, p, _b = poll_get(sch, request_queue)
    returned = []
    sch.add_on_return_callback(lambda c, m, props, b: returned.append((m.reply_code, m.reply_text, b)))
    sch.basic_publish("", p.reply_to, b"mandatory-reply", mandatory=True)
    assert pump([client, server], lambda: replies and returned)
    assert replies == [b"mandatory-reply"]
    assert returned == [(312, "NO_ROUTE", b"mandatory-reply")]


def test_reply_after_requester_is_gone(client, server, request_queue):
    cch = client.channel()
    cch.basic_consume(REPLY_TO, lambda *a: None, auto_ack=True)
    cch.basic_publish("", request_queue, b"x", pika.BasicProperties(reply_to=REPLY_TO))
    sch = server.channel()
    _m, p, _b = poll_get(sch, request_queue)
    client.close()
    settle([server], 0.2)
    # plain reply: silently dropped, the channel stays open
    sch.basic_publish("", p.reply_to, b"late")
    settle([server], 0.2)
    assert sch.is_open
    # mandatory reply: returned as unroutable
    returned = []
    sch.add_on_return_callback(lambda c, m, props, b: returned.append((m.reply_code, m.reply_text, m.routing_key)))
    sch.basic_publish("", p.reply_to, b"late", mandatory=True)
    assert pump([server], lambda: returned)
    assert returned == [(312, "NO_ROUTE", p.reply_to)]
    assert sch.is_open


def test_direct_reply_to_within_one_connection(client, request_queue):
    """Requester and responder may share a connection (different channels)."""
    cch, sch = client.channel(), client.channel()
    replies = []
    cch.basic_consume(REPLY_TO, lambda c, m, p, b: replies.append(b), auto_ack=True)
    cch.basic_publish("", request_queue, b"q", pika.BasicProperties(reply_to=REPLY_TO))
    _m, p, b = poll_get(sch, request_queue)
    sch.basic_publish("", p.reply_to, b + b"!")
    assert pump([client], lambda: replies)
    assert replies == [b"q!"]


# --------------------------------------------------------------------------------------------
# direct reply-to, aio-pika
# --------------------------------------------------------------------------------------------

async def test_direct_reply_to_rpc_aio_pika(amqp_url, uid):
    client = await aio_pika.connect(amqp_url)
    server = await aio_pika.connect(amqp_url)
    async with client, server:
        sch = await server.channel()
        requests = await sch.declare_queue(f"test-rpc-aio-{uid}", auto_delete=True)
        seen_reply_to = []

        async def handle(msg: aio_pika.abc.AbstractIncomingMessage):
            async with msg.process():
                seen_reply_to.append(msg.reply_to)
                await sch.default_exchange.publish(
                    aio_pika.Message(msg.body[::-1], correlation_id=msg.correlation_id),
                    routing_key=msg.reply_to)

        await requests.consume(handle)

        cch = await client.channel()
        reply_queue = await cch.get_queue(REPLY_TO)  # passive declare works
        futures: dict[str, asyncio.Future] = {}

        async def on_reply(msg: aio_pika.abc.AbstractIncomingMessage):
            futures[msg.correlation_id].set_result(msg.body)

        await reply_queue.consume(on_reply, no_ack=True)
        loop = asyncio.get_running_loop()
        for i in range(10):
            cid = f"cid-{i}"
            futures[cid] = loop.create_future()
            await cch.default_exchange.publish(
                aio_pika.Message(f"req-{i}".encode(), correlation_id=cid, reply_to=REPLY_TO),
                routing_key=requests.name)
        results = await asyncio.wait_for(asyncio.gather(*futures.values()), 5)
        assert results == [f"req-{i}".encode()[::-1] for i in range(10)]
        assert len(set(seen_reply_to)) == 1
        assert seen_reply_to[0].startswith(REPLY_TO + ".")


async def test_direct_reply_to_aio_pika_no_ack_false_fails(amqp_url):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        q = await ch.get_queue(REPLY_TO)

        async def on_message(m):
            pass

        with pytest.raises(aio_pika.exceptions.ChannelPreconditionFailed) as ei:
            await q.consume(on_message, no_ack=False)
        assert "PRECONDITION_FAILED - reply consumer cannot acknowledge" in str(ei.value)


# --------------------------------------------------------------------------------------------
# classic RPC: exclusive, server-named reply queue
# --------------------------------------------------------------------------------------------

def test_classic_rpc_with_exclusive_server_named_queue(client, server, request_queue):
    cch = client.channel()
    ok = cch.queue_declare("", exclusive=True).method
    reply_q = ok.queue
    assert reply_q.startswith("amq.gen-")
    assert (ok.message_count, ok.consumer_count) == (0, 0)
    replies = []
    cch.basic_consume(reply_q, lambda c, m, p, b: (replies.append((p.correlation_id, b)),
                                                    c.basic_ack(m.delivery_tag)))
    cch.basic_publish("", request_queue, b"2+2", pika.BasicProperties(reply_to=reply_q, correlation_id="x"))
    sch = server.channel()
    _m, p, b = poll_get(sch, request_queue)
    assert p.reply_to == reply_q  # not rewritten
    sch.basic_publish("", p.reply_to, b"4", pika.BasicProperties(correlation_id=p.correlation_id))
    assert pump([client], lambda: replies)
    assert replies == [("x", b"4")]


def test_server_named_queues_are_unique(client):
    ch = client.channel()
    names = {ch.queue_declare("", exclusive=True).method.queue for _ in range(5)}
    assert len(names) == 5
    assert all(n.startswith("amq.gen-") for n in names)


def test_exclusive_reply_queue_is_locked_to_its_connection(client, server):
    reply_q = client.channel().queue_declare("", exclusive=True).method.queue
    sch = server.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        sch.basic_consume(reply_q, lambda *a: None)
    assert ei.value.reply_code == 405
    assert ei.value.reply_text == (
        f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '{reply_q}' in vhost '/'. "
        "It could be originally declared on another connection or the exclusive property value "
        "does not match that of the original declaration.")
    # but anyone may publish to it
    sch = server.channel()
    sch.confirm_delivery()
    sch.basic_publish("", reply_q, b"reply", mandatory=True)
    assert client.channel().queue_declare(reply_q, passive=True).method.message_count == 1


def test_exclusive_reply_queue_deleted_with_its_connection(client, server):
    reply_q = client.channel().queue_declare("", exclusive=True).method.queue
    client.close()
    sch = server.channel()
    deadline = time.monotonic() + HANG_GUARD
    while True:
        try:
            sch.queue_declare(reply_q, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            assert exc.reply_code == 404
            assert exc.reply_text == f"NOT_FOUND - no queue '{reply_q}' in vhost '/'"
            break
        assert time.monotonic() < deadline, "exclusive queue survived its connection"
        time.sleep(0.05)


async def test_classic_rpc_aio_pika(amqp_url, uid):
    client = await aio_pika.connect(amqp_url)
    server = await aio_pika.connect(amqp_url)
    async with client, server:
        sch = await server.channel()
        requests = await sch.declare_queue(f"test-rpc-aio-classic-{uid}", auto_delete=True)

        async def handle(msg: aio_pika.abc.AbstractIncomingMessage):
            async with msg.process():
                n = int(msg.body)
                await sch.default_exchange.publish(
                    aio_pika.Message(str(n * n).encode(), correlation_id=msg.correlation_id),
                    routing_key=msg.reply_to)

        await requests.consume(handle)

        cch = await client.channel()
        callback_q = await cch.declare_queue(exclusive=True)
        assert callback_q.name.startswith("amq.gen-")
        futures: dict[str, asyncio.Future] = {}

        async def on_reply(msg):
            async with msg.process():
                futures.pop(msg.correlation_id).set_result(int(msg.body))

        await callback_q.consume(on_reply)
        loop = asyncio.get_running_loop()
        waits = []
        for n in range(1, 6):
            cid = uuid.uuid4().hex
            futures[cid] = loop.create_future()
            waits.append(futures[cid])
            await cch.default_exchange.publish(
                aio_pika.Message(str(n).encode(), correlation_id=cid, reply_to=callback_q.name),
                routing_key=requests.name)
        assert await asyncio.wait_for(asyncio.gather(*waits), 5) == [1, 4, 9, 16, 25]


async def test_aio_pika_rpc_pattern(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel()
        rpc = await aio_pika.patterns.RPC.create(ch)

        async def multiply(*, x, y):
            return x * y

        name = f"test-rpc-pattern-{uid}"
        await rpc.register(name, multiply, auto_delete=True)
        assert await asyncio.wait_for(rpc.proxy.__getattr__(name)(x=6, y=7), 5) == 42
        results = await asyncio.wait_for(
            asyncio.gather(*[rpc.call(name, kwargs=dict(x=i, y=i)) for i in range(10)]), 5)
        assert results == [i * i for i in range(10)]
        await rpc.unregister(multiply)
        await rpc.close()
