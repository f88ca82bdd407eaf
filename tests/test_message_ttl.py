"""Message TTL (per queue and per message), as RabbitMQ 3.10 does it (reference doc §2-§3).

Every expectation was checked against a real RabbitMQ 3.10.8 (AMQP_REFERENCE_URL); see
test_ttl_dlx.py for the facts recorded there that the reference doc does not spell out.
"""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

from helpers.broker import REFERENCE
from helpers.dlx import assert_entry, consume_until, dl_get, xdeath_entries
from helpers.dlx import env  # noqa: F401 - pytest fixture
from helpers.pika_client import connect, settle
from helpers.wait import wait_until

pytestmark = pytest.mark.timeout(60)


# ============================================================================================
# TTL


@pytest.mark.parametrize("queue_ttl,msg_ttl", [(200, "60000"), (60000, "200")])
def test_smaller_ttl_wins(env, queue_ttl, msg_ttl):
    dlx, dlq = env.dlx_pair()
    q = env.queue("minttl", {"x-message-ttl": queue_ttl, "x-dead-letter-exchange": dlx})
    c = connect(env.url)
    try:
        cch = c.channel()
        t0 = time.monotonic()
        env.publish("", q, b"m", expiration=msg_ttl)
        # The 200 ms TTL wins over the 60 s one: "m" is dead-lettered before a 1 s marker
        # published after it. Both deadlines run on the broker's clock, so the order holds on
        # any machine; the wait is only a hang guard (no upper time bound).
        env.publish("", env.marker_queue(dlx, 1000), b"marker")
        got = consume_until(c, cch, dlq, n=2)
        assert [g[2] for g in got] == [b"m", b"marker"]
        elapsed = got[0][3] - t0
        assert elapsed >= 0.15, elapsed  # not before its TTL
    finally:
        c.close()


