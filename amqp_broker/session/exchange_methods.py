"""The exchange class: declare, delete, bind, unbind (rules in vhost.py)."""
from __future__ import annotations

from pamqp import commands as C


def exchange_declare(ch, obj) -> None:
    ch.vhost.declare_exchange(
        obj.exchange, obj.exchange_type, obj.passive, obj.durable, obj.auto_delete,
        obj.internal, obj.arguments,  # an Arguments value: the codec keeps declare arguments typed
    )
    if not obj.nowait:
        ch.send(C.Exchange.DeclareOk)


def exchange_delete(ch, obj) -> None:
    ch.vhost.delete_exchange(obj.exchange, obj.if_unused)
    if not obj.nowait:
        ch.send(C.Exchange.DeleteOk)


def exchange_bind(ch, obj) -> None:
    ch.vhost.bind(obj.source, obj.destination, False, obj.routing_key, obj.arguments, ch.session)
    if not obj.nowait:
        ch.send(C.Exchange.BindOk)


def exchange_unbind(ch, obj) -> None:
    ch.vhost.unbind(obj.source, obj.destination, False, obj.routing_key, obj.arguments, ch.session)
    if not obj.nowait:
        ch.send(C.Exchange.UnbindOk)


HANDLERS = {
    C.Exchange.Declare: exchange_declare,
    C.Exchange.Delete: exchange_delete,
    C.Exchange.Bind: exchange_bind,
    C.Exchange.Unbind: exchange_unbind,
}
