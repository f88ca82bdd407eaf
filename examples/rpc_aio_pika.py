"""RPC with direct reply-to, using aio-pika.

A server consumes requests from a queue and answers each on the request's `reply_to`;
the client consumes from the pseudo-queue `amq.rabbitmq.reply-to` (no queue to declare,
no_ack) and publishes its requests with reply_to="amq.rabbitmq.reply-to" on the same channel.

Run a broker (`amqp-broker serve`), then:

    python examples/rpc_aio_pika.py [AMQP_URL]

The URL comes from argv[1], else $AMQP_URL, else amqp://guest:guest@localhost:5672/.
"""
import asyncio
import os
import sys
import uuid

import aio_pika

REPLY_TO = "amq.rabbitmq.reply-to"


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


async def serve(connection: aio_pika.abc.AbstractConnection, queue_name: str) -> None:
    channel = await connection.channel()
    queue = await channel.declare_queue(queue_name, exclusive=True)

    async def on_request(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        async with message.process():
            result = fib(int(message.body))
            await channel.default_exchange.publish(
                aio_pika.Message(str(result).encode(), correlation_id=message.correlation_id),
                routing_key=message.reply_to,
            )

    await queue.consume(on_request)


async def main(url: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        queue_name = f"rpc-fib-{uuid.uuid4().hex[:8]}"
        await serve(connection, queue_name)

        channel = await connection.channel()
        pending: dict[str, asyncio.Future] = {}

        async def on_response(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            future = pending.pop(message.correlation_id, None)
            if future is not None:
                future.set_result(int(message.body))

        # Direct reply-to: consume the pseudo-queue (never declared), without acks.
        reply_queue = aio_pika.Queue(channel, REPLY_TO, durable=False, exclusive=False,
                                     auto_delete=False, arguments=None)
        await reply_queue.consume(on_response, no_ack=True)

        async def call(n: int) -> int:
            correlation_id = uuid.uuid4().hex
            pending[correlation_id] = asyncio.get_running_loop().create_future()
            await channel.default_exchange.publish(
                aio_pika.Message(str(n).encode(), correlation_id=correlation_id, reply_to=REPLY_TO),
                routing_key=queue_name,
            )
            return await asyncio.wait_for(pending[correlation_id], timeout=5)

        for n in (10, 20, 30):
            print(f"fib({n}) = {await call(n)}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")))
