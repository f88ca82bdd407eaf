"""The management listener: an aiohttp application with the auth middleware and the routes of
every resource module, served on its own TCP port next to the AMQP listener."""
from __future__ import annotations

import socket

from aiohttp import web

from . import (
    auth, bindings, channels, connections, consumers, definitions, exchanges, health, nodes, overview,
    permissions, policies, prometheus, queue_messages, queues, users, vhost_limits, vhosts,
)
from .listener import HttpListener
from .metrics import BrokerMetrics


def node_name() -> str:
    """Like a RabbitMQ node name (`rabbit@host`)."""
    return f"amqp-broker@{socket.gethostname()}"


def make_app(broker) -> web.Application:
    node = node_name()
    app = web.Application(middlewares=[auth.middleware(broker)])
    app.add_routes(overview.routes(broker, node))
    app.add_routes(vhosts.routes(broker, node))
    app.add_routes(queues.routes(broker, node))
    app.add_routes(exchanges.routes(broker))
    app.add_routes(connections.routes(broker, node))
    app.add_routes(channels.routes(broker, node))
    app.add_routes(consumers.routes(broker, node))
    app.add_routes(policies.routes(broker))
    app.add_routes(nodes.routes(broker, node))
    app.add_routes(health.routes(broker, node))
    app.add_routes(users.routes(broker))
    app.add_routes(permissions.routes(broker))
    app.add_routes(definitions.routes(broker))
    app.add_routes(bindings.routes(broker))
    app.add_routes(queue_messages.routes(broker))
    app.add_routes(vhost_limits.routes(broker))
    app.add_routes(prometheus.routes(BrokerMetrics(broker, node)))  # public, as rabbitmq_prometheus
    add_trailing_slash_routes(app.router)
    return app


def add_trailing_slash_routes(router: web.UrlDispatcher) -> None:
    """Every path also answers with a trailing slash, as RabbitMQ's (cowboy's router ignores
    one): clients such as AMQPStorm ask for `/api/healthchecks/node/`. A redirect would not do:
    a 301 turns a PUT or DELETE into a GET in many clients."""
    known = {resource.canonical for resource in router.resources()}
    for route in list(router.routes()):
        path = route.resource.canonical
        if path.endswith("/") or path + "/" in known or route.method == "HEAD":
            continue
        router.add_route(route.method, path + "/", route.handler)


class ManagementListenError(OSError):
    """The management listener could not bind (same errno as the OSError), so a caller can
    tell it from a failure of the AMQP listener."""


def management_listener(broker, host: str, port: int, ssl_context=None) -> HttpListener:
    return HttpListener(make_app(broker), host, port, ManagementListenError, ssl_context)
