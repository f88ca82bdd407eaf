"""basic.ack / nack / reject / recover: settling deliveries a channel holds unacked."""
from __future__ import annotations

from collections import OrderedDict

from pamqp import commands as C

from .. import errors
from ..errors import AMQPError


def collect(unacked: OrderedDict, tag: int, multiple: bool) -> list[tuple]:
    """The unacked (tag, record) pairs an ack/nack/reject covers, removed from `unacked`
    (RabbitMQ's collect_acks: tag 0 with multiple means all; an unknown tag is an error)."""
    if multiple and tag == 0:
        items = list(unacked.items())
        unacked.clear()
        return items
    if tag not in unacked:
        raise errors.precondition(f"unknown delivery tag {tag}")
    if not multiple:
        return [(tag, unacked.pop(tag))]
    items = []
    while True:
        item = unacked.popitem(last=False)
        items.append(item)
        if item[0] == tag:
            return items


def settle(ch, items, requeue: bool, rejected: bool = False) -> None:
    """Apply acks or rejects. A reject without requeue discards the message (or dead-letters
    it: dead-letter exchanges are configured per queue)."""
    touched = set()
    by_queue: dict = {}
    for _tag, (entry, queue, consumer) in items:
        if consumer is not None:
            consumer.unacked -= 1
            touched.add(consumer.queue)
        if requeue:
            by_queue.setdefault(queue, []).append(entry)
        elif rejected:
            queue.reject(entry)
        else:
            queue.stats_ack += 1
            queue.forget(entry)
    for queue, entries in by_queue.items():
        queue.requeue(entries)  # drains too
    if ch.global_prefetch:
        ch.drain_consumers()
    else:
        for queue in touched:
            if queue not in by_queue:
                queue.drain()


def requeue_all(items) -> None:
    """A channel went away: its unacked deliveries go back to their queues."""
    by_queue: dict = {}
    for _tag, (entry, queue, _consumer) in items:
        by_queue.setdefault(queue, []).append(entry)
    for queue, entries in by_queue.items():
        queue.requeue(entries)


def basic_reject(ch, obj) -> None:
    _reject(ch, collect(ch.unacked, obj.delivery_tag, False), obj.requeue)


def basic_nack(ch, obj) -> None:
    _reject(ch, collect(ch.unacked, obj.delivery_tag, obj.multiple), obj.requeue)


def _reject(ch, items, requeue: bool) -> None:
    if ch.tx is not None:
        ch.tx.settle(items, rejected=True, requeue=requeue)
        return
    settle(ch, items, requeue=requeue, rejected=True)


def basic_recover(ch, obj) -> None:
    _recover(ch, obj.requeue)
    ch.send(C.Basic.RecoverOk)


def basic_recover_async(ch, obj) -> None:
    _recover(ch, obj.requeue)


def _recover(ch, requeue: bool) -> None:
    if not requeue:
        raise AMQPError(errors.NOT_IMPLEMENTED, "requeue=false")
    items = list(ch.unacked.items())
    ch.unacked.clear()
    settle(ch, items, requeue=True)


HANDLERS = {
    C.Basic.Reject: basic_reject,
    C.Basic.Nack: basic_nack,
    C.Basic.Recover: basic_recover,
    C.Basic.RecoverAsync: basic_recover_async,
}
