"""Exchange type ``x-delayed-message`` (rabbitmq-delayed-message-exchange), routing side.

The plugin's exchange is a proxy: its ``x-delayed-type`` argument names another exchange type
and every binding call and every routing decision goes to that type
(rabbit_exchange_type_delayed_message: ``?EXCHANGE(X):route/validate_binding/add_binding/...``).
So this class owns an inner exchange of that type and delegates the whole binding/routing
contract to it; for the broker it is just an exchange whose ``route`` is the inner one's.

Holding messages back is not routing state and is not done here: the broker looks at
``delayed`` (a class attribute only this type has) when a message is published, and keeps a
message with a positive ``x-delay`` header aside until it is due (amqp_broker/delayed.py).

``validate/1`` of the plugin, mirrored in ``__init__``:

* ``x-delayed-type`` absent, or not a string -> 406 ``Invalid argument, 'x-delayed-type' must be
  an existing exchange type``;
* ``x-delayed-type`` = ``x-delayed-message`` -> 406 ``Invalid argument, 'x-delayed-message' can't
  be used for 'x-delayed-type'`` (checked first, whatever the field type);
* a type that does not exist -> ``rabbit_exchange:check_type/1``'s 503 ``unknown exchange type
  '...'``.

Redeclare equivalence is the inner type's ``assert_args_equivalence``, i.e. the usual one (only
``alternate-exchange`` is compared): a redeclare with another ``x-delayed-type`` is accepted and
changes nothing, as with the plugin.
"""
from __future__ import annotations

from collections.abc import Collection

from .base import Exchange, ExchangeArgumentError

__all__ = ["DelayedMessageExchange", "DELAYED_TYPE_ARG"]

DELAYED_TYPE_ARG = "x-delayed-type"
_PRECONDITION_FAILED = 406
_COMMAND_INVALID = 503


def _type_name(value) -> str | None:
    """The argument as a type name, if it is a string (longstr, or a binary field) at all."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return None


class DelayedMessageExchange(Exchange):
    type_name = "x-delayed-message"
    delayed = True

    def __init__(self, name: str, durable: bool = False, auto_delete: bool = False,
                 internal: bool = False, arguments: dict | None = None) -> None:
        super().__init__(name, durable=durable, auto_delete=auto_delete, internal=internal,
                         arguments=arguments)
        inner_type = _type_name(self.arguments.get(DELAYED_TYPE_ARG))
        if inner_type == self.type_name:
            raise ExchangeArgumentError(
                _PRECONDITION_FAILED,
                "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'",
            )
        if inner_type is None:
            raise ExchangeArgumentError(
                _PRECONDITION_FAILED,
                "Invalid argument, 'x-delayed-type' must be an existing exchange type",
            )
        from . import EXCHANGE_TYPES  # the registry imports this module

        cls = EXCHANGE_TYPES.get(inner_type)
        if cls is None:
            raise ExchangeArgumentError(_COMMAND_INVALID, f"unknown exchange type '{inner_type}'")
        self.inner: Exchange = cls(name, durable=durable, auto_delete=auto_delete,
                                   internal=internal, arguments=arguments)
        self.delayed_type = inner_type
        # instance attribute: a headers-typed delayed exchange needs the headers decoded
        self.uses_headers = self.inner.uses_headers

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({self.delayed_type}) bindings={len(self.inner.bindings())}>"

    # ------------------------------------------------------------- delegated to the inner type

    def validate_binding(self, routing_key: str, arguments: dict) -> None:
        return self.inner.validate_binding(routing_key, arguments)

    def bind(self, destination, routing_key: str, arguments: dict | None) -> bool:
        return self.inner.bind(destination, routing_key, arguments)

    def unbind(self, destination, routing_key: str, arguments: dict | None) -> bool:
        return self.inner.unbind(destination, routing_key, arguments)

    def unbind_destination(self, destination) -> int:
        return self.inner.unbind_destination(destination)

    def bindings(self) -> list[tuple[object, str, dict]]:
        return self.inner.bindings()

    def has_bindings(self) -> bool:
        return self.inner.has_bindings()

    def has_binding(self, destination, routing_key: str, arguments: dict | None) -> bool:
        return self.inner.has_binding(destination, routing_key, arguments)

    def has_destination(self, destination) -> bool:
        return self.inner.has_destination(destination)

    def route(self, routing_key: str, headers: dict | None = None) -> Collection:
        return self.inner.route(routing_key, headers)

    # The binding operations above go straight to the inner exchange, which keeps its own
    # index; these hooks only forward in case a base-class operation reaches them.
    def binding_added(self, destination, routing_key: str, arguments: dict, frozen: tuple) -> None:
        self.inner.binding_added(destination, routing_key, arguments, frozen)

    def binding_removed(self, destination, routing_key: str, arguments: dict, frozen: tuple) -> None:
        self.inner.binding_removed(destination, routing_key, arguments, frozen)
