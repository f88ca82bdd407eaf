"""Transactions (tx.select / tx.commit / tx.rollback), checked against RabbitMQ.

RabbitMQ semantics verified here:
- publishes in a transaction reach queues only at tx.commit, and are dropped by tx.rollback;
- acks / nacks / rejects in a transaction are applied only at tx.commit; tx.rollback forgets
  them, and the messages simply stay unacknowledged (not requeued) - they can be acked again;
- mandatory returns for unroutable messages are sent at commit time, before tx.commit-ok;
- a channel stays transactional after commit/rollback.
"""
from __future__ import annotations

import aio_pika
import aio_pika.exceptions
import pika
import pika.exceptions
import pytest

from helpers.pika_client import conn, queue  # noqa: F401 - pytest fixtures
from helpers.pika_client import connect, drain_flagged, publish_numbers, pump, ready_count, settle, wait_ready

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------
# publishing
# --------------------------------------------------------------------------------------------

def test_tx_select_commit_rollback_ok(conn):
    ch = conn.channel()
    assert isinstance(ch.tx_select().method, pika.spec.Tx.SelectOk)
    assert isinstance(ch.tx_commit().method, pika.spec.Tx.CommitOk)
    assert isinstance(ch.tx_rollback().method, pika.spec.Tx.RollbackOk)
    assert isinstance(ch.tx_select().method, pika.spec.Tx.SelectOk)  # idempotent


def test_published_messages_invisible_until_commit(conn, queue):
    q = queue()
    tx = conn.channel()
    tx.tx_select()
    publish_numbers(tx, q, 3)
    observer = conn.channel()
    settle(conn, 0.2)
    assert ready_count(observer, q) == 0
    assert observer.basic_get(q)[0] is None
    tx.tx_commit()
    assert ready_count(observer, q) == 3
    assert drain_flagged(observer, q) == [(b"1", False), (b"2", False), (b"3", False)]


def test_rollback_discards_published_messages(conn, queue):
    q = queue()
    tx = conn.channel()
    tx.tx_select()
    publish_numbers(tx, q, 3)
    tx.tx_rollback()
    tx.basic_publish("", q, b"after-rollback")
    tx.tx_commit()
    observer = conn.channel()
    assert drain_flagged(observer, q) == [(b"after-rollback", False)]


def test_channel_stays_transactional_after_commit(conn, queue):
    q = queue()
    tx = conn.channel()
    tx.tx_select()
    tx.basic_publish("", q, b"first")
    tx.tx_commit()
    tx.basic_publish("", q, b"second")
    observer = conn.channel()
    settle(conn, 0.2)
    assert ready_count(observer, q) == 1
    tx.tx_commit()
    assert ready_count(observer, q) == 2


def test_uncommitted_publishes_dropped_when_channel_closes(conn, queue):
    q = queue()
    tx = conn.channel()
    tx.tx_select()
    publish_numbers(tx, q, 2)
    tx.close()
    observer = conn.channel()
    settle(conn, 0.2)
    assert ready_count(observer, q) == 0


def test_uncommitted_publishes_dropped_when_connection_closes(amqp_url, conn, queue):
    q = queue()
    other = connect(amqp_url)
    tx = other.channel()
    tx.tx_select()
    publish_numbers(tx, q, 2)
    other.close()
    settle(conn, 0.2)
    assert ready_count(conn.channel(), q) == 0


def test_commit_preserves_publish_order_across_queues(conn, queue):
    q1, q2 = queue(), queue()
    tx = conn.channel()
    tx.tx_select()
    for i in range(1, 21):
        tx.basic_publish("", q1 if i % 2 else q2, str(i).encode())
    tx.tx_commit()
    observer = conn.channel()
    assert [int(b) for b, _ in drain_flagged(observer, q1)] == list(range(1, 21, 2))
    assert [int(b) for b, _ in drain_flagged(observer, q2)] == list(range(2, 21, 2))


