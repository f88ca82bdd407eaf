"""The exchange class: declare, delete, bind, unbind (rules in vhost.py)."""
from __future__ import annotations

from pamqp import commands as C

from ..access import CONFIGURE, EXCHANGE, named_exchange
from ..exchanges import EXCHANGE_TYPES


def exchange_declare(ch, obj) -> None:
    name = obj.exchange
    # RabbitMQ checks the type and refuses the default exchange before the permission
    if not obj.passive and name and obj.exchange_type in EXCHANGE_TYPES:
        vhost = ch.vhost
        alternate = None if name in vhost.exchanges else named_exchange(obj.arguments.plain, "alternate-exchange")
        ch.session.access.check_exchange_declare(name, alternate)
    ch.vhost.declare_exchange(
        obj.exchange, obj.exchange_type, obj.passive, obj.durable, obj.auto_delete,
        obj.internal, obj.arguments,  # an Arguments value: the codec keeps declare arguments typed
    )
    if not obj.nowait:
        ch.send(C.Exchange.DeclareOk)


def exchange_delete(ch, obj) -> None:
    name = obj.exchange
    if name and not name.startswith("amq."):  # those are refused before the permission check
        ch.session.access.check(EXCHANGE, name, CONFIGURE)
    ch.vhost.delete_exchange(obj.exchange, obj.if_unused)
    if not obj.nowait:
        ch.send(C.Exchange.DeleteOk)


def exchange_bind(ch, obj) -> None:
    ch.session.access.check_binding(obj.source, obj.destination, False)
    ch.vhost.bind(obj.source, obj.destination, False, obj.routing_key, obj.arguments, ch.session)
    if not obj.nowait:
        ch.send(C.Exchange.BindOk)


def exchange_unbind(ch, obj) -> None:
    ch.session.access.check_binding(obj.source, obj.destination, False)
    ch.vhost.unbind(obj.source, obj.destination, False, obj.routing_key, obj.arguments, ch.session)
    if not obj.nowait:
        ch.send(C.Exchange.UnbindOk)


HANDLERS = {
    C.Exchange.Declare: exchange_declare,
    C.Exchange.Delete: exchange_delete,
    C.Exchange.Bind: exchange_bind,
    C.Exchange.Unbind: exchange_unbind,
}
