"""Consuming: basic.ack / nack / reject, requeueing of unacked messages, basic.recover.

Every expectation here was checked against a real RabbitMQ 3.x (run with AMQP_REFERENCE_URL).
"""

from __future__ import annotations

import pika
import pika.exceptions
import pytest
from pamqp import commands

from helpers.pika_client import conn, queue  # noqa: F401 - pytest fixtures
from helpers.pika_client import connect, drain_flagged, publish_numbers, pump, ready_count, settle, wait_ready
from helpers.raw_content import Raw

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------
# ack / nack / reject
# --------------------------------------------------------------------------------------------

def test_ack_single_message(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 3)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(3)]
    ch.basic_ack(tags[1])
    ch.close()
    ch = conn.channel()
    assert wait_ready(ch, q, 2) == 2
    assert drain_flagged(ch, q) == [(b"1", True), (b"3", True)]


def test_ack_multiple(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 5)
    for _ in range(5):
        ch.basic_get(q)
    ch.basic_ack(3, multiple=True)
    ch.close()
    ch = conn.channel()
    assert wait_ready(ch, q, 2) == 2
    assert drain_flagged(ch, q) == [(b"4", True), (b"5", True)]


def test_ack_multiple_with_tag_zero_acks_everything(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 4)
    for _ in range(4):
        ch.basic_get(q)
    ch.basic_ack(0, multiple=True)
    ch.close()
    ch = conn.channel()
    settle(conn, 0.2)
    assert ready_count(ch, q) == 0


def test_double_ack_is_unknown_delivery_tag(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 1)
    m, _, _ = ch.basic_get(q)
    ch.basic_ack(m.delivery_tag)
    ch.basic_ack(m.delivery_tag)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - unknown delivery tag 1"
    assert conn.is_open


def test_ack_tag_from_another_channel_is_unknown(conn, queue):
    q = queue()
    ch1 = conn.channel()
    publish_numbers(ch1, q, 1)
    ch1.basic_get(q)
    ch2 = conn.channel()
    ch2.basic_ack(1)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch2.queue_declare(q, passive=True)
    assert (ei.value.reply_code, ei.value.reply_text) == (406, "PRECONDITION_FAILED - unknown delivery tag 1")


def test_ack_of_no_ack_delivery_is_unknown_tag(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 1)
    m, _, _ = ch.basic_get(q, auto_ack=True)
    ch.basic_ack(m.delivery_tag)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.queue_declare(q, passive=True)
    assert (ei.value.reply_code, ei.value.reply_text) == (406, "PRECONDITION_FAILED - unknown delivery tag 1")


def test_reject_requeue_puts_message_back_in_original_position(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 5)
    got = [ch.basic_get(q) for _ in range(3)]
    assert [b for _, _, b in got] == [b"1", b"2", b"3"]
    ch.basic_reject(got[1][0].delivery_tag, requeue=True)
    assert wait_ready(ch, q, 3) == 3
    m, _, b = ch.basic_get(q)
    assert (b, m.redelivered, m.message_count) == (b"2", True, 2)
    m, _, b = ch.basic_get(q)
    assert (b, m.redelivered) == (b"4", False)
    m, _, b = ch.basic_get(q)
    assert (b, m.redelivered) == (b"5", False)


def test_nack_multiple_requeue_restores_original_order(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 5)
    tags = [ch.basic_get(q)[0].delivery_tag for _ in range(4)]  # 1..4 unacked, 5 ready
    ch.basic_ack(tags[1])  # "2" done
    ch.basic_nack(tags[3], multiple=True, requeue=True)  # 1, 3, 4 back
    assert wait_ready(ch, q, 4) == 4
    assert drain_flagged(ch, q) == [(b"1", True), (b"3", True), (b"4", True), (b"5", False)]


