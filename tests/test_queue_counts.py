"""How many messages a queue holds, asked every way AMQP can ask it, once some have expired.

An expired message is gone for consumers the moment it is dead-lettered; every answer that
counts ready messages (queue.delete if-empty, delete-ok and purge-ok counts, declare-ok,
get-ok / get-empty, the x-max-length / x-max-length-bytes limits) must agree with what a
consumer can still receive. The expired messages here are always at the head of their queue,
where RabbitMQ expires them too, so every expectation holds on the reference server as well
(checked against RabbitMQ 3.10.8 with AMQP_REFERENCE_URL).
"""

from __future__ import annotations

import pika.exceptions
import pytest

from helpers.dlx import env  # noqa: F401 - pytest fixture

pytestmark = pytest.mark.timeout(60)

SHORT = "300"  # ms: the `expiration` of the messages that are meant to die


def expiring_queue(env, prefix: str, args: dict | None = None) -> tuple[str, str]:
    """A queue whose expired messages are dead-lettered into a queue of their own: (queue,
    dead-letter queue). Its own TTL is long: only the messages' `expiration` matters."""
    dlx, dlq = env.dlx_pair(f"{prefix}-dl")
    q = env.queue(prefix, {"x-message-ttl": 60000, "x-dead-letter-exchange": dlx, **(args or {})})
    return q, dlq


def publish_expired(env, q: str, dlq: str, count: int = 1) -> None:
    """`count` messages that expire at the head of `q`, returning once all are dead-lettered."""
    for i in range(count):
        env.publish("", q, b"dies-%d" % i, expiration=SHORT)
    assert env.wait_count(dlq, count) == count, "not dead-lettered"


def test_delete_if_empty_accepts_a_queue_whose_messages_all_expired(env):
    q, dlq = expiring_queue(env, "ifempty-expired")
    env.publish("", q, b"m", expiration="500")
    assert env.wait_count(dlq, 1) == 1
    assert env.count(q) == 0
    ok = env.ch.queue_delete(q, if_empty=True)
    assert ok.method.message_count == 0
    assert not env.exists(q)


def test_delete_if_empty_refuses_a_live_message_behind_expired_ones(env):
    q, dlq = expiring_queue(env, "ifempty-live")
    publish_expired(env, q, dlq, 2)  # nobody consumes: they die at the head, one by one
    env.publish("", q, b"live")
    err = env.channel_error(lambda c: c.queue_delete(q, if_empty=True))
    assert (err.reply_code, err.reply_text) == (
        406, f"PRECONDITION_FAILED - queue '{q}' in vhost '/' not empty")
    assert env.ch.queue_delete(q).method.message_count == 1


def test_declare_get_and_purge_count_only_live_messages(env):
    q, dlq = expiring_queue(env, "counts")
    publish_expired(env, q, dlq, 3)
    for body in (b"a", b"b", b"c"):
        env.publish("", q, body)
    assert env.ch.queue_declare(q, passive=True).method.message_count == 3
    method, _props, body = env.ch.basic_get(q, auto_ack=True)
    assert (body, method.message_count) == (b"a", 2)
    assert env.ch.queue_purge(q).method.message_count == 2
    assert env.ch.basic_get(q, auto_ack=True) == (None, None, None)


def test_get_empty_when_every_message_expired(env):
    q, dlq = expiring_queue(env, "getempty")
    publish_expired(env, q, dlq, 2)
    assert env.ch.basic_get(q, auto_ack=True) == (None, None, None)
    assert env.ch.queue_purge(q).method.message_count == 0


def test_expired_messages_do_not_count_towards_max_length(env):
    q, dlq = expiring_queue(env, "maxlen", {"x-max-length": 2, "x-overflow": "reject-publish"})
    publish_expired(env, q, dlq, 2)  # the queue was full; now it is empty
    env.publish("", q, b"a")
    env.publish("", q, b"b")
    with pytest.raises(pika.exceptions.NackError):
        env.publish("", q, b"c")
    assert env.bodies(q) == [b"a", b"b"]


def test_expired_messages_do_not_count_towards_max_length_bytes(env):
    q, dlq = expiring_queue(env, "maxbytes", {"x-max-length-bytes": 20})
    publish_expired(env, q, dlq, 2)  # 2 x 6 bytes, gone
    env.publish("", q, b"0123456789")
    env.publish("", q, b"abcdefghij")  # exactly at the limit: drop-head drops nothing
    assert env.count(q) == 2
    assert env.count(dlq) == 2
    assert env.bodies(q) == [b"0123456789", b"abcdefghij"]
