"""Fanout exchange: every bound destination gets the message; key and headers are ignored.

The answer only changes on bind/unbind, so it is precomputed once as a tuple.
"""
from __future__ import annotations

from .base import NO_ROUTE, Exchange, decref, incref

__all__ = ["FanoutExchange"]


class FanoutExchange(Exchange):
    type_name = "fanout"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # destination -> number of bindings (one per distinct key/arguments pair).
        self._counts: dict[object, int] = {}
        self._all: tuple = NO_ROUTE

    def route(self, routing_key: str = "", headers: dict | None = None) -> tuple:
        return self._all

    def binding_added(self, destination, routing_key, arguments, frozen) -> None:
        if incref(self._counts, destination):
            self._all = tuple(self._counts)

    def binding_removed(self, destination, routing_key, arguments, frozen) -> None:
        if decref(self._counts, destination):
            self._all = tuple(self._counts) if self._counts else NO_ROUTE
