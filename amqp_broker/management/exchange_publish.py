"""POST /api/exchanges/{vhost}/{name}/publish: publish one message given as JSON.

rabbitmq_management publishes it on a channel of its own with `mandatory` and publisher
confirms (rabbit_mgmt_wm_exchange_publish), and answers `{"routed": bool}` once the confirm
came. Here the message goes through the same checks as a client's basic.publish (the ones of
session/publishing.py, in its order) and then the broker's one publish path
(amqp_broker/publish.py), so routing, alternate exchanges, TTLs, dead-lettering and persistence
are the AMQP ones; a message written to disk is answered once the store committed it, as its
confirm would be. A refusal is that channel's close as a 400 `"<code> <reply text>"`; a queue
that refuses the message (x-overflow reject-publish) is RabbitMQ's nack answer.
"""
from __future__ import annotations

from aiohttp import web

from .. import errors
from ..access import EXCHANGE, WRITE
from ..errors import AMQPError, resource
from ..message import Message
from ..publish import REJECTED, ROUTED, STORED, publish
from ..queue_args import parse_expiration
from ..vhost import REPLY_TO, REPLY_TO_PREFIX
from . import responses
from .auth import access_of, logged_in
from .message_json import content_header, decode_payload, property_list
from .request_body import BodyError, json_object, required

MAX_SHORTSTR = 255


async def publish_json(broker, request: web.Request, vhost, exchange_name: str) -> web.Response:
    try:
        body = await json_object(request)
        routing_key, props, payload, encoding = required(
            body, ("routing_key", "properties", "payload", "payload_encoding"))
        if not isinstance(payload, str):
            raise BodyError("payload_not_string")
        if not isinstance(props, dict):
            raise BodyError(["not_table", "properties"])
        properties = property_list(props)
        content = decode_payload(payload, encoding)
        if not isinstance(routing_key, str) or len(routing_key.encode("utf-8", "surrogatepass")) > MAX_SHORTSTR:
            raise BodyError(["not_string", "routing_key"])
    except BodyError as exc:
        return responses.bad_request(exc.reason)
    msg = Message(exchange_name, routing_key, content_header(properties, len(content)), content)
    user = logged_in(broker.users, request)
    access = access_of(broker, request, vhost.name)
    if not access.may_enter:  # the API's channel cannot open on the vhost
        return responses.error(401, "not_authorised", "Access refused.")
    try:
        access.check(EXCHANGE, exchange_name, WRITE)
        exchange = checked(vhost, msg, props, user.name)
        if not exchange_name and routing_key.startswith(REPLY_TO_PREFIX):
            return _reply(broker, msg)
        outcome = publish(vhost, exchange, msg, broker.delayed)
    except AMQPError as exc:
        return responses.bad_request(f"{exc.code} {errors.reply_text(exc.code, exc.explanation)}")
    if outcome & REJECTED:
        return responses.bad_request("rejected Unable to publish message. Check queue limits.")
    if outcome & STORED:
        await vhost.store.flush()  # the confirm RabbitMQ waits for comes after the write
    return responses.json_response({"routed": bool(outcome & ROUTED)})


def checked(vhost, msg: Message, props: dict, user: str):
    """The exchange to publish `msg` to, after basic.publish's checks; sets the message's
    persistence and TTL."""
    exchange = vhost.exchanges.get(msg.exchange)
    if exchange is None:
        raise errors.not_found("exchange", msg.exchange, vhost.name)
    if exchange.internal:
        raise errors.access_refused(f"cannot publish to internal {resource('exchange', msg.exchange, vhost.name)}")
    if props.get("reply_to") == REPLY_TO:  # this publisher consumes no replies
        raise errors.precondition("fast reply consumer does not exist")
    user_id = props.get("user_id")
    if user_id is not None and user_id != user:
        raise errors.precondition(f"user_id property set to '{user_id}' but authenticated user was '{user}'")
    if "expiration" in props:
        msg.ttl = parse_expiration(props["expiration"])
    mode = props.get("delivery_mode")
    if mode is not None and mode != 1:
        if mode != 2:
            raise errors.precondition(f"invalid message: {{delivery_mode_unknown,{mode}}}")
        msg.persistent = True
    return exchange


def _reply(broker, msg: Message) -> web.Response:
    """Direct reply-to: straight to the requesting channel. RabbitMQ returns a mandatory
    reply, so it is never "routed"."""
    target = broker.reply_channels.get(msg.routing_key[len(REPLY_TO_PREFIX):])
    if target is not None and target.open:
        target.deliver_reply(msg)
    return responses.json_response({"routed": False})
