"""Validation of queue.declare x-arguments, as rabbit_amqqueue:declare_args/0 does it.

Each known argument has a checker that returns None or RabbitMQ's error term, rendered the
way Erlang's ~p prints it ({value_negative,-1}, "expected integer, got longstr"), so the 406
text is byte for byte RabbitMQ's: invalid arg 'x-max-length' for queue 'q' in vhost '/': ...
"""
from __future__ import annotations

import re

from . import errors
from .erlang_terms import erl_charlist
from .errors import resource
from .tables import INT_LETTERS, TYPE_NAMES

MAX_EXPIRY = 315_360_000_000  # ms, ten years: rabbit_misc:check_expiry
MAX_PRIORITY = 255


def _type(letter: str) -> str:
    return TYPE_NAMES.get(letter, letter)


def _int(typed):
    letter, _ = typed
    if letter not in INT_LETTERS:
        return f'"expected integer, got {_type(letter)}"'
    return None


def _non_neg(typed, _args):
    return _int(typed) or (f"{{value_negative,{typed[1]}}}" if typed[1] < 0 else None)


def _expiry(value):
    if value < 0:
        return f"{{value_negative,{value}}}"
    if value > MAX_EXPIRY:
        return f"{{value_too_large,{value}}}"
    return None


def _message_ttl(typed, _args):
    return _int(typed) or _expiry(typed[1])


def _expires(typed, _args):
    err = _int(typed)
    if err:
        return err
    if typed[1] == 0:
        return "{value_zero,0}"
    return _expiry(typed[1])


def _longstr(typed):
    return None if typed[0] == "S" else f"{{unacceptable_type,{_type(typed[0])}}}"


def _dlx(typed, _args):
    return _longstr(typed)


def _dlrk(typed, args):
    err = _longstr(typed)
    if err:
        return err
    return None if "x-dead-letter-exchange" in args else "routing_key_but_no_dlx_defined"


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _one_of(values, error):
    def check(typed, _args):
        return _longstr(typed) or (None if _text(typed[1]) in values else error)

    return check


def _queue_type(typed, _args):
    err = _longstr(typed)
    if err:
        return err
    value = _text(typed[1])
    if value in ("classic", "quorum", "stream"):
        return None
    return f'"unsupported queue type \'{value}\'"'


def _max_priority(typed, args):
    err = _non_neg(typed, args)
    if err:
        return err
    return None if typed[1] <= MAX_PRIORITY else f"{{max_value_exceeded,{typed[1]}}}"


def _bool(typed, _args):
    return None if typed[0] == "t" else f"{{unacceptable_type,{_type(typed[0])}}}"


CHECKS = (
    ("x-expires", _expires),
    ("x-message-ttl", _message_ttl),
    ("x-dead-letter-exchange", _dlx),
    ("x-dead-letter-routing-key", _dlrk),
    ("x-max-length", _non_neg),
    ("x-max-length-bytes", _non_neg),
    ("x-max-in-memory-length", _non_neg),
    ("x-max-in-memory-bytes", _non_neg),
    ("x-max-priority", _max_priority),
    ("x-overflow", _one_of(("drop-head", "reject-publish", "reject-publish-dlx"), "invalid_overflow")),
    ("x-queue-mode", _one_of(("default", "lazy"), "invalid_queue_mode")),
    ("x-single-active-consumer", _bool),
    ("x-queue-type", _queue_type),
)


def validate_queue_arguments(name: str, vhost: str, typed: dict) -> None:
    # rabbit_channel resolves the dead-letter exchange (rabbit_misc:r_arg) before the
    # queue's own argument checks run, with a text of its own for a wrong type
    dlx = typed.get("x-dead-letter-exchange")
    if dlx is not None and dlx[0] != "S":
        raise errors.precondition(
            f"invalid type '{_type(dlx[0])}' for arg 'x-dead-letter-exchange' in {resource('queue', name, vhost)}"
        )
    for key, check in CHECKS:
        value = typed.get(key)
        if value is None:
            continue
        error = check(value, typed)
        if error is not None:
            raise errors.precondition(f"invalid arg '{key}' for {resource('queue', name, vhost)}: {error}")


_EXPIRATION = re.compile(r"([+-]?[0-9]+)(.*)", re.S)


def parse_expiration(text: str) -> int:
    """A message's `expiration` property -> milliseconds, as rabbit_basic:parse_expiration
    (Erlang's string:to_integer, then the expiry range check). Raises a 406 otherwise."""
    if text.isascii() and text.isdigit():  # the usual case, without the regex
        value = int(text)
        if value <= MAX_EXPIRY:
            return value
    match = _EXPIRATION.fullmatch(text)
    if match is None:
        reason = "no_integer"
    elif match.group(2):
        reason = f"{{leftover_string,{erl_charlist(match.group(2))}}}"
    else:
        value = int(match.group(1))
        reason = _expiry(value)
        if reason is None:
            return value
    raise errors.precondition(f"invalid expiration '{text}': {reason}")
