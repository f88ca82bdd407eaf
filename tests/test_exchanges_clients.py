"""Exchange routing through asyncio clients (aio-pika, aiormq), as RabbitMQ 3.x does it
(reference doc §6, §7).

Every expectation here was checked against a real RabbitMQ (AMQP_REFERENCE_URL); names carry
the `uid` suffix because the reference server is shared. Publishing channels use publisher
confirms so that "the message was routed (or not)" is settled before we basic_get.
"""

from __future__ import annotations

import aio_pika
import aiormq
import pytest

pytestmark = pytest.mark.timeout(30)


# --------------------------------------------------------------------------------------------
# aio-pika / aiormq


async def test_aio_pika_topic_fanout_and_e2e(amqp_url, uid):
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        topic = await channel.declare_exchange(f"aio-topic-{uid}", aio_pika.ExchangeType.TOPIC,
                                               auto_delete=True)
        fan = await channel.declare_exchange(f"aio-fan-{uid}", aio_pika.ExchangeType.FANOUT,
                                             auto_delete=True)
        q1 = await channel.declare_queue(exclusive=True)
        q2 = await channel.declare_queue(exclusive=True)
        assert q1.name.startswith("amq.gen-")
        await q1.bind(topic, "stock.#")
        await fan.bind(topic, "*.eur")       # topic --*.eur--> fan
        await q2.bind(fan)
        for key in ("stock.usd", "stock.eur", "bond.eur", "bond.usd"):
            await topic.publish(aio_pika.Message(key.encode()), routing_key=key)
        got1, got2 = [], []
        for q, got in ((q1, got1), (q2, got2)):
            while (m := await q.get(no_ack=True, fail=False, timeout=5)) is not None:
                got.append(m.body)
        assert got1 == [b"stock.usd", b"stock.eur"]
        assert got2 == [b"stock.eur", b"bond.eur"]
        await fan.unbind(topic, "*.eur")
        await topic.publish(aio_pika.Message(b"x"), routing_key="bond.eur")
        assert await q2.get(no_ack=True, fail=False, timeout=5) is None
    finally:
        await connection.close()


async def test_aio_pika_headers_exchange(amqp_url, uid):
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        x = await channel.declare_exchange(f"aio-hdr-{uid}", aio_pika.ExchangeType.HEADERS,
                                           auto_delete=True)
        q_any = await channel.declare_queue(exclusive=True)
        q_all = await channel.declare_queue(exclusive=True)
        await q_any.bind(x, arguments={"x-match": "any", "fmt": "pdf", "type": "report"})
        await q_all.bind(x, arguments={"x-match": "all", "fmt": "pdf", "type": "report"})
        msgs = [("both", {"fmt": "pdf", "type": "report"}), ("fmt", {"fmt": "pdf"}),
                ("none", {"fmt": "zip"})]
        for body, headers in msgs:
            await x.publish(aio_pika.Message(body.encode(), headers=headers), routing_key="")

        async def bodies(q):
            out = []
            while (m := await q.get(no_ack=True, fail=False, timeout=5)) is not None:
                out.append(m.body)
            return out

        assert await bodies(q_any) == [b"both", b"fmt"]
        assert await bodies(q_all) == [b"both"]
    finally:
        await connection.close()


async def test_aio_pika_mandatory_return_raises(amqp_url, uid):
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        x = await channel.declare_exchange(f"aio-mand-{uid}", aio_pika.ExchangeType.DIRECT,
                                           auto_delete=True)
        with pytest.raises(aiormq.exceptions.DeliveryError) as ei:
            await x.publish(aio_pika.Message(b"m"), routing_key="nobody", mandatory=True)
        frame = ei.value.message.delivery
        assert frame.reply_code == 312
        assert frame.reply_text == "NO_ROUTE"
    finally:
        await connection.close()


async def test_aiormq_exchange_declare_errors(amqp_url, uid):
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity) as ei:
            await channel.exchange_declare(f"aiormq-missing-{uid}", passive=True)
        assert f"no exchange 'aiormq-missing-{uid}'" in str(ei.value)
        channel = await connection.channel()
        name = f"aiormq-x-{uid}"
        await channel.exchange_declare(name, exchange_type="topic", auto_delete=True)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
            await channel.exchange_declare(name, exchange_type="direct", auto_delete=True)
        channel = await connection.channel()
        await channel.exchange_delete(name)
    finally:
        await connection.close()