def test_mandatory_return_sent_at_commit_before_commit_ok(amqp_url, uid):
    events: list = []

    def on_open(c):
        c.channel(on_open_callback=on_channel)

    def on_channel(ch):
        ch.add_on_return_callback(lambda _c, m, p, b: events.append(("return", m.reply_code, m.reply_text, b)))

        def commit():
            events.append("commit")
            ch.tx_commit(callback=lambda _f: (events.append("commit-ok"), conn.close()))

        def on_select(_f):
            ch.basic_publish("", f"nowhere-{uid}", b"lost", mandatory=True)
            conn.ioloop.call_later(0.3, commit)  # no return before the commit

        ch.tx_select(callback=on_select)

    conn = pika.SelectConnection(pika.URLParameters(amqp_url), on_open_callback=on_open,
                                 on_close_callback=lambda c, r: c.ioloop.stop())
    conn.ioloop.call_later(5, lambda: conn.is_open and conn.close())
    conn.ioloop.start()
    assert events == ["commit", ("return", 312, "NO_ROUTE", b"lost"), "commit-ok"]


def test_rolled_back_mandatory_publish_is_not_returned(amqp_url, uid):
    events: list = []

    def on_open(c):
        c.channel(on_open_callback=on_channel)

    def on_channel(ch):
        ch.add_on_return_callback(lambda *a: events.append("return"))

        def on_select(_f):
            ch.basic_publish("", f"nowhere-{uid}", b"lost", mandatory=True)
            ch.tx_rollback(callback=lambda _f: (events.append("rollback-ok"),
                                                conn.ioloop.call_later(0.2, conn.close)))

        ch.tx_select(callback=on_select)

    conn = pika.SelectConnection(pika.URLParameters(amqp_url), on_open_callback=on_open,
                                 on_close_callback=lambda c, r: c.ioloop.stop())
    conn.ioloop.call_later(5, lambda: conn.is_open and conn.close())
    conn.ioloop.start()
    assert events == ["rollback-ok"]


# --------------------------------------------------------------------------------------------
# acknowledgements
# --------------------------------------------------------------------------------------------

def test_ack_in_tx_not_applied_before_commit(conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 2)
    tx = conn.channel()
    tx.tx_select()
    m1 = tx.basic_get(q)[0]
    tx.basic_get(q)
    tx.basic_ack(m1.delivery_tag)
    tx.close()  # never committed: both come back
    assert wait_ready(pub, q, 2) == 2
    assert drain_flagged(pub, q) == [(b"1", True), (b"2", True)]


def test_ack_in_tx_applied_on_commit(conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 2)
    tx = conn.channel()
    tx.tx_select()
    m1 = tx.basic_get(q)[0]
    tx.basic_get(q)
    tx.basic_ack(m1.delivery_tag)
    tx.tx_commit()
    tx.close()
    assert wait_ready(pub, q, 1) == 1
    assert drain_flagged(pub, q) == [(b"2", True)]


def test_rolled_back_ack_leaves_message_unacked_not_requeued(conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 3)
    tx = conn.channel()
    tx.tx_select()
    m1 = tx.basic_get(q)[0]
    m2 = tx.basic_get(q)[0]
    tx.basic_ack(m1.delivery_tag)
    tx.tx_rollback()
    settle(conn, 0.2)
    assert ready_count(pub, q) == 1  # only "3": the rolled-back ack did not requeue "1"
    # the delivery tag is still valid: ack it again and commit
    tx.basic_ack(m1.delivery_tag)
    tx.tx_commit()
    tx.close()
    # "1" acked for good, "2" (never acked) comes back
    assert wait_ready(pub, q, 2) == 2
    assert drain_flagged(pub, q) == [(b"2", True), (b"3", False)]
    assert m2.delivery_tag == 2


def test_ack_multiple_in_tx(conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 4)
    tx = conn.channel()
    tx.tx_select()
    for _ in range(4):
        tx.basic_get(q)
    tx.basic_ack(3, multiple=True)
    tx.tx_commit()
    tx.close()
    assert wait_ready(pub, q, 1) == 1
    assert drain_flagged(pub, q) == [(b"4", True)]


def test_reject_requeue_in_tx_applied_on_commit(conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 2)
    tx = conn.channel()
    tx.tx_select()
    m1 = tx.basic_get(q)[0]
    tx.basic_reject(m1.delivery_tag, requeue=True)
    settle(conn, 0.2)
    assert ready_count(pub, q) == 1  # not requeued yet
    tx.tx_commit()
    assert wait_ready(pub, q, 2) == 2
    assert drain_flagged(pub, q) == [(b"1", True), (b"2", False)]


