"""basic.qos / consume / cancel / get: how messages leave queues for a channel.

Deliveries themselves are pushed by the queue (Queue.drain -> Consumer -> ChannelSession
.deliver); this module sets consumers up and takes them down.
"""
from __future__ import annotations

import base64
import os

from pamqp import commands as C

from .. import codec, errors
from ..access import QUEUE, READ
from ..consumer import Consumer
from ..errors import AMQPError, resource
from ..tables import field_type
from ..vhost import REPLY_TO


def _ctag() -> str:
    return "amq.ctag-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


def basic_qos(ch, obj) -> None:
    if obj.prefetch_size:
        raise AMQPError(errors.NOT_IMPLEMENTED, f"prefetch_size!=0 ({obj.prefetch_size})")
    if obj.global_:
        ch.global_prefetch = obj.prefetch_count
    else:
        # RabbitMQ's rabbit_limiter:unlimit_prefetch: a per-consumer qos also lifts a
        # channel-wide limit set before it
        ch.prefetch = obj.prefetch_count
        ch.global_prefetch = 0
    ch.send(C.Basic.QosOk)
    ch.drain_consumers()


def basic_consume(ch, obj) -> None:
    tag = obj.consumer_tag or _ctag()
    if tag in ch.consumers or tag == ch.reply_tag:
        raise AMQPError(errors.NOT_ALLOWED, f"attempt to reuse consumer tag '{tag}'")
    if obj.queue == REPLY_TO:
        _consume_reply_to(ch, obj, tag)
        return
    vhost = ch.vhost
    name = ch.queue_name(obj.queue)
    ch.session.access.check(QUEUE, name, READ)
    queue = vhost.get_queue(name, ch.session)
    if queue.exclusive_consumer is not None or (obj.exclusive and (queue.consumers or queue.single_active)):
        raise errors.access_refused(f"{resource('queue', queue.name, vhost.name)} in exclusive use")
    consumer = Consumer(ch, queue, tag, obj.no_ack, obj.exclusive, ch.prefetch, obj.arguments)
    priority = (obj.arguments or {}).get("x-priority")
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise errors.precondition(
                f"invalid arg 'x-priority' for {resource('queue', queue.name, vhost.name)}: "
                f'"expected integer, got {field_type(priority)}"'
            )
        consumer.priority = priority
    ch.consumers[tag] = consumer
    if not obj.nowait:
        ch.send(C.Basic.ConsumeOk, consumer_tag=tag)
    queue.add_consumer(consumer)


def _consume_reply_to(ch, obj, tag: str) -> None:
    if not obj.no_ack:
        raise errors.precondition("reply consumer cannot acknowledge")
    if ch.reply_tag is not None:
        raise errors.precondition("reply consumer already set")
    ch.reply_tag = tag
    ch.reply_key = base64.urlsafe_b64encode(os.urandom(18)).decode()
    ch.session.broker.reply_channels[ch.reply_key] = ch
    if not obj.nowait:
        ch.send(C.Basic.ConsumeOk, consumer_tag=tag)


def basic_cancel(ch, obj) -> None:
    tag = obj.consumer_tag
    consumer = ch.consumers.pop(tag, None)
    if consumer is not None:
        consumer.queue.remove_consumer(consumer)
        ch.vhost.consumer_gone(consumer.queue)
    elif tag is not None and tag == ch.reply_tag:
        ch.drop_reply_consumer()
    if not obj.nowait:
        ch.send(C.Basic.CancelOk, consumer_tag=tag)


def basic_get(ch, obj) -> None:
    name = ch.queue_name(obj.queue)
    ch.session.access.check(QUEUE, name, READ)
    queue = ch.vhost.get_queue(name, ch.session)
    entry = queue.take()
    if entry is None:
        if queue.needs_page_in:  # the head is on disk: answer once it is read back
            ch.session.suspend(ch, queue.wait_paged_in(), lambda: basic_get(ch, obj))
            return
        queue.stats_get_empty += 1
        ch.send(C.Basic.GetEmpty)
        return
    tag = ch.next_tag
    ch.next_tag = tag + 1
    if obj.no_ack:
        queue.stats_get_no_ack += 1
        queue.forget(entry)
    else:
        queue.stats_get += 1
        ch.unacked[tag] = (entry, queue, None)
    msg = entry.msg
    ch.out.send(codec.get_ok_frame(ch.number, tag, entry.redelivered, msg.xrk, queue.message_count))
    ch.out.send(msg.content(ch.number, ch.session.frame_max))


HANDLERS = {
    C.Basic.Qos: basic_qos,
    C.Basic.Consume: basic_consume,
    C.Basic.Cancel: basic_cancel,
    C.Basic.Get: basic_get,
}
