"""/api/bindings and the binding lists of exchanges and queues: list, create (POST) and delete
bindings, as rabbitmq_management 3.10 (rabbit_mgmt_wm_bindings, rabbit_mgmt_wm_binding).

Every queue is bound to the default exchange under its own name; RabbitMQ lists those implicit
bindings too (source ""), and refuses to delete them. Creating and deleting go through the
vhost's `bind`/`unbind`, so the checks and texts are the AMQP ones; a refusal is answered as
rabbitmq_management's direct_request answers it: 404 `not_found` for a missing exchange or queue,
401 for access refused, else 400 with the explanation.
"""
from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .. import errors
from ..queue import Queue
from . import binding_props, responses
from .auth import access_of
from .exchanges import exchange_name
from .message_json import check_table
from .request_body import BodyError, json_object

DEST_KINDS = {"q": "queue", "e": "exchange"}
_PAIR = "/api/bindings/{vhost}/e/{source}/{dtype:[qe]}/{dest}"


@dataclass(frozen=True)
class Binding:
    """One binding, as listed: `arguments` are the ones it was made with (unbind needs them)."""

    vhost: str
    source: str
    destination_type: str  # "queue" or "exchange"
    destination: str
    routing_key: str
    arguments: dict

    @property
    def properties_key(self) -> str:
        return binding_props.pack(self.routing_key, self.arguments)

    def describe(self) -> dict:
        return {
            "source": self.source,
            "vhost": self.vhost,
            "destination": self.destination,
            "destination_type": self.destination_type,
            "routing_key": self.routing_key,
            "arguments": responses.jsonable_table(self.arguments),
            "properties_key": self.properties_key,
        }

    def sort_key(self) -> tuple:
        # rabbit_mgmt_wm_bindings' default order ("type" is in its list but no binding has it)
        return (self.vhost, self.source, self.destination, self.routing_key, self.properties_key)


def default_binding(vhost_name: str, queue_name: str) -> Binding:
    """The implicit binding of a queue to the default exchange."""
    return Binding(vhost_name, "", "queue", queue_name, queue_name, {})


def vhost_bindings(vhost) -> list[Binding]:
    """Every binding of a vhost, the implicit ones included, in RabbitMQ's order."""
    found = [default_binding(vhost.name, name) for name in vhost.queues]
    for exchange in vhost.exchanges.values():
        for dest, routing_key, arguments in exchange.bindings():
            kind = "queue" if isinstance(dest, Queue) else "exchange"
            found.append(Binding(vhost.name, exchange.name, kind, dest.name, routing_key, arguments))
    return sorted(found, key=Binding.sort_key)


def _where(bindings: list[Binding], **fields) -> list[Binding]:
    return [b for b in bindings if all(getattr(b, key) == value for key, value in fields.items())]


def _shown(request: web.Request, bindings: list[Binding]) -> web.Response:
    return responses.listing(request, [b.describe() for b in bindings])


def body_binding(body: dict) -> tuple[str, dict]:
    """(routing key, arguments) of a POST body; a number as the key is taken as its text."""
    routing_key = body.get("routing_key", "")
    if isinstance(routing_key, (int, float)) and not isinstance(routing_key, bool):
        routing_key = str(routing_key)
    if not isinstance(routing_key, str):
        raise BodyError(["not_string", "routing_key"])
    arguments = body.get("arguments")
    if arguments is None or arguments == []:
        return routing_key, {}
    if not isinstance(arguments, dict):
        raise BodyError("arguments must be an object")
    check_table(arguments)
    return routing_key, {key: arguments[key] for key in sorted(arguments)}


def refusal(exc: errors.AMQPError) -> web.Response:
    if exc.code == errors.NOT_FOUND:
        return responses.error(404, "not_found", exc.explanation)
    return responses.from_amqp_error(exc)


