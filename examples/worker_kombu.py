"""A task queue with kombu: a producer sends tasks to a direct exchange, a worker consumes them.

Run a broker (`amqp-broker serve`), then:

    python examples/worker_kombu.py [AMQP_URL]

The URL comes from argv[1], else $AMQP_URL, else amqp://guest:guest@localhost:5672/.
"""
import os
import socket
import sys
import uuid

from kombu import Connection, Exchange, Queue

url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/")

suffix = uuid.uuid4().hex[:8]  # unique names, so runs never collide on a shared server
exchange = Exchange(f"tasks-{suffix}", type="direct", auto_delete=True)
queue = Queue(f"tasks-{suffix}", exchange, routing_key="add", auto_delete=True)
TASKS = [(1, 2), (3, 4), (5, 6)]

with Connection(url) as conn:
    done = []

    def work(body, message):
        x, y = body["args"]
        print(f"worker: {x} + {y} = {x + y}")
        done.append(body)
        message.ack()

    with conn.Consumer(queue, callbacks=[work], accept=["json"]):  # declares and binds the queue
        with conn.Producer(serializer="json") as producer:
            for args in TASKS:
                producer.publish({"args": args}, exchange=exchange, routing_key="add")
                print(f"producer: sent add{args}")
        while len(done) < len(TASKS):
            try:
                conn.drain_events(timeout=5)
            except socket.timeout:
                sys.exit("worker: timed out waiting for tasks")
    print(f"worker: processed {len(done)} tasks")
