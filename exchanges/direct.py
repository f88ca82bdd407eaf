"""Direct exchange: a message goes to every destination bound with exactly its routing key.

The routing index maps routing key -> precomputed tuple of distinct destinations, rebuilt on
each bind/unbind (rare) so that ``route`` (per message) is one dict lookup and allocates
nothing.
"""
from __future__ import annotations

from .base import NO_ROUTE, Exchange, decref, incref

__all__ = ["DirectExchange"]


class DirectExchange(Exchange):
    type_name = "direct"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # routing key -> {destination: number of bindings}; insertion ordered, so the route
        # tuple lists destinations in the order they were first bound.
        self._counts: dict[str, dict[object, int]] = {}
        self._routes: dict[str, tuple] = {}

    def route(self, routing_key: str, headers: dict | None = None) -> tuple:
        return self._routes.get(routing_key, NO_ROUTE)

    def binding_added(self, destination, routing_key, arguments, frozen) -> None:
        counts = self._counts.get(routing_key)
        if counts is None:
            counts = self._counts[routing_key] = {}
        if incref(counts, destination):
            self._routes[routing_key] = tuple(counts)

    def binding_removed(self, destination, routing_key, arguments, frozen) -> None:
        counts = self._counts[routing_key]
        if decref(counts, destination):
            if counts:
                self._routes[routing_key] = tuple(counts)
            else:
                del self._counts[routing_key]
                del self._routes[routing_key]
