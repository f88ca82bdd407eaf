"""Durability across a broker restart (in-process): persistent and transient messages, and what
acks, nacks, rejects, dead-lettering, max-length and transactions leave on disk; unacked
deliveries come back redelivered.

These always run against our broker (a restart cannot be done on the shared reference), with a
graceful stop: every change acknowledged by a synchronous reply before the stop must be on disk
after it. Hard kills are in test_crash.py. Exchanges, queues and bindings: test_durability.py.
"""

from __future__ import annotations

import os

import pika
import pika.exceptions
import pytest

from helpers.durability import node  # noqa: F401 - pytest fixture
from helpers.durability import PERSISTENT, TRANSIENT, data_files, numbers, publish
from helpers.pika_client import drain, drain_flagged, ready_count

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------
# messages


def test_persistent_messages_survive_in_order_with_properties(node):
    ch = node.channel()
    ch.exchange_declare("m-x", "topic", durable=True)
    ch.queue_declare("m-q", durable=True)
    ch.queue_bind("m-q", "m-x", "m.#")
    props = pika.BasicProperties(
        content_type="application/json", content_encoding="utf-8", delivery_mode=2, priority=3,
        correlation_id="corr-1", reply_to="replies", expiration="600000", message_id="mid-1",
        timestamp=1700000000, type="kind", user_id="guest", app_id="app",
        headers={"h-str": "v", "h-int": 42, "h-bool": True, "h-list": [1, "two"], "h-nested": {"a": 1}},
    )
    ch.basic_publish("m-x", "m.props", b'{"first": true}', properties=props)
    publish(ch, "m-q", numbers(100))
    big = os.urandom(300_000)  # several frames
    ch.basic_publish("", "m-q", big, properties=PERSISTENT)
    ch.basic_publish("", "m-q", b"", properties=PERSISTENT)
    node.restart()

    ch = node.channel()
    assert ready_count(ch, "m-q") == 103
    m, p, b = ch.basic_get("m-q", auto_ack=True)
    assert b == b'{"first": true}' and not m.redelivered
    assert (m.exchange, m.routing_key) == ("m-x", "m.props")
    for attr in ("content_type", "content_encoding", "delivery_mode", "priority", "correlation_id",
                 "reply_to", "expiration", "message_id", "timestamp", "type", "user_id", "app_id"):
        assert getattr(p, attr) == getattr(props, attr), attr
    assert p.headers == {"h-str": "v", "h-int": 42, "h-bool": True, "h-list": [1, "two"],
                         "h-nested": {"a": 1}}
    got = drain_flagged(ch, "m-q")
    assert [b for b, _ in got[:100]] == numbers(100)
    assert got[100][0] == big and got[101][0] == b""
    assert not any(r for _, r in got)


def test_transient_messages_in_durable_queue_are_gone(node):
    ch = node.channel()
    ch.queue_declare("mix-q", durable=True)
    for i in range(1, 21):
        publish(ch, "mix-q", [str(i).encode()], props=PERSISTENT if i % 2 else TRANSIENT)
    ch.basic_publish("", "mix-q", b"no-properties")  # no delivery_mode: transient
    node.restart()
    assert drain(node.channel(), "mix-q") == [str(i).encode() for i in range(1, 21, 2)]


