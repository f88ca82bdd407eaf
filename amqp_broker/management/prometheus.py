"""`GET /metrics` and `/metrics/per-object`, as rabbitmq_prometheus serves them: no
authentication, the Prometheus text format.

Served twice: on the management listener (authz marks these routes public, so no login is
asked for) and on a listener of its own (`prometheus_listener`, the
plugin's port 15692 by default).
"""
from __future__ import annotations

from aiohttp import web

from .listener import HttpListener
from .metrics import BrokerMetrics

# the text format generate_latest writes, under the name RabbitMQ's plugin gives it (newer
# prometheus_client releases call their default 1.0.0; the format is the same for our names)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# path -> per-object view? (the plugin also answers with a trailing slash)
PATHS = {"/metrics": False, "/metrics/": False, "/metrics/per-object": True, "/metrics/per-object/": True}


def metrics_response(metrics: BrokerMetrics, per_object: bool) -> web.Response:
    response = web.Response(body=metrics.render(per_object))
    response.headers["Content-Type"] = CONTENT_TYPE
    return response


def routes(metrics: BrokerMetrics) -> list[web.RouteDef]:
    """The metrics paths, for the management app (where its authorization rules mark them
    public) and for the listener of their own."""

    async def aggregated(request: web.Request) -> web.Response:
        return metrics_response(metrics, False)

    async def per_object(request: web.Request) -> web.Response:
        return metrics_response(metrics, True)

    return [web.get(path, per_object if is_per_object else aggregated) for path, is_per_object in PATHS.items()]


def make_app(metrics: BrokerMetrics) -> web.Application:
    """The Prometheus listener's own application: the metrics paths only."""
    app = web.Application()
    app.add_routes(routes(metrics))
    return app


class PrometheusListenError(OSError):
    """The Prometheus listener could not bind (same errno), told apart from the others."""


def prometheus_listener(broker, node: str, host: str, port: int) -> HttpListener:
    return HttpListener(make_app(BrokerMetrics(broker, node)), host, port, PrometheusListenError)