def test_nack_requeue_false_in_tx_rolled_back_keeps_message(conn, queue):
    q = queue()
    pub = conn.channel()
    publish_numbers(pub, q, 1)
    tx = conn.channel()
    tx.tx_select()
    m1 = tx.basic_get(q)[0]
    tx.basic_nack(m1.delivery_tag, requeue=False)
    tx.tx_rollback()
    tx.close()  # still unacked -> requeued by the close
    assert wait_ready(pub, q, 1) == 1
    assert drain_flagged(pub, q) == [(b"1", True)]


def test_consumer_acks_in_tx(conn, queue):
    q = queue()
    tx = conn.channel()
    tx.tx_select()
    got = []
    tx.basic_consume(q, lambda c, m, p, b: got.append(m))
    pub = conn.channel()
    publish_numbers(pub, q, 3)
    pump(conn, lambda: len(got) >= 3)
    assert len(got) == 3
    tx.basic_ack(got[-1].delivery_tag, multiple=True)
    tx.tx_commit()
    tx.close()
    settle(conn, 0.2)
    assert ready_count(pub, q) == 0


def test_publish_and_ack_in_one_transaction(conn, queue):
    """The classic 'consume-transform-produce' step: ack input and publish output atomically."""
    q_in, q_out = queue(), queue()
    pub = conn.channel()
    pub.basic_publish("", q_in, b"input")
    tx = conn.channel()
    tx.tx_select()
    m, _, body = tx.basic_get(q_in)
    tx.basic_publish("", q_out, body.upper())
    tx.basic_ack(m.delivery_tag)
    settle(conn, 0.1)
    assert ready_count(pub, q_out) == 0
    tx.tx_commit()
    tx.close()
    assert drain_flagged(pub, q_out) == [(b"INPUT", False)]
    settle(conn, 0.1)
    assert ready_count(pub, q_in) == 0


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["tx_commit", "tx_rollback"])
def test_commit_or_rollback_without_select_fails(conn, method):
    ch = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        getattr(ch, method)()
    assert ei.value.reply_code == 406
    assert ei.value.reply_text == "PRECONDITION_FAILED - channel is not transactional"
    assert conn.is_open


def test_tx_select_after_confirm_select_fails(conn):
    ch = conn.channel()
    ch.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.tx_select()
    assert (ei.value.reply_code, ei.value.reply_text) == \
        (406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode")


def test_confirm_select_after_tx_select_fails(conn):
    ch = conn.channel()
    ch.tx_select()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        ch.confirm_delivery()
    assert (ei.value.reply_code, ei.value.reply_text) == \
        (406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode")


def test_unknown_delivery_tag_in_tx_fails(conn):
    tx = conn.channel()
    tx.tx_select()
    tx.basic_ack(99)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        tx.tx_commit()
    assert (ei.value.reply_code, ei.value.reply_text) == (406, "PRECONDITION_FAILED - unknown delivery tag 99")


# --------------------------------------------------------------------------------------------
# aio-pika
# --------------------------------------------------------------------------------------------

async def test_aio_pika_transaction_commit_and_rollback(amqp_url, uid):
    conn = await aio_pika.connect(amqp_url)
    async with conn:
        ch = await conn.channel(publisher_confirms=False)
        q = await ch.declare_queue(f"test-tx-aio-{uid}", auto_delete=False)
        observer = await conn.channel()
        async with ch.transaction():
            await ch.default_exchange.publish(aio_pika.Message(b"committed"), routing_key=q.name)
            assert (await observer.declare_queue(q.name, passive=True)).declaration_result.message_count == 0
        assert (await observer.declare_queue(q.name, passive=True)).declaration_result.message_count == 1

        tx = ch.transaction()
        await tx.select()
        await ch.default_exchange.publish(aio_pika.Message(b"rolled-back"), routing_key=q.name)
        await tx.rollback()
        assert (await observer.declare_queue(q.name, passive=True)).declaration_result.message_count == 1
        m = await q.get(timeout=5, no_ack=True)
        assert m.body == b"committed"
        await q.delete()

