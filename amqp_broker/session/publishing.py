"""A client's publish, once its content is complete: the checks RabbitMQ makes, then the one
publish path (amqp_broker/publish.py), then what the outcome means for this channel —
basic.return, a publisher confirm now, or a confirm held until the store's commit.

Checked in rabbit_channel's order: write permission (403), exchange (404, 403), the property
list (undecodable: 541), fast reply-to, user-id, expiration, delivery-mode.
"""
from __future__ import annotations

from .. import errors
from ..errors import resource
from ..message import Message
from ..properties import REPLY_TO as PROP_REPLY_TO
from ..properties import Properties, PropertyError, encode_shortstr, peek_publish, splice
from ..publish import REJECTED, ROUTED, STORED, publish
from ..queue_args import parse_expiration
from ..vhost import REPLY_TO, REPLY_TO_PREFIX
from . import backpressure



def publish_from_client(ch, msg: Message, mandatory: bool) -> None:
    """ch: the ChannelSession the publish arrived on."""
    access = ch.session.access
    if msg.exchange not in access.publishable:  # checked once per exchange and connection
        access.check_publish(msg.exchange)
    vhost = ch.vhost
    exchange = vhost.exchanges.get(msg.exchange)
    if exchange is None:
        raise errors.not_found("exchange", msg.exchange, vhost.name)
    if exchange.internal:
        raise errors.access_refused(
            f"cannot publish to internal {resource('exchange', msg.exchange, vhost.name)}"
        )
    peeked = peek_publish(msg.header)
    if peeked is not None:
        mode, expiration = peeked
    else:
        mode, expiration = _checked_properties(ch, msg)
    if expiration is not None:
        msg.ttl = parse_expiration(expiration)
    if mode is not None and mode != 1:
        if mode != 2:
            raise errors.precondition(f"invalid message: {{delivery_mode_unknown,{mode}}}")
        msg.persistent = True
    tx = ch.tx
    if tx is not None:
        tx.publish(msg, exchange, mandatory)
        return
    route(ch, msg, exchange, mandatory)


def _checked_properties(ch, msg: Message):
    """The full property list: a malformed one is 541; reply-to and user-id are checked and
    the direct reply-to pseudo queue is rewritten to this channel's reply key."""
    header = msg.header
    try:
        props = Properties.checked(header)
    except PropertyError as exc:
        raise errors.InternalError(f"undecodable property list: {exc}") from None
    msg.adopt_properties(props)
    if props.reply_to == REPLY_TO:
        if ch.reply_key is None:
            raise errors.precondition("fast reply consumer does not exist")
        new = encode_shortstr(REPLY_TO_PREFIX + ch.reply_key)
        msg.replace_header(splice(header, props, PROP_REPLY_TO, new))
    user = ch.session.user
    if props.user_id is not None and props.user_id != user.name:
        raise errors.precondition(
            f"user_id property set to '{props.user_id}' but authenticated user was '{user.name}'"
        )
    return props.delivery_mode, props.expiration


def route(ch, msg: Message, exchange, mandatory: bool) -> None:
    """Route a checked publish (now, or at tx.commit) and settle its confirm."""
    confirm = ch.confirm
    seq = confirm.publish() if confirm is not None else 0
    if not msg.exchange and msg.routing_key.startswith(REPLY_TO_PREFIX):
        _publish_reply(ch, msg, mandatory, seq)
        return
    outcome = publish(ch.vhost, exchange, msg, ch.delayed)
    if not outcome & ROUTED:
        if mandatory:
            exchange.stats_returned += 1
            ch.send_return(msg, errors.NO_ROUTE, "NO_ROUTE")
        else:
            exchange.stats_dropped += 1
    if outcome & STORED and ch.vhost.store.backlogged:
        backpressure.store_behind(ch.session)
    if confirm is None:
        return
    if outcome & REJECTED:
        confirm.nack(seq)
    elif outcome & STORED:
        ch.hold_until_committed(seq)
        return
    else:
        confirm.ack(seq)
    ch.out.confirms_ready(ch)


def _publish_reply(ch, msg: Message, mandatory: bool, seq: int) -> None:
    """Direct reply-to: straight to the requesting channel, no queue in between."""
    target = ch.session.broker.reply_channels.get(msg.routing_key[len(REPLY_TO_PREFIX):])
    if target is not None and target.open:
        target.deliver_reply(msg)
    if mandatory:  # RabbitMQ treats a reply as unroutable: a mandatory one is returned
        ch.send_return(msg, errors.NO_ROUTE, "NO_ROUTE")
    if ch.confirm is not None:
        ch.confirm.ack(seq)
        ch.out.confirms_ready(ch)
