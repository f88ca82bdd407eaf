"""Exchange types: pure, synchronous routing state (no I/O, no asyncio).

The broker core creates exchanges with ``make_exchange``, keeps their bindings in sync with
``bind``/``unbind``/``unbind_destination`` and asks ``route`` where each published message
goes. Destinations are opaque hashables chosen by the caller. The default exchange ("") is
handled by the caller, not here.
"""
from __future__ import annotations

from .base import BindingError, Exchange, ExchangeArgumentError
from .delayed import DelayedMessageExchange
from .direct import DirectExchange
from .fanout import FanoutExchange
from .headers import HeadersExchange
from .topic import TopicExchange

__all__ = [
    "Exchange",
    "BindingError",
    "ExchangeArgumentError",
    "DirectExchange",
    "FanoutExchange",
    "TopicExchange",
    "HeadersExchange",
    "DelayedMessageExchange",
    "EXCHANGE_TYPES",
    "make_exchange",
]

EXCHANGE_TYPES: dict[str, type[Exchange]] = {
    cls.type_name: cls
    for cls in (DirectExchange, FanoutExchange, TopicExchange, HeadersExchange, DelayedMessageExchange)
}


def make_exchange(
    type_name: str,
    name: str,
    durable: bool = False,
    auto_delete: bool = False,
    internal: bool = False,
    arguments: dict | None = None,
) -> Exchange:
    """Instantiate an exchange of ``type_name``; KeyError if the type is unknown.

    (The caller maps the KeyError to RabbitMQ's ``COMMAND_INVALID - invalid exchange type``.)
    ``arguments`` reach the type, which may refuse them with ExchangeArgumentError (e.g. an
    ``x-delayed-message`` exchange without a valid ``x-delayed-type``).
    """
    cls = EXCHANGE_TYPES[type_name]
    return cls(name, durable=durable, auto_delete=auto_delete, internal=internal,
               arguments=arguments)
