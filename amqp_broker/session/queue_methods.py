"""The queue class: declare, bind, unbind, purge, delete (rules in vhost.py), plus the direct
reply-to pseudo queue's declare."""
from __future__ import annotations

from pamqp import commands as C

from .. import errors
from ..access import CONFIGURE, QUEUE, READ, named_exchange
from ..vhost import REPLY_TO, REPLY_TO_PREFIX, server_named_queue



def queue_declare(ch, obj) -> None:
    name = obj.queue
    if name == REPLY_TO:
        if not obj.nowait:
            ch.send(C.Queue.DeclareOk, queue=name, message_count=0, consumer_count=1)
        return
    if obj.passive and name.startswith(REPLY_TO_PREFIX):
        if name[len(REPLY_TO_PREFIX):] in ch.session.broker.reply_channels:
            if not obj.nowait:
                ch.send(C.Queue.DeclareOk, queue=name, message_count=0, consumer_count=1)
            return
        raise errors.not_found("queue", name, ch.vhost.name)
    if not obj.passive:
        _check_declare(ch, name, obj.arguments.plain)
    queue, messages, consumers = ch.vhost.declare_queue(
        name, obj.passive, obj.durable, obj.exclusive, obj.auto_delete,
        obj.arguments, ch.session,  # an Arguments value: the codec keeps declare arguments typed
    )
    ch.last_queue = queue.name
    if not obj.nowait:
        ch.send(C.Queue.DeclareOk, queue=queue.name, message_count=messages, consumer_count=consumers)


def _check_declare(ch, name: str, arguments: dict) -> None:
    """Configure on the queue (RabbitMQ checks a server-named queue under its generated name:
    a fresh one stands in for the name declare_queue generates, both equally random)."""
    if name.startswith("amq."):
        return  # refused for its reserved prefix before the permission check
    if not name:
        name = server_named_queue()
    new = name not in ch.vhost.queues
    ch.session.access.check_queue_declare(name, named_exchange(arguments, "x-dead-letter-exchange") if new else None)


def _binding_key(ch, obj) -> tuple[str, str]:
    queue = ch.queue_name(obj.queue)
    return queue, obj.routing_key if (obj.routing_key or obj.queue) else queue


def queue_bind(ch, obj) -> None:
    queue, routing_key = _binding_key(ch, obj)
    ch.session.access.check_binding(obj.exchange, queue, True)
    ch.vhost.bind(obj.exchange, queue, True, routing_key, obj.arguments, ch.session)
    if not obj.nowait:
        ch.send(C.Queue.BindOk)


def queue_unbind(ch, obj) -> None:
    queue, routing_key = _binding_key(ch, obj)
    ch.session.access.check_binding(obj.exchange, queue, True)
    ch.vhost.unbind(obj.exchange, queue, True, routing_key, obj.arguments, ch.session)
    ch.send(C.Queue.UnbindOk)


def queue_purge(ch, obj) -> None:
    name = ch.queue_name(obj.queue)
    ch.session.access.check(QUEUE, name, READ)
    count = ch.vhost.purge_queue(name, ch.session)
    if not obj.nowait:
        ch.send(C.Queue.PurgeOk, message_count=count)


def queue_delete(ch, obj) -> None:
    name = ch.queue_name(obj.queue)
    ch.session.access.check(QUEUE, name, CONFIGURE)
    count = ch.vhost.delete_queue(name, obj.if_unused, obj.if_empty, ch.session)
    if not obj.nowait:
        ch.send(C.Queue.DeleteOk, message_count=count)


HANDLERS = {
    C.Queue.Declare: queue_declare,
    C.Queue.Bind: queue_bind,
    C.Queue.Unbind: queue_unbind,
    C.Queue.Purge: queue_purge,
    C.Queue.Delete: queue_delete,
}