def test_ttl_zero_delivered_to_ready_consumer(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("ttl0c", {"x-message-ttl": 0, "x-dead-letter-exchange": dlx})
    c = connect(env.url)
    try:
        cch = c.channel()
        got = []
        cch.basic_consume(q, lambda ch, m, p, b: got.append(b), auto_ack=True)
        env.publish("", q, b"now")
        assert wait_until(lambda: (c.process_data_events(0) or True) and got)
    finally:
        c.close()
    assert got == [b"now"]
    time.sleep(0.1)
    assert env.count(dlq) == 0


def test_ttl_zero_without_consumer_expires_and_dead_letters(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("ttl0", {"x-message-ttl": 0, "x-dead-letter-exchange": dlx})
    env.publish("", q, b"late")
    assert env.get(q)[0] is None
    msg = dl_get(env, dlq)
    assert msg.body == b"late"
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange="", routing_keys=[q])
    assert env.count(q) == 0


def test_ttl_zero_with_blocked_consumer_expires(env):
    """The only consumer is at its prefetch limit: the message cannot be delivered now."""
    dlx, dlq = env.dlx_pair()
    q = env.queue("ttl0b", {"x-message-ttl": 0, "x-dead-letter-exchange": dlx})
    c = connect(env.url)
    try:
        cch = c.channel()
        cch.basic_qos(prefetch_count=1)
        got = []
        cch.basic_consume(q, lambda ch, m, p, b: got.append(b), auto_ack=False)
        env.publish("", q, b"first")
        assert wait_until(lambda: (c.process_data_events(0) or True) and got)
        env.publish("", q, b"second")
        msg = dl_get(env, dlq)
        assert msg.body == b"second"
        settle(c, 0.1)
        assert got == [b"first"]
    finally:
        c.close()


def test_message_expiration_zero_expires_on_arrival(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("exp0", {"x-dead-letter-exchange": dlx})
    env.publish("", q, b"zero", expiration="0")
    assert env.get(q)[0] is None
    msg = dl_get(env, dlq)
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange="", routing_keys=[q],
                 original_expiration="0")


def test_requeued_message_keeps_original_expiry(env):
    """ttl 300, fetched, held past its expiry, nacked with requeue: dead-lettered, not
    redelivered."""
    dlx, dlq = env.dlx_pair()
    q = env.queue("rqexp", {"x-dead-letter-exchange": dlx})
    env.publish("", q, b"stale", expiration="300")
    method, _p, body = env.get(q, auto_ack=False)
    assert body == b"stale"
    time.sleep(0.45)
    env.ch.basic_nack(method.delivery_tag, requeue=True)
    msg = dl_get(env, dlq)
    assert msg.body == b"stale"
    (entry,) = xdeath_entries(msg)
    assert_entry(entry, count=1, reason="expired", queue=q, exchange="", routing_keys=[q],
                 original_expiration="300")
    assert env.get(q)[0] is None


def test_requeued_message_keeps_queue_ttl_expiry(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("rqqttl", {"x-message-ttl": 300, "x-dead-letter-exchange": dlx})
    env.publish("", q, b"stale")
    method, _p, _b = env.get(q, auto_ack=False)
    time.sleep(0.45)
    env.ch.basic_reject(method.delivery_tag, requeue=True)
    msg = dl_get(env, dlq)
    assert msg.body == b"stale"
    assert env.get(q)[0] is None


def test_requeue_before_expiry_does_not_restart_the_clock(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("rqclock", {"x-dead-letter-exchange": dlx})
    c = connect(env.url)
    try:
        cch = c.channel()
        marker = env.marker_queue(dlx, 800)
        t0 = time.monotonic()
        env.publish("", q, b"clock", expiration="1000")
        method, _p, _b = env.get(q, auto_ack=False)
        time.sleep(0.35)
        env.ch.basic_nack(method.delivery_tag, requeue=True)
        # A marker taken by the broker after the nack, with an 800 ms TTL: it is due at least
        # 0.35 - 0.2 s after "clock"'s original deadline (publish + 1 s), but before a clock
        # restarted by the requeue (nack + 1 s) unless the broker took 0.2 s between the nack
        # and the marker. So the order tells, without an upper time bound.
        env.publish("", marker, b"marker")
        got = consume_until(c, cch, dlq, n=2)
        assert [g[2] for g in got] == [b"clock", b"marker"]
        elapsed = got[0][3] - t0
        assert elapsed >= 0.95, elapsed  # not before its TTL
    finally:
        c.close()


def test_expired_messages_are_never_delivered(env):
    q = env.queue("never", {"x-message-ttl": 150})
    env.publish("", q, b"1")
    env.publish("", q, b"2", expiration="60000")
    time.sleep(0.3)
    c = connect(env.url)
    try:
        got = consume_until(c, c.channel(), q, n=1, timeout=0.5)
    finally:
        c.close()
    assert got == []


def test_expired_message_behind_live_one_is_skipped(env):
    """B (expired) sits behind A (alive): fetching A then asking again finds nothing."""
    q = env.queue("skip")
    env.publish("", q, b"A", expiration="60000")
    env.publish("", q, b"B", expiration="100")
    time.sleep(0.3)
    assert env.bodies(q) == [b"A"]


def test_per_message_ttl_behind_longer_one(env):
    """RabbitMQ's caveat: a message whose TTL ran out is removed / dead-lettered only when it
    reaches the head of the queue. OUR broker is specified to do better and dead-letter it on
    time. The two branches below are intentionally different."""
    dlx, dlq = env.dlx_pair()
    q = env.queue("behind", {"x-dead-letter-exchange": dlx})
    c = connect(env.url)
    try:
        cch = c.channel()
        env.publish("", q, b"A", expiration="60000")
        t0 = time.monotonic()
        env.publish("", q, b"B", expiration="500")
        if REFERENCE:
            # REFERENCE (RabbitMQ 3.10): B waits behind A, not dead-lettered, still counted.
            got = consume_until(c, cch, dlq, timeout=1.5)
            assert got == []
            assert env.count(q) == 2
            # once A leaves the head, B is dropped at once (dead-lettered), never delivered
            method, _p, body = env.get(q)
            assert body == b"A"
            got = consume_until(c, cch, dlq)
            assert [g[2] for g in got] == [b"B"]
        else:
            # OURS: B is dead-lettered on time although A is still at the head: before a
            # 1 s marker published after it (an order, not an upper time bound).
            env.publish("", env.marker_queue(dlx, 1000), b"marker")
            got = consume_until(c, cch, dlq, n=2)
            assert [g[2] for g in got] == [b"B", b"marker"]
            elapsed = got[0][3] - t0
            assert elapsed >= 0.45, elapsed  # not before its TTL
            assert env.count(q) == 1
            assert env.get(q)[2] == b"A"
    finally:
        c.close()


@pytest.mark.parametrize("expiration,reason", [
    ("abc", "no_integer"),
    ("", "no_integer"),
    (" 100", "no_integer"),
    ("-1", "{value_negative,-1}"),
    ("1.5", '{leftover_string,".5"}'),
])
def test_invalid_expiration_is_channel_error(env, expiration, reason):
    q = env.queue("badexp")
    exc = env.channel_error(lambda ch: ch.basic_publish(
        "", q, b"x", pika.BasicProperties(expiration=expiration)) or ch.queue_declare(
        q, passive=True))
    assert exc.reply_code == 406
    assert exc.reply_text == f"PRECONDITION_FAILED - invalid expiration '{expiration}': {reason}"


@pytest.mark.parametrize("args,key,reason", [
    ({"x-message-ttl": -1}, "x-message-ttl", "{value_negative,-1}"),
    ({"x-message-ttl": 315_360_000_001}, "x-message-ttl", "{value_too_large,315360000001}"),
    ({"x-message-ttl": "1"}, "x-message-ttl", '"expected integer, got longstr"'),
    ({"x-expires": 0}, "x-expires", "{value_zero,0}"),
    ({"x-expires": -5}, "x-expires", "{value_negative,-5}"),
    ({"x-dead-letter-routing-key": "k"}, "x-dead-letter-routing-key",
     "routing_key_but_no_dlx_defined"),
    ({"x-dead-letter-exchange": "a", "x-dead-letter-routing-key": 5},
     "x-dead-letter-routing-key", "{unacceptable_type,signedint}"),
])
def test_invalid_ttl_and_dlx_arguments(env, args, key, reason):
    q = env.name("badarg")
    exc = env.channel_error(lambda ch: ch.queue_declare(q, arguments=args))
    assert exc.reply_code == 406
    assert exc.reply_text == (
        f"PRECONDITION_FAILED - invalid arg '{key}' for queue '{q}' in vhost '/': {reason}")
    assert not env.exists(q)


def test_invalid_dead_letter_exchange_type(env):
    q = env.name("baddlx")
    exc = env.channel_error(
        lambda ch: ch.queue_declare(q, arguments={"x-dead-letter-exchange": 5}))
    assert exc.reply_code == 406
    assert exc.reply_text == (f"PRECONDITION_FAILED - invalid type 'signedint' for arg "
                              f"'x-dead-letter-exchange' in queue '{q}' in vhost '/'")


def test_max_message_ttl_is_accepted(env):
    q = env.queue("maxttl", {"x-message-ttl": 315_360_000_000})
    env.publish("", q, b"x")
    assert env.count(q) == 1
