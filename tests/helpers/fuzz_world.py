"""The world a fuzz run lives in, shared by the fuzz tests and tests/stress/fuzz_stress.py: the
exchanges and queues fuzz cases route to, a canary queue whose messages must survive everything,
and cleaning up what a fuzz run declared (it must not leave anything behind on a broker other
tests share).
"""

from __future__ import annotations

import time

import pika
from pamqp import commands as C

from helpers.fuzz import method
from helpers.pika_client import connect
from helpers.raw import RawConnection


def fuzz_setup(url: str, uid: str) -> list[bytes]:
    """Exchanges/queues the fuzz cases route to, and a canary queue whose messages must
    survive everything. Returns the canary bodies."""
    conn = connect(url)
    try:
        ch = conn.channel()
        ch.queue_declare("fuzz-sink", arguments={"x-max-length": 50})
        ch.exchange_declare("fuzz-h", "headers")
        ch.exchange_declare("fuzz-f", "fanout")
        ch.exchange_declare("fuzz-t", "topic")
        ch.queue_bind("fuzz-sink", "fuzz-h", arguments={"x-match": "any", "k": 1})
        ch.queue_bind("fuzz-sink", "fuzz-h")
        ch.queue_bind("fuzz-sink", "fuzz-f")
        ch.queue_bind("fuzz-sink", "fuzz-t", "#")
        ch.confirm_delivery()
        canary = f"canary-{uid}"
        ch.queue_declare(canary, durable=True)
        bodies = [f"canary {i} ".encode() * (i + 1) + bytes(range(256)) for i in range(20)]
        for i, b in enumerate(bodies):
            ch.basic_publish("", canary, b, pika.BasicProperties(
                message_id=f"c{i}", headers={"i": i, "s": "x" * i}, delivery_mode=2,
                priority=i % 10, correlation_id="corr", timestamp=1700000000 + i))
        return bodies
    finally:
        conn.close()


def check_canary(url: str, uid: str, bodies: list[bytes]) -> list[str]:
    """The canary queue's messages, published before the fuzz, must be exactly as they were."""
    problems = []
    conn = connect(url)
    try:
        ch = conn.channel()
        canary = f"canary-{uid}"
        count = ch.queue_declare(canary, passive=True).method.message_count
        if count != len(bodies):
            problems.append(f"canary queue holds {count} messages, expected {len(bodies)}")
        for i, expected in enumerate(bodies):
            method_frame, props, got = ch.basic_get(canary, auto_ack=True)
            if method_frame is None:
                problems.append(f"canary message {i} lost")
                break
            if (got != expected or props.message_id != f"c{i}" or props.headers != {"i": i, "s": "x" * i}
                    or props.delivery_mode != 2 or props.priority != i % 10
                    or props.timestamp != 1700000000 + i or method_frame.redelivered):
                problems.append(f"canary message {i} altered: {got[:30]!r} {props}")
    finally:
        if conn.is_open:
            conn.close()
    return problems


def _names(table: dict) -> set:
    for _ in range(50):  # the broker thread may be changing it right now
        try:
            return set(table)
        except RuntimeError:
            time.sleep(0.01)
    return set(table)


def _delete_objects(url: str, queues, exchanges) -> None:
    """Delete queues and exchanges by name (the fuzz must not leave anything behind on a
    broker other tests share)."""
    conn = RawConnection.connect(url, timeout=10)
    try:
        conn.open_channel(1)
        todo = [(C.Queue.Delete, {"queue": q}, C.Queue.DeleteOk) for q in queues]
        todo += [(C.Exchange.Delete, {"exchange": x}, C.Exchange.DeleteOk) for x in exchanges]
        for cls, kw, ok in todo:
            conn.send_bytes(method(1, cls, **kw))
            while True:
                _ch, obj = conn.recv_method()
                if isinstance(obj, ok):
                    break
                if isinstance(obj, C.Channel.Close):
                    conn.send_frame(C.Channel.CloseOk(), 1)
                    conn.open_channel(1)
                    break
    finally:
        conn.close()


def vhost_names(vhost) -> tuple[set, set]:
    """(queue names, exchange names) of a vhost of our broker, read from the test's thread."""
    return _names(vhost.queues), _names(vhost.exchanges)


def delete_new_objects(url: str, vhost, before: tuple[set, set]) -> None:
    """Delete the queues and exchanges declared since `before` (a `vhost_names` result)."""
    queues, exchanges = vhost_names(vhost)
    _delete_objects(url, queues - before[0], exchanges - before[1])
