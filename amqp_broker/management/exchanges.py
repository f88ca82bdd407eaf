"""/api/exchanges: list and show exchanges, declare (PUT) and delete them, publish to one.

Declare and delete go through the vhost's own `declare_exchange`/`delete_exchange`, so the
checks and their texts are the AMQP ones; as in rabbitmq_management (its direct_request), a
refusal is a 400 with the explanation alone, access refused a 401. Publishing is in
`exchange_publish`.
"""
from __future__ import annotations

from aiohttp import web

from .. import errors
from ..access import CONFIGURE, EXCHANGE, named_exchange
from ..args import Arguments
from ..exchanges import EXCHANGE_TYPES
from . import responses
from .auth import access_of
from .exchange_publish import publish_json
from .message_json import typed_arguments
from .request_body import BodyError, flag, json_object
from .message_stats import exchange_message_stats

# the path name of the default exchange, whose real name is "" (rabbit_mgmt_util:id/2)
DEFAULT_EXCHANGE_ALIAS = "amq.default"
# names travel in AMQP frames as short strings (basic.deliver's exchange field)
MAX_NAME_BYTES = 255


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


def exchange_name(request: web.Request, key: str = "name") -> str:
    """The exchange a path names (`amq.default` is the default exchange, "")."""
    name = request.match_info[key]
    return "" if name == DEFAULT_EXCHANGE_ALIAS else name


def declare_arguments(body: dict) -> Arguments:
    """The `arguments` of a PUT body, typed as RabbitMQ types JSON (integers are longs)."""
    arguments = body.get("arguments")
    if arguments is None or arguments == []:
        return Arguments()
    if not isinstance(arguments, dict):
        raise BodyError("arguments must be an object")
    return Arguments(typed_arguments(arguments))


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
        name = exchange_name(request)
        exchange = vhost.exchanges.get(name) if vhost is not None else None
        if exchange is None:
            return responses.not_found()
        return responses.json_response(describe(exchange, vhost.name))

    async def declare(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:
            return responses.vhost_not_found()
        name = exchange_name(request)
        try:
            body = await json_object(request)
            durable, auto_delete, internal = flag(body, "durable"), flag(body, "auto_delete"), flag(body, "internal")
            arguments = declare_arguments(body)
        except BodyError as exc:
            return responses.bad_request(exc.reason)
        type_name = body.get("type", "direct")
        if not isinstance(type_name, str) or type_name not in EXCHANGE_TYPES:
            shown = type_name if isinstance(type_name, str) else _json_text(type_name)
            return responses.bad_request(f"invalid exchange type '{shown}'")
        size = len(name.encode("utf-8", "surrogatepass"))
        if size > MAX_NAME_BYTES:
            return responses.bad_request(f"exchange should be less than 255 bytes, actually was {size}\n")
        existed = name in vhost.exchanges
        try:
            if name:  # the default exchange is refused before the permission check
                alternate = None if existed else named_exchange(arguments.plain, "alternate-exchange")
                access_of(broker, request, vhost.name).check_exchange_declare(name, alternate)
            vhost.declare_exchange(name, type_name, False, durable, auto_delete, internal, arguments)
        except errors.AMQPError as exc:
            return responses.from_amqp_error(exc)
        return web.Response(status=204 if existed else 201)

    async def delete(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        name = exchange_name(request)
        if vhost is None or name not in vhost.exchanges:
            return responses.not_found()
        try:
            if name and not name.startswith("amq."):  # those are refused before the permission check
                access_of(broker, request, vhost.name).check(EXCHANGE, name, CONFIGURE)
            vhost.delete_exchange(name, request.query.get("if-unused") == "true")
        except errors.AMQPError as exc:
            return responses.from_amqp_error(exc)
        return web.Response(status=204)

    async def publish(request: web.Request) -> web.Response:
        vhost = broker.vhosts.get(request.match_info["vhost"])
        if vhost is None:  # the management API's channel cannot open on it
            return responses.error(401, "not_authorised", "Access refused.")
        return await publish_json(broker, request, vhost, exchange_name(request))

    return [
        web.get("/api/exchanges", list_all),
        web.get("/api/exchanges/{vhost}", list_vhost),
        web.get("/api/exchanges/{vhost}/{name}", show),
        web.put("/api/exchanges/{vhost}/{name}", declare),
        web.delete("/api/exchanges/{vhost}/{name}", delete),
        web.post("/api/exchanges/{vhost}/{name}/publish", publish),
    ]


def _json_text(value) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)
