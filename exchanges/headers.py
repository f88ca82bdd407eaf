"""Headers exchange: route on message header values, ignoring the routing key.

Behaviour follows rabbit_exchange_type_headers (RabbitMQ 3.12):

* ``x-match`` selects the mode: ``all`` (default when absent), ``any``, ``all-with-x``,
  ``any-with-x``. Any other string, or a non-string, is refused at bind time with RabbitMQ's
  exact text (two different texts: bad value vs. bad type).
* ``x-match`` itself never takes part in matching; other ``x-`` arguments are ignored too,
  unless the mode is one of the ``*-with-x`` ones.
* A void (``None``) binding value matches on presence of the header, whatever its value.
* Otherwise the header value must be Erlang-``==`` to the binding value. Erlang compares the
  *values* only, not the AMQP field types: ``1`` (byte) equals ``1`` (long) and ``1.0``
  (double), a longstr equals a binary with the same bytes, and a timestamp equals the integer
  with the same number of seconds. But a bool is the atom ``true``, never equal to ``1``, and
  a decimal is ``{Scale, Unscaled}``, so ``1.5`` and ``1.50`` differ. ``_match_key`` maps the
  Python values the decoder gives us onto exactly those equalities.
* ``all`` with nothing left to compare matches every message; ``any`` matches none.
* A message without headers is matched against an empty table.

Bindings with identical arguments (typically many queues bound the same way) share one
compiled spec, so a message is evaluated once per distinct argument table, not per binding.
"""
from __future__ import annotations

import datetime as _dt

from ..erlang_terms import erl_value, timestamp_seconds
from ..tables import field_type
from .base import NO_ROUTE, BindingError, Exchange, decref, incref
from .freeze import freeze_value

__all__ = ["HeadersExchange"]

_MODES = {"all": (False, False), "any": (True, False),
          "all-with-x": (False, True), "any-with-x": (True, True)}
_MISSING = object()  # "header absent", distinct from a void (None) header


def _mode(value) -> tuple[bool, bool] | None:
    """(is_any, with_x) for a valid x-match value, else None.

    ``bytes`` is a longstr the decoder could not read as UTF-8; compare its bytes anyway, as
    RabbitMQ only ever sees bytes.
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        return _MODES.get(value)
    return None


_EMPTY: dict = {}
_VOID_KEY = ("V",)


def _match_key(value):
    """A value that is ``==`` to another's key exactly when Erlang's ``==`` would say so."""
    t = type(value)
    if t is str or t is int or t is float:
        return value  # int/float compare numerically in both languages
    if t is bool:
        return ("t", value)  # keep True away from 1
    if value is None:
        return _VOID_KEY
    if isinstance(value, (bytes, bytearray, memoryview)):
        # longstr and binary are both plain Erlang binaries; surrogateescape makes byte
        # strings comparable with str without guessing at their encoding.
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, _dt.datetime):
        return timestamp_seconds(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return ("t", bool(value))
    if isinstance(value, (int, float)):
        return value
    # Decimals, tables, arrays: inside these Erlang keeps the field types in the terms it
    # compares, so the type-tagged frozen form is the closer model.
    return freeze_value(value)


class _Spec:
    """A compiled binding argument table plus the destinations bound with it."""

    __slots__ = ("is_any", "pairs", "dests")

    def __init__(self, arguments: dict) -> None:
        # Validated at bind time; the fallback mirrors RabbitMQ's legacy "treat as all".
        self.is_any, with_x = _mode(arguments.get("x-match", "all")) or (False, False)
        pairs = []
        for key, value in arguments.items():
            if key == "x-match":
                continue
            if not with_x and key.startswith("x-"):
                continue
            is_void = value is None
            pairs.append((key, is_void, None if is_void else _match_key(value)))
        self.pairs: tuple = tuple(pairs)
        self.dests: dict[object, int] = {}


def _matches(is_any: bool, pairs: tuple, keyed: dict) -> bool:
    """Does one compiled spec accept a message? ``keyed``: headers passed through _match_key."""
    get = keyed.get
    if is_any:
        for key, is_void, want in pairs:
            got = get(key, _MISSING)
            if got is not _MISSING and (is_void or got == want):
                return True
        return False
    for key, is_void, want in pairs:
        got = get(key, _MISSING)
        if got is _MISSING or (not is_void and got != want):
            return False
    return True


class HeadersExchange(Exchange):
    type_name = "headers"
    uses_headers = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._specs: dict[tuple, _Spec] = {}  # frozen arguments -> spec, first-bound order
        # (is_any, pairs, dests) per spec: plain tuples so route() avoids attribute lookups.
        self._spec_list: tuple[tuple[bool, tuple, dict], ...] = ()

    def validate_binding(self, routing_key: str, arguments: dict) -> None:
        if not arguments or "x-match" not in arguments:
            return  # absent x-match means "all" (RabbitMQ allows omitting it)
        mode = arguments["x-match"]
        if field_type(mode) == "longstr":
            if _mode(mode) is not None:
                return
            raise BindingError(
                f"Invalid x-match field value {erl_value(mode)}; "
                "expected all, any, all-with-x, or any-with-x"
            )
        raise BindingError(
            f"Invalid x-match field type {field_type(mode)} (value {erl_value(mode)}); "
            "expected longstr"
        )

    def route(self, routing_key: str = "", headers: dict | None = None) -> tuple:
        specs = self._spec_list
        if not specs:
            return NO_ROUTE
        # Normalise each header value once per message rather than once per binding: there
        # are usually far more bindings than headers.
        keyed = {k: _match_key(v) for k, v in headers.items()} if headers else _EMPTY
        out = None
        for is_any, pairs, dests in specs:
            if _matches(is_any, pairs, keyed):
                if out is None:
                    out = dict(dests)
                else:
                    out.update(dests)
        return tuple(out) if out else NO_ROUTE

    def binding_added(self, destination, routing_key, arguments, frozen) -> None:
        spec = self._specs.get(frozen)
        if spec is None:
            spec = self._specs[frozen] = _Spec(arguments)
            self._rebuild()
        incref(spec.dests, destination)

    def binding_removed(self, destination, routing_key, arguments, frozen) -> None:
        spec = self._specs[frozen]
        decref(spec.dests, destination)
        if not spec.dests:
            del self._specs[frozen]
            self._rebuild()

    def _rebuild(self) -> None:
        self._spec_list = tuple((sp.is_any, sp.pairs, sp.dests) for sp in self._specs.values())
