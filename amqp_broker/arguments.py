"""Redeclare equivalence, as RabbitMQ checks it (rabbit_misc:assert_args_equivalence/4).

A redeclare with different properties is a 406 whose text names the first differing field.
Only a fixed set of x-arguments take part (others are ignored); integer types compare by class,
so `signedint 5` equals `long 5`, but the error text names each side's AMQP type.
"""
from __future__ import annotations

from . import errors
from .erlang_terms import erl_text
from .errors import resource
from .tables import FLOAT_LETTERS, INT_LETTERS, TYPE_NAMES

QUEUE_EQUIVALENT_ARGS = (
    "x-expires",
    "x-message-ttl",
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-overflow",
    "x-queue-mode",
    "x-queue-version",
    "x-single-active-consumer",
    "x-queue-type",
    "x-queue-master-locator",
)
EXCHANGE_EQUIVALENT_ARGS = ("alternate-exchange",)


def _type_class(letter: str) -> str:
    if letter in INT_LETTERS:
        return "int"
    if letter in FLOAT_LETTERS:
        return "float"
    return letter


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _field(kind: str, name: str, vhost: str, field: str, received: str, current: str):
    return errors.precondition(
        f"inequivalent arg '{field}' for {resource(kind, name, vhost)}: "
        f"received {received} but current is {current}"
    )


def _check_flag(kind, name, vhost, field, received: bool, current: bool):
    if received != current:
        raise _field(kind, name, vhost, field, f"'{_bool(received)}'", f"'{_bool(current)}'")


def check_args(kind: str, name: str, vhost: str, keys, current: dict, received: dict) -> None:
    """`current` and `received` map key -> (type letter, value). As RabbitMQ: when both sides
    have the argument the text shows plain values; when one side lacks it, typed values."""
    for key in keys:
        old = current.get(key)
        new = received.get(key)
        if old is None and new is None:
            continue
        if old is not None and new is not None:
            if _type_class(old[0]) == _type_class(new[0]) and old[1] == new[1]:
                continue
            raise _field(kind, name, vhost, key, f"'{erl_text(new[1])}'", f"'{erl_text(old[1])}'")
        if key == "x-queue-type" and (old or new) == ("S", "classic"):
            continue  # rabbit_misc:assert_field_equivalence/4, rabbitmq-common#341
        raise _field(kind, name, vhost, key, describe_typed(new), describe_typed(old))


def describe_typed(typed) -> str:
    """A (type letter, value) argument, or None for a missing one, as rabbit_misc's
    equivalence errors show it (``val/1``)."""
    if typed is None:
        return "none"
    letter, value = typed
    return f"the value '{erl_text(value)}' of type '{TYPE_NAMES.get(letter, letter)}'"


def check_queue_equivalence(queue, vhost: str, durable: bool, auto_delete: bool, typed: dict) -> None:
    _check_flag("queue", queue.name, vhost, "durable", durable, queue.durable)
    _check_flag("queue", queue.name, vhost, "auto_delete", auto_delete, queue.auto_delete)
    check_args("queue", queue.name, vhost, QUEUE_EQUIVALENT_ARGS, queue.typed_arguments, typed)


def check_exchange_equivalence(ex, vhost, type_name, durable, auto_delete, internal, typed) -> None:
    if type_name != ex.type_name:
        raise _field("exchange", ex.name, vhost, "type", f"'{type_name}'", f"'{ex.type_name}'")
    _check_flag("exchange", ex.name, vhost, "durable", durable, ex.durable)
    _check_flag("exchange", ex.name, vhost, "auto_delete", auto_delete, ex.auto_delete)
    _check_flag("exchange", ex.name, vhost, "internal", internal, ex.internal)
    check_args("exchange", ex.name, vhost, EXCHANGE_EQUIVALENT_ARGS, ex.typed_arguments, typed)