def test_transient_messages_never_touch_the_disk(node):
    marker = b"TRANSIENT-%s-" % os.urandom(6).hex().encode()
    ch = node.channel()
    ch.queue_declare("disk-durable", durable=True)
    ch.queue_declare("disk-transient", durable=False)
    ch.exchange_declare("disk-fan", "fanout", durable=True)
    ch.queue_bind("disk-durable", "disk-fan")
    ch.queue_bind("disk-transient", "disk-fan")
    body = marker * (4096 // len(marker))
    for i in range(300):  # ~1.2 MB transient into a durable queue, persistent into a transient one
        ch.basic_publish("", "disk-durable", body, properties=TRANSIENT)
        ch.basic_publish("", "disk-transient", body, properties=PERSISTENT)
    publish(ch, "", [b"durable-copy"], exchange="disk-fan")  # persistent, both queues
    assert ready_count(ch, "disk-durable") == 301
    node.stop()
    for path in data_files(node):
        assert marker not in path.read_bytes(), f"transient message body found in {path}"
    node.start()
    ch = node.channel()
    assert drain(ch, "disk-durable") == [b"durable-copy"]
    assert not node.has_queue("disk-transient")


def test_message_routed_to_three_durable_queues_comes_back_in_all(node):
    ch = node.channel()
    ch.exchange_declare("fan3", "fanout", durable=True)
    for q in ("fan3-a", "fan3-b", "fan3-c"):
        ch.queue_declare(q, durable=True)
        ch.queue_bind(q, "fan3")
    publish(ch, "", [b"one", b"two"], exchange="fan3")
    node.restart()
    ch = node.channel()
    for q in ("fan3-a", "fan3-b", "fan3-c"):
        assert ready_count(ch, q) == 2, q
    # acking one copy leaves the others
    assert drain(ch, "fan3-a") == [b"one", b"two"]
    node.restart()
    ch = node.channel()
    assert ready_count(ch, "fan3-a") == 0
    assert drain(ch, "fan3-b") == [b"one", b"two"]
    node.restart()
    ch = node.channel()
    assert ready_count(ch, "fan3-b") == 0
    assert drain_flagged(ch, "fan3-c") == [(b"one", False), (b"two", False)]
    node.restart()
    ch = node.channel()
    assert [ready_count(ch, q) for q in ("fan3-a", "fan3-b", "fan3-c")] == [0, 0, 0]


def test_message_to_durable_and_transient_queue_only_durable_copy_returns(node):
    ch = node.channel()
    ch.exchange_declare("dt-fan", "fanout", durable=True)
    ch.queue_declare("dt-durable", durable=True)
    ch.queue_declare("dt-transient", durable=False)
    ch.queue_bind("dt-durable", "dt-fan")
    ch.queue_bind("dt-transient", "dt-fan")
    publish(ch, "", [b"both"], exchange="dt-fan")
    drain(ch, "dt-durable")  # consumed (and acked) from the durable queue only
    node.restart()
    # the transient queue is gone and the consumed durable copy stays consumed
    assert not node.has_queue("dt-transient")
    ch = node.channel()
    assert ready_count(ch, "dt-durable") == 0
    # the other way round: consume the transient copy, the durable one comes back
    ch.queue_declare("dt-transient", durable=False)
    ch.queue_bind("dt-transient", "dt-fan")
    publish(ch, "", [b"both2"], exchange="dt-fan")
    assert drain(ch, "dt-transient") == [b"both2"]
    node.restart()
    ch = node.channel()
    assert drain_flagged(ch, "dt-durable") == [(b"both2", False)]
    ch.queue_declare("dt-transient", durable=False)
    assert ready_count(ch, "dt-transient") == 0


def test_messages_published_after_a_restart_are_not_marked_redelivered(node):
    """Deliveries before a restart must not mark messages published after it (e.g. a
    per-queue delivery watermark must not be compared with restarted sequence numbers)."""
    ch = node.channel()
    ch.queue_declare("wm-q", durable=True)
    publish(ch, "wm-q", numbers(3))
    assert drain(ch, "wm-q") == numbers(3)  # delivered and acked: the queue is empty
    node.restart()
    publish(node.channel(), "wm-q", numbers(3, start=4))
    node.restart()
    assert drain_flagged(node.channel(), "wm-q") == [(b"4", False), (b"5", False), (b"6", False)]


def test_persistent_message_into_transient_queue_does_not_persist(node):
    ch = node.channel()
    ch.queue_declare("nd-q", durable=False)
    publish(ch, "nd-q", numbers(5), props=PERSISTENT)
    node.restart()
    ch = node.channel()
    assert not node.has_queue("nd-q")
    ch.queue_declare("nd-q", durable=False)
    assert ready_count(ch, "nd-q") == 0
    ch.queue_declare("nd-q2", durable=True)  # a durable queue of another name: also empty
    assert ready_count(ch, "nd-q2") == 0


# --------------------------------------------------------------------------------------------
# delivery state: redelivered flags, acks, rejects, transactions


def test_unacked_deliveries_come_back_redelivered_in_order_broker_stopped_under_them(node):
    ch = node.channel()
    ch.queue_declare("rd-q", durable=True)
    publish(ch, "rd-q", numbers(10))
    consumer = node.connect().channel()
    for expected in numbers(3):
        m, _p, b = consumer.basic_get("rd-q", auto_ack=False)  # delivered, never acked
        assert b == expected and not m.redelivered
    # the broker stops while the consumer still holds them
    node.restart(close_clients=False)
    got = drain_flagged(node.channel(), "rd-q")
    assert [b for b, _ in got] == numbers(10)
    assert [r for _, r in got] == [True] * 3 + [False] * 7


def test_unacked_deliveries_requeued_on_close_stay_redelivered(node):
    ch = node.channel()
    ch.queue_declare("rq-q", durable=True)
    publish(ch, "rq-q", numbers(10))
    c = node.connect()
    cch = c.channel()
    cch.basic_qos(prefetch_count=3)
    got = []
    for m, _p, b in cch.consume("rq-q", inactivity_timeout=2):
        got.append(b)
        if len(got) == 3:
            break
    assert got == numbers(3)
    c.close()  # requeued (redelivered=true) before the stop
    node.restart()
    got = drain_flagged(node.channel(), "rq-q")
    assert [b for b, _ in got] == numbers(10)
    assert [r for _, r in got] == [True] * 3 + [False] * 7


def test_delivered_in_the_middle_comes_back_redelivered(node):
    """Delivered then nacked with requeue: back at its place, redelivered; a later message
    delivered and still unacked at the stop: redelivered too; the rest: not."""
    ch = node.channel()
    ch.queue_declare("mid-q", durable=True)
    publish(ch, "mid-q", numbers(6))
    c = node.connect().channel()
    m1, _, _ = c.basic_get("mid-q")
    m2, _, _ = c.basic_get("mid-q")
    c.basic_ack(m1.delivery_tag)  # 1 is gone
    c.basic_nack(m2.delivery_tag, requeue=True)  # 2 goes back (redelivered)
    m2b, _, b2 = c.basic_get("mid-q")
    assert b2 == b"2" and m2b.redelivered
    c.basic_reject(m2b.delivery_tag, requeue=True)
    c.queue_declare("mid-q", passive=True)  # round trip: the acks were processed
    node.restart()
    got = drain_flagged(node.channel(), "mid-q")
    assert got == [(b"2", True), (b"3", False), (b"4", False), (b"5", False), (b"6", False)]


def test_acked_messages_do_not_come_back(node):
    ch = node.channel()
    ch.queue_declare("ack-q", durable=True)
    publish(ch, "ack-q", numbers(10))
    c = node.connect().channel()
    c.basic_qos(prefetch_count=10)
    seen = []
    for m, _p, b in c.consume("ack-q", inactivity_timeout=2):
        seen.append(b)
        if len(seen) <= 4:
            c.basic_ack(m.delivery_tag)
        elif len(seen) == 5:
            c.basic_ack(m.delivery_tag, multiple=False)
            break
    c.cancel()
    c.queue_declare("ack-q", passive=True)  # round trip: the acks were processed
    node.restart()
    # 1..5 acked; 6..10 were delivered (prefetch 10) and not acked -> redelivered
    got = drain_flagged(node.channel(), "ack-q")
    assert [b for b, _ in got] == numbers(5, start=6)


def test_ack_multiple_persists(node):
    ch = node.channel()
    ch.queue_declare("ackm-q", durable=True)
    publish(ch, "ackm-q", numbers(10))
    c = node.connect().channel()
    tags = [c.basic_get("ackm-q")[0].delivery_tag for _ in range(7)]
    c.basic_ack(tags[5], multiple=True)  # 1..6
    c.queue_declare("ackm-q", passive=True)
    node.restart()
    got = drain_flagged(node.channel(), "ackm-q")
    assert got == [(b"7", True), (b"8", False), (b"9", False), (b"10", False)]


def test_basic_get_acked_messages_do_not_come_back(node):
    ch = node.channel()
    ch.queue_declare("get-q", durable=True)
    publish(ch, "get-q", numbers(6))
    c = node.connect().channel()
    assert c.basic_get("get-q", auto_ack=True)[2] == b"1"  # auto-ack
    m, _, b = c.basic_get("get-q", auto_ack=False)
    assert b == b"2"
    c.basic_ack(m.delivery_tag)  # manual ack
    c.queue_declare("get-q", passive=True)
    node.restart()
    assert drain(node.channel(), "get-q") == numbers(4, start=3)


def test_nack_and_reject_without_requeue_do_not_come_back(node):
    ch = node.channel()
    ch.queue_declare("nack-q", durable=True)
    publish(ch, "nack-q", numbers(6))
    c = node.connect().channel()
    m1 = c.basic_get("nack-q")[0]
    m2 = c.basic_get("nack-q")[0]
    m3 = c.basic_get("nack-q")[0]
    c.basic_nack(m1.delivery_tag, requeue=False)
    c.basic_reject(m2.delivery_tag, requeue=False)
    c.basic_nack(m3.delivery_tag, multiple=True, requeue=False)  # nothing left before it but 3
    c.queue_declare("nack-q", passive=True)
    node.restart()
    assert drain(node.channel(), "nack-q") == numbers(3, start=4)


def test_dead_lettered_persistent_message_moves_durably(node):
    ch = node.channel()
    ch.exchange_declare("dlx", "fanout", durable=True)
    ch.queue_declare("dlx-q", durable=True)
    ch.queue_bind("dlx-q", "dlx")
    ch.queue_declare("dl-src", durable=True, arguments={"x-dead-letter-exchange": "dlx"})
    publish(ch, "dl-src", numbers(3))
    c = node.connect().channel()
    m = c.basic_get("dl-src")[0]
    c.basic_reject(m.delivery_tag, requeue=False)  # 1 -> dlx-q
    assert c.queue_declare("dlx-q", passive=True).method.message_count == 1
    node.restart()
    ch = node.channel()
    assert drain(ch, "dl-src") == [b"2", b"3"]
    m, p, b = ch.basic_get("dlx-q", auto_ack=True)
    assert b == b"1"
    assert p.headers["x-death"][0]["queue"] == "dl-src"


def test_max_length_drops_are_durable(node):
    ch = node.channel()
    ch.queue_declare("ml-q", durable=True, arguments={"x-max-length": 3})
    publish(ch, "ml-q", numbers(5))
    node.restart()
    assert drain(node.channel(), "ml-q") == numbers(3, start=3)


def test_tx_publish_rollback_does_not_persist(node):
    ch = node.channel(confirm=False)
    ch.queue_declare("txp-q", durable=True)
    ch.tx_select()
    publish(ch, "txp-q", [b"rolled-back-1", b"rolled-back-2"])
    ch.tx_rollback()
    publish(ch, "txp-q", [b"committed"])
    ch.tx_commit()
    publish(ch, "txp-q", [b"never-committed"])  # pending at the stop
    node.restart()
    assert drain_flagged(node.channel(), "txp-q") == [(b"committed", False)]


def test_tx_acks_commit_persists_and_rollback_does_not(node):
    ch = node.channel()
    ch.queue_declare("txa-q", durable=True)
    publish(ch, "txa-q", numbers(4))
    c = node.connect().channel()
    c.tx_select()
    m1 = c.basic_get("txa-q")[0]
    m2 = c.basic_get("txa-q")[0]
    c.basic_ack(m1.delivery_tag)
    c.tx_commit()  # 1 acked for good
    c.basic_ack(m2.delivery_tag)
    c.tx_rollback()  # 2 stays unacked (delivered)
    m3 = c.basic_get("txa-q")[0]
    c.basic_ack(m3.delivery_tag)  # 3: ack pending in an uncommitted transaction at the stop
    node.restart()
    got = drain_flagged(node.channel(), "txa-q")
    assert got == [(b"2", True), (b"3", True), (b"4", False)]


def test_many_restarts_keep_everything(node):
    ch = node.channel()
    ch.queue_declare("many-q", durable=True, arguments={"x-max-length": 1000})
    for i in range(5):
        publish(node.channel(), "many-q", numbers(10, start=10 * i + 1))
        node.restart()
    ch = node.channel()
    ch.queue_declare("many-q", durable=True, arguments={"x-max-length": 1000})
    assert drain(ch, "many-q") == numbers(50)
