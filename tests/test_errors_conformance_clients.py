"""Error conformance through real clients: key cases of the error table repeated through pika and
aio-pika, to check what real clients see. Recorded against a real RabbitMQ 3.10
(AMQP_REFERENCE_URL set).
"""

from __future__ import annotations

import asyncio

import pika
import pika.compat
import pika.exceptions
import pytest
from pamqp import commands as C

from helpers.errors import ctx  # noqa: F401 - pytest fixture
from helpers.errors import LOCKED
from helpers.pika_client import cleanup, conn  # noqa: F401 - pytest fixtures
from helpers.pika_client import connect

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:This command is deprecated:DeprecationWarning"),
]


# --------------------------------------------------------------------------- real clients
def test_pika_passive_declare_missing_queue(conn, uid):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(f"q-{uid}", passive=True)
    assert info.value.reply_code == 404
    assert info.value.reply_text == f"NOT_FOUND - no queue 'q-{uid}' in vhost '/'"
    assert conn.is_open


def test_pika_publish_to_missing_exchange(conn, uid):
    ch = conn.channel()
    ch.basic_publish(f"x-{uid}", "k", b"x")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare("", exclusive=True)  # the close arrives while waiting for this
    assert info.value.reply_code == 404
    assert info.value.reply_text == f"NOT_FOUND - no exchange 'x-{uid}' in vhost '/'"


def test_pika_typed_argument_equivalence(conn, cleanup, uid):
    """Integer arguments are compared by type class: signedint 1000 == long 1000."""
    q = f"q-{uid}"
    cleanup["queues"].append(q)
    ch = conn.channel()
    ch.queue_declare(q, arguments={"x-message-ttl": pika.compat.long(1000)})  # 'l' long
    ch.queue_declare(q, arguments={"x-message-ttl": 1000})  # 'I' signedint: equivalent
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(q, arguments={"x-message-ttl": 2000})
    assert info.value.reply_code == 406
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '{q}' in vhost '/': "
        "received '2000' but current is '1000'"
    )
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(q)
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '{q}' in vhost '/': "
        "received none but current is the value '1000' of type 'long'"
    )
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(q, arguments={"x-message-ttl": 1000, "x-max-length": 7})
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue '{q}' in vhost '/': "
        "received the value '7' of type 'signedint' but current is none"
    )


def test_pika_bool_vs_int_argument(conn, cleanup, uid):
    q = f"q-{uid}"
    cleanup["queues"].append(q)
    ch = conn.channel()
    ch.queue_declare(q, arguments={"x-single-active-consumer": True})
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(q, arguments={"x-single-active-consumer": 1})
    assert info.value.reply_text == (
        f"PRECONDITION_FAILED - inequivalent arg 'x-single-active-consumer' for queue '{q}' in "
        "vhost '/': received '1' but current is 'true'"
    )


def test_pika_sac_signedint_rejected(conn, uid):
    ch = conn.channel()
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


def test_pika_qos_prefetch_size_closes_connection(conn):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        ch.basic_qos(prefetch_size=10)
    assert (info.value.reply_code, info.value.reply_text) == (
        540, "NOT_IMPLEMENTED - prefetch_size!=0 (10)"
    )


def test_pika_unknown_exchange_type_closes_connection(conn, uid):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        ch.exchange_declare(f"x-{uid}", exchange_type=f"no-type-{uid}")
    assert (info.value.reply_code, info.value.reply_text) == (
        503, f"COMMAND_INVALID - unknown exchange type 'no-type-{uid}'"
    )


def test_pika_reserved_queue_name(conn, uid):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare(f"amq.q-{uid}")
    assert (info.value.reply_code, info.value.reply_text) == (
        403, f"ACCESS_REFUSED - queue name 'amq.q-{uid}' contains reserved prefix 'amq.*'"
    )


def test_pika_exclusive_queue_other_connection(amqp_url, conn, uid):
    ch = conn.channel()
    q = f"q-{uid}"
    ch.queue_declare(q, exclusive=True)
    other = connect(amqp_url)
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            other.channel().basic_consume(q, lambda *a: None)
        assert info.value.reply_code == 405
        assert info.value.reply_text == LOCKED.replace("{u}", uid)
    finally:
        other.close()


def test_pika_double_ack(conn, uid):
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"x")
    method = None
    for _ in range(100):
        method, _p, _b = ch.basic_get(q)
        if method:
            break
        conn.sleep(0.01)
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