def test_requeued_messages_go_to_the_consumer_again(conn, queue):
    q = queue()
    ch = conn.channel()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((m, b)))
    publish_numbers(conn.channel(), q, 2)
    assert pump(conn, lambda: len(got) == 2)
    ch.basic_nack(got[1][0].delivery_tag, multiple=True, requeue=True)
    assert pump(conn, lambda: len(got) == 4)
    assert [(b, m.redelivered) for m, b in got] == [(b"1", False), (b"2", False), (b"1", True), (b"2", True)]
    assert [m.delivery_tag for m, _ in got] == [1, 2, 3, 4]


@pytest.mark.parametrize("how", ["reject", "nack", "nack-multiple"])
def test_requeue_false_drops_message(conn, queue, how):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 3)
    m1, _, _ = ch.basic_get(q)
    m2, _, _ = ch.basic_get(q)
    if how == "reject":
        ch.basic_reject(m2.delivery_tag, requeue=False)
    elif how == "nack":
        ch.basic_nack(m2.delivery_tag, requeue=False)
    else:
        ch.basic_nack(m2.delivery_tag, multiple=True, requeue=False)
    ch.close()
    ch = conn.channel()
    expected = [(b"3", False)] if how == "nack-multiple" else [(b"1", True), (b"3", False)]
    assert wait_ready(ch, q, len(expected)) == len(expected)
    assert drain_flagged(ch, q) == expected


# --------------------------------------------------------------------------------------------
# unacked messages come back
# --------------------------------------------------------------------------------------------

def test_unacked_messages_requeued_in_order_on_channel_close(conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 5)
    ch = conn.channel()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append(m))
    assert pump(conn, lambda: len(got) == 5)
    ch.basic_ack(got[0].delivery_tag)
    ch.close()
    assert wait_ready(pub, q, 4) == 4
    assert drain_flagged(pub, q) == [(b"2", True), (b"3", True), (b"4", True), (b"5", True)]


def test_unacked_messages_requeued_on_connection_close(amqp_url, conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 4)
    other = connect(amqp_url)
    och = other.channel()
    for _ in range(3):
        och.basic_get(q)
    other.close()
    assert wait_ready(pub, q, 4) == 4
    assert drain_flagged(pub, q) == [(b"1", True), (b"2", True), (b"3", True), (b"4", False)]


def test_unacked_messages_requeued_when_socket_drops(amqp_url, conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 2)
    r = Raw(amqp_url)
    r.open_channel(1)
    r.send(1, commands.Basic.Get(queue=q, no_ack=False))
    r.expect(1, commands.Basic.GetOk)
    r.read_content(1)
    r.sock.close()  # no connection.close handshake
    assert wait_ready(pub, q, 2) == 2
    assert drain_flagged(pub, q) == [(b"1", True), (b"2", False)]


def test_basic_recover_requeue_true_redelivers(conn, queue):
    q = queue()
    ch = conn.channel()
    publish_numbers(ch, q, 3)
    ch.basic_get(q)
    ch.basic_get(q)
    ch.basic_recover(requeue=True)
    assert wait_ready(ch, q, 3) == 3
    assert drain_flagged(ch, q) == [(b"1", True), (b"2", True), (b"3", False)]


def test_basic_recover_redelivers_to_consumer(conn, queue):
    q = queue()
    ch = conn.channel()
    got = []
    ch.basic_consume(q, lambda c, m, p, b: got.append((b, m.redelivered)))
    publish_numbers(conn.channel(), q, 2)
    assert pump(conn, lambda: len(got) == 2)
    ch.basic_recover(requeue=True)
    assert pump(conn, lambda: len(got) == 4)
    assert got == [(b"1", False), (b"2", False), (b"1", True), (b"2", True)]


def test_basic_recover_requeue_false_not_implemented(conn):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as ei:
        ch.basic_recover(requeue=False)
    assert ei.value.reply_code == 540
    assert ei.value.reply_text == "NOT_IMPLEMENTED - requeue=false"
