"""/api/consumers[/{vhost}]: every basic.consume of every open channel, as
rabbitmq_management describes a consumer (also used for a queue's and a channel's
`consumer_details`)."""
from __future__ import annotations

from aiohttp import web

from . import responses
from .connections import opened_sessions, peer_of


def channel_name(channel) -> str:
    """RabbitMQ's channel name: "<connection name> (<channel number>)"."""
    return f"{channel.session.name} ({channel.number})"


def channel_details(channel, node: str) -> dict:
    session = channel.session
    host, port = peer_of(session)
    return {
        "name": channel_name(channel),
        "number": channel.number,
        "connection_name": session.name,
        "node": node,
        "peer_host": host,
        "peer_port": port,
        "user": session.user.name,
    }


def activity(consumer) -> tuple[bool, str]:
    """(active, activity_status): with single active consumer only the first one in line
    receives ("single_active"), the others wait ("waiting"); otherwise every consumer is "up"."""
    consumers = consumer.queue.consumer_set
    if not consumers.single_active:
        return True, "up"
    active = bool(consumers.members) and consumers.members[0] is consumer
    return active, "single_active" if active else "waiting"


def describe(consumer, node: str) -> dict:
    queue = consumer.queue
    active, status = activity(consumer)
    return {
        "consumer_tag": consumer.tag,
        "queue": {"name": queue.name, "vhost": queue.vhost.name},
        "channel_details": channel_details(consumer.channel, node),
        "ack_required": not consumer.no_ack,
        "exclusive": consumer.exclusive,
        "prefetch_count": consumer.prefetch,
        "arguments": responses.jsonable_table(consumer.arguments),
        "active": active,
        "activity_status": status,
    }


def of_channel(channel, node: str) -> list[dict]:
    return [describe(consumer, node) for _tag, consumer in sorted(channel.consumers.items())]


def of_queue(queue, node: str) -> list[dict]:
    """A queue's consumers in the order it serves them."""
    return [describe(consumer, node) for consumer in queue.consumers]


def all_consumers(broker, node: str, vhost=None) -> list[dict]:
    return [
        item
        for session in opened_sessions(broker)
        if vhost is None or session.vhost is vhost
        for _number, channel in sorted(session.channels.items())
        for item in of_channel(channel, node)
    ]


def routes(broker, node: str) -> list[web.RouteDef]:
    async def list_all(request: web.Request) -> web.Response:
        return responses.listing(request, all_consumers(broker, node))

    async def list_vhost(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.not_found()
        return responses.listing(request, all_consumers(broker, node, vhost))

    return [web.get("/api/consumers", list_all), web.get("/api/consumers/{vhost}", list_vhost)]
