"""Hello world with pika: publish one message to a queue, then consume it.

Run a broker (`amqp-broker serve`), then:

    python examples/hello_pika.py [AMQP_URL]

The URL comes from argv[1], else $AMQP_URL, else amqp://guest:guest@localhost:5672/.
"""
import os
import sys

import pika

url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")

connection = pika.BlockingConnection(pika.URLParameters(url))
channel = connection.channel()

# A server-named, exclusive queue: private to this connection, deleted when it closes.
queue = channel.queue_declare(queue="", exclusive=True).method.queue

channel.basic_publish(exchange="", routing_key=queue, body=b"Hello World!")
print("sent: Hello World!")


def on_message(ch, method, properties, body):
    print(f"received: {body.decode()}")
    ch.basic_ack(method.delivery_tag)
    ch.stop_consuming()


channel.basic_consume(queue=queue, on_message_callback=on_message)
connection.call_later(5, channel.stop_consuming)  # never hang if nothing arrives
channel.start_consuming()
connection.close()
