"""Queue expiry (x-expires), as RabbitMQ 3.10 does it (reference doc §2-§3).

Every expectation was checked against a real RabbitMQ 3.10.8 (AMQP_REFERENCE_URL). Recorded
there: a passive queue.declare and a basic.get both renew an x-expires lease.
"""

from __future__ import annotations

import time

import pytest

from helpers.pika_client import connect, settle
from helpers.dlx import env  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.timeout(60)


# ============================================================================================
# x-expires


def test_unused_queue_expires(env):
    q = env.queue("xexp", {"x-expires": 300})
    time.sleep(0.8)
    assert not env.exists(q)


def test_queue_with_consumer_does_not_expire(env):
    q = env.queue("xexpc", {"x-expires": 300})
    c = connect(env.url)
    try:
        cch = c.channel()
        tag = cch.basic_consume(q, lambda *a: None, auto_ack=True)
        settle(c, 0.8)
        assert env.exists(q)
        cch.basic_cancel(tag)
        settle(c, 0.8)
    finally:
        c.close()
    assert not env.exists(q)


def test_redeclare_renews_the_expiry_lease(env):
    q = env.queue("xexpr", {"x-expires": 500})
    time.sleep(0.3)
    env.queue("xexpr", {"x-expires": 500})
    time.sleep(0.4)  # 700 ms after the first declare, 400 ms after the redeclare
    assert env.exists(q)  # (this passive declare renews the lease too)
    time.sleep(0.9)
    assert not env.exists(q)


def test_passive_declare_renews_the_expiry_lease(env):
    q = env.queue("xexpp", {"x-expires": 400})
    for _ in range(6):
        time.sleep(0.2)
        assert env.exists(q)
    time.sleep(0.8)
    assert not env.exists(q)


def test_basic_get_renews_the_expiry_lease(env):
    q = env.queue("xexpg", {"x-expires": 400})
    for _ in range(6):
        time.sleep(0.2)
        assert env.get(q)[0] is None
    time.sleep(0.8)
    assert not env.exists(q)


def test_publishing_does_not_renew_the_expiry_lease(env):
    q = env.queue("xexppub", {"x-expires": 400})
    for _ in range(4):
        env.publish("", q, b"x")
        time.sleep(0.15)
    time.sleep(0.5)
    assert not env.exists(q)


def test_expired_queue_messages_are_not_dead_lettered(env):
    dlx, dlq = env.dlx_pair()
    q = env.queue("xexpdl", {"x-expires": 300, "x-dead-letter-exchange": dlx})
    for i in range(3):
        env.publish("", q, f"m{i}".encode())
    time.sleep(0.8)
    assert not env.exists(q)
    assert env.count(dlq) == 0