def routes(broker) -> list[web.RouteDef]:
    def vhost_of(request: web.Request):
        return broker.vhosts.get(request.match_info["vhost"])

    def pair(request: web.Request) -> dict:
        """The source/destination fields a pair path names."""
        kind = DEST_KINDS[request.match_info["dtype"]]
        return {
            "source": exchange_name(request, "source"),
            "destination": exchange_name(request, "dest") if kind == "exchange" else request.match_info["dest"],
            "destination_type": kind,
        }

    async def list_all(request: web.Request) -> web.Response:
        return _shown(request, [b for v in responses.by_name(broker.vhosts) for b in vhost_bindings(v)])

    async def list_vhost(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        if vhost is None:
            return responses.not_found()
        return _shown(request, vhost_bindings(vhost))

    async def list_source(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        found = _where(vhost_bindings(vhost), source=exchange_name(request)) if vhost is not None else []
        return _shown(request, found)

    async def list_destination(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        found = [] if vhost is None else _where(
            vhost_bindings(vhost), destination=exchange_name(request), destination_type="exchange")
        return _shown(request, found)

    async def list_queue(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        if vhost is None:
            return _shown(request, [])
        name = request.match_info["name"]
        # RabbitMQ adds the implicit binding without looking the queue up
        found = _where(vhost_bindings(vhost), destination=name, destination_type="queue")
        if name not in vhost.queues:
            found.insert(0, default_binding(vhost.name, name))
        return _shown(request, found)

    async def list_pair(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        found = [] if vhost is None else _where(vhost_bindings(vhost), **pair(request))
        return _shown(request, found)

    async def create(request: web.Request) -> web.Response:
        vhost = vhost_of(request)
        if vhost is None:
            return responses.vhost_not_found()
        try:
            routing_key, arguments = body_binding(await json_object(request))
        except BodyError as exc:
            return responses.bad_request(exc.reason)
        where = pair(request)
        to_queue = where["destination_type"] == "queue"
        try:
            access_of(broker, request, vhost.name).check_binding(where["source"], where["destination"], to_queue)
            vhost.bind(where["source"], where["destination"], to_queue, routing_key, arguments, None)
        except errors.AMQPError as exc:
            return refusal(exc)
        # relative to the request's path, as rabbit_web_dispatch_util:relativise makes it
        props = binding_props.pack(routing_key, arguments)
        location = binding_props.url_quote(request.match_info["dest"]) + "/" + binding_props.url_quote(props)
        return web.Response(status=201, headers={"Location": location})

    def find(request: web.Request) -> Binding | None:
        """The binding a props path names, None if there is none."""
        vhost = vhost_of(request)
        named = binding_props.unpack(request.match_info["props"])
        if vhost is None or named is None:
            return None
        routing_key, hashed = named
        for binding in _where(vhost_bindings(vhost), routing_key=routing_key, **pair(request)):
            arguments = binding.arguments
            if (binding_props.args_hash(arguments) == hashed) if hashed is not None else not arguments:
                return binding
        return None

    async def show(request: web.Request) -> web.Response:
        binding = find(request)
        if binding is None:
            return responses.not_found()
        return responses.json_response(binding.describe())

    async def delete(request: web.Request) -> web.Response:
        binding = find(request)
        if binding is None:
            return responses.not_found()
        to_queue = binding.destination_type == "queue"
        vhost = vhost_of(request)
        try:
            access_of(broker, request, vhost.name).check_binding(binding.source, binding.destination, to_queue)
            vhost.unbind(binding.source, binding.destination, to_queue,
                                     binding.routing_key, binding.arguments, None)
        except errors.AMQPError as exc:
            return refusal(exc)
        return web.Response(status=204)

    return [
        web.get("/api/bindings", list_all),
        web.get("/api/bindings/{vhost}", list_vhost),
        web.get("/api/exchanges/{vhost}/{name}/bindings/source", list_source),
        web.get("/api/exchanges/{vhost}/{name}/bindings/destination", list_destination),
        web.get("/api/queues/{vhost}/{name}/bindings", list_queue),
        web.get(_PAIR, list_pair),
        web.post(_PAIR, create),
        web.get(_PAIR + "/{props}", show),
        web.delete(_PAIR + "/{props}", delete),
    ]

