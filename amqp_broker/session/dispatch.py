"""Which function handles which channel method: one table built from the per-class modules
(the engine recognises basic.publish, basic.ack and content frames before this)."""
from __future__ import annotations

from pamqp import commands as C

from .. import errors
from ..errors import AMQPError
from . import confirm_tx, consuming, exchange_methods, queue_methods, settling


def channel_close(ch, obj) -> None:
    ch.close_ok()


def channel_open_again(ch, obj) -> None:
    raise AMQPError(errors.CHANNEL_ERROR, "second 'channel.open' seen")


def channel_flow(ch, obj) -> None:
    if not obj.active:
        raise AMQPError(errors.NOT_IMPLEMENTED, "active=false")
    ch.send(C.Channel.FlowOk, active=True)


def _ignore(ch, obj) -> None:
    return None


HANDLERS = {
    C.Channel.Close: channel_close,
    C.Channel.Flow: channel_flow,
    C.Channel.FlowOk: _ignore,
    C.Channel.Open: channel_open_again,
    **exchange_methods.HANDLERS,
    **queue_methods.HANDLERS,
    **consuming.HANDLERS,
    **settling.HANDLERS,
    **confirm_tx.HANDLERS,
}
