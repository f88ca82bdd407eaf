"""The exchange contract shared by every exchange type, plus binding bookkeeping.

An exchange here is pure routing state: the broker core owns queues, I/O and persistence and
hands us opaque, hashable ``destination`` values (e.g. ``("q", "orders")``). We never look
inside them; we only remember which destinations are bound with which key/arguments and answer
"where does this message go?".

Binding identity follows RabbitMQ: a binding is (source, destination, routing key, arguments),
so the same key bound twice with different arguments is two bindings, and unbinding has to
name the arguments too. Arguments are AMQP tables (dicts that may nest dicts, lists, bytes,
Decimals, datetimes...), so we index them by a frozen, hashable copy (see ``freeze.py``) while
handing the caller back the dict it gave us.

Subclasses keep their own routing index in sync through two hooks, ``binding_added`` and
``binding_removed``, which the binding operations here call exactly once per binding that
really appears/disappears. That keeps the per-message ``route`` free of any bookkeeping. The
hooks are public so that an exchange delegating to another one (``x-delayed-message``) can
forward them; nothing else calls them.

Besides routing state an exchange carries a few attributes the broker core sets and reads
(``typed_arguments``, ``policy``, ``alternate``, the ``stats_*`` counters); they are declared
here, with their defaults, so every exchange has them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import ClassVar

from .freeze import freeze_table

__all__ = ["BindingError", "Exchange", "ExchangeArgumentError"]

# The empty result is shared: routing misses are common (mandatory/AE checks) and must not
# allocate.
NO_ROUTE: tuple = ()


class BindingError(Exception):
    """Invalid binding arguments.

    ``str(exc)`` is RabbitMQ's explanation text WITHOUT the ``PRECONDITION_FAILED - `` prefix,
    e.g. ``Invalid x-match field value <<"foo">>; expected all, any, all-with-x, or any-with-x``.
    The caller turns it into a channel close with reply code 406.
    """


class ExchangeArgumentError(Exception):
    """Declare arguments the exchange type refuses (its ``validate``).

    ``code`` is the AMQP reply code RabbitMQ closes with (406 PRECONDITION_FAILED, or 503
    COMMAND_INVALID for an unknown type named in an argument); ``str(exc)`` is the explanation
    without the ``NAME - `` prefix. The caller turns it into the close.
    """

    def __init__(self, code: int, explanation: str) -> None:
        super().__init__(explanation)
        self.code = code


class Exchange(ABC):
    """Base class: binding storage in insertion order + per-destination index."""

    type_name: ClassVar[str] = ""
    # Only a headers exchange looks at message headers. The caller checks this flag so it can
    # skip decoding the content header's field table for every other exchange type.
    uses_headers: ClassVar[bool] = False
    # Only an x-delayed-message exchange holds messages back before routing them.
    delayed: ClassVar[bool] = False

    def __init__(
        self,
        name: str,
        durable: bool = False,
        auto_delete: bool = False,
        internal: bool = False,
        arguments: dict | None = None,
    ) -> None:
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments: dict = dict(arguments) if arguments else {}
        # The declare arguments with their AMQP type letters ({key: (letter, value)}): redeclare
        # equivalence names the types, and storage keeps them. Set by the broker core.
        self.typed_arguments: dict = {}
        # The policy that applies to this exchange (amqp_broker.policies.Policy), if any, and
        # the alternate exchange in effect: the argument's, else the policy's. Both are kept up
        # to date by the broker's policy service.
        self.policy = None
        self.alternate = self.arguments.get("alternate-exchange")
        # Message statistics (amqp_broker.stats), counted by the broker core: messages
        # published into this exchange, copies it routed to queues, unroutable ones dropped or
        # returned; `stats_samples` holds the once-a-second readings their rates come from.
        self.stats_in = 0
        self.stats_out = 0
        self.stats_dropped = 0
        self.stats_returned = 0
        self.stats_samples = None
        # identity key -> (destination, routing_key, arguments). A dict keeps insertion order,
        # which is what bindings() promises (list_bindings output, definitions export).
        self._bindings: dict[tuple, tuple[object, str, dict]] = {}
        # destination -> {identity key: None}: queue deletion unbinds a destination from every
        # exchange, so this must not scan all bindings.
        self._by_dest: dict[object, dict[tuple, None]] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} bindings={len(self._bindings)}>"

    # ----------------------------------------------------------------- binding management

    def validate_binding(self, routing_key: str, arguments: dict) -> None:
        """Raise BindingError if RabbitMQ would refuse this binding. Most types accept all."""
        return None

    def bind(self, destination, routing_key: str, arguments: dict | None) -> bool:
        """Add a binding; True if it is new, False if an identical one already existed."""
        # A shallow copy so that a caller mutating its dict later cannot desynchronise the
        # stored arguments from the identity key we computed now.
        args = dict(arguments) if arguments else {}
        self.validate_binding(routing_key, args)
        frozen = freeze_table(args)
        key = (destination, routing_key, frozen)
        if key in self._bindings:
            return False
        self._bindings[key] = (destination, routing_key, args)
        per_dest = self._by_dest.get(destination)
        if per_dest is None:
            per_dest = self._by_dest[destination] = {}
        per_dest[key] = None
        self.binding_added(destination, routing_key, args, frozen)
        return True

    def unbind(self, destination, routing_key: str, arguments: dict | None) -> bool:
        """Remove one binding; True if it existed. Not validated, as in RabbitMQ."""
        frozen = freeze_table(arguments) if arguments else freeze_table({})
        key = (destination, routing_key, frozen)
        record = self._bindings.pop(key, None)
        if record is None:
            return False
        self._forget_dest_key(destination, key)
        self.binding_removed(destination, routing_key, record[2], frozen)
        return True

    def unbind_destination(self, destination) -> int:
        """Drop every binding to ``destination`` (queue or exchange deleted); return the count."""
        per_dest = self._by_dest.pop(destination, None)
        if not per_dest:
            return 0
        for key in per_dest:
            _dest, routing_key, args = self._bindings.pop(key)
            self.binding_removed(destination, routing_key, args, key[2])
        return len(per_dest)

    def bindings(self) -> list[tuple[object, str, dict]]:
        """(destination, routing_key, arguments) for every binding, in insertion order."""
        return list(self._bindings.values())

    def has_bindings(self) -> bool:
        return bool(self._bindings)

    def has_binding(self, destination, routing_key: str, arguments: dict | None) -> bool:
        """Does exactly this binding exist?"""
        return (destination, routing_key, freeze_table(arguments or {})) in self._bindings

    def has_destination(self, destination) -> bool:
        """Is any binding to ``destination`` left? (O(1); e.g. after an unbind.)"""
        return destination in self._by_dest

    @abstractmethod
    def route(self, routing_key: str, headers: dict | None = None) -> Collection:
        """Distinct destinations for a message. Must not be mutated by the caller."""

    # ------------------------------------------------------------------- subclass hooks

    @abstractmethod
    def binding_added(self, destination, routing_key: str, arguments: dict, frozen: tuple) -> None:
        """Index a binding that was just added (called by ``bind``, once per new binding)."""

    @abstractmethod
    def binding_removed(self, destination, routing_key: str, arguments: dict, frozen: tuple) -> None:
        """Drop a binding from the index (called by ``unbind``/``unbind_destination``, once
        per binding that really went)."""

    # ---------------------------------------------------------------------- internals

    def _forget_dest_key(self, destination, key: tuple) -> None:
        per_dest = self._by_dest[destination]
        del per_dest[key]
        if not per_dest:
            del self._by_dest[destination]


def incref(counts: dict, item) -> bool:
    """Count one more binding reaching ``item``; True if it was not reached before.

    Several bindings can lead to the same destination (same key, different arguments); the
    routing indexes hold each destination once and need to know when the last one goes.
    """
    n = counts.get(item)
    if n is None:
        counts[item] = 1
        return True
    counts[item] = n + 1
    return False


def decref(counts: dict, item) -> bool:
    """Count one binding fewer; True if ``item`` is no longer reached at all."""
    n = counts[item]
    if n == 1:
        del counts[item]
        return True
    counts[item] = n - 1
    return False
