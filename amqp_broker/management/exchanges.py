"""GET /api/exchanges[/{vhost}[/{name}]]: the exchanges of every vhost or of one."""
from __future__ import annotations

from aiohttp import web

from . import responses
from .message_stats import exchange_message_stats

# the path name of the default exchange, whose real name is "" (rabbit_mgmt_util:id/2)
DEFAULT_EXCHANGE_ALIAS = "amq.default"


def describe(exchange, vhost_name: str) -> dict:
    return {
        "name": exchange.name,
        "vhost": vhost_name,
        "type": exchange.type_name,
        "durable": exchange.durable,
        "auto_delete": exchange.auto_delete,
        "internal": exchange.internal,
        "arguments": responses.jsonable_table(exchange.arguments),
        **exchange_message_stats(exchange),
    }


def routes(broker) -> list[web.RouteDef]:
    async def list_all(request: web.Request) -> web.Response:
        return responses.listing(request, [describe(ex, v.name) for v in responses.by_name(broker.vhosts) for ex in responses.by_name(v.exchanges)]
        )

    async def list_vhost(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.not_found()
        return responses.listing(request, [describe(ex, vhost.name) for ex in responses.by_name(vhost.exchanges)])

    async def show(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        name = request.match_info["name"]
        name = "" if name == DEFAULT_EXCHANGE_ALIAS else name
        exchange = vhost.exchanges.get(name) if vhost is not None else None
        if exchange is None:
            return responses.not_found()
        return responses.json_response(describe(exchange, vhost.name))

    return [
        web.get("/api/exchanges", list_all),
        web.get("/api/exchanges/{vhost}", list_vhost),
        web.get("/api/exchanges/{vhost}/{name}", show),
    ]
