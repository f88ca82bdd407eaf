"""Per-vhost limits, as RabbitMQ's `vhost-limits` (rabbit_vhost_limit): `max-connections` and
`max-queues`. A negative limit means no limit; 0 allows none.

Checked where RabbitMQ checks them: the connection limit at connection.open (before the
access check), the queue limit when a queue that does not exist yet is declared (after its
arguments are checked; redeclaring an existing queue is always allowed). Both count what
exists now: open connections of the vhost, queues of the vhost (exclusive ones included).
"""
from __future__ import annotations

from . import errors
from .errors import AMQPError

MAX_CONNECTIONS = "max-connections"
MAX_QUEUES = "max-queues"
NAMES = (MAX_CONNECTIONS, MAX_QUEUES)


class VHostLimits:
    """One vhost's limits, name -> value, in the order they were first set."""

    def __init__(self) -> None:
        self._values: dict[str, int] = {}

    def set(self, name: str, value: int) -> None:
        if name not in NAMES:
            raise ValueError(f"unknown vhost limit {name!r}")
        self._values[name] = value

    def clear(self, name: str) -> None:
        self._values.pop(name, None)

    def items(self) -> dict[str, int]:
        return dict(self._values)

    def reached(self, name: str, count: int) -> int | None:
        """The limit `name` if `count` objects already reach it, else None."""
        limit = self._values.get(name)
        if limit is None or limit < 0 or count < limit:
            return None
        return limit


def check_connection_limit(broker, vhost, user: str) -> None:
    """connection.open to `vhost`: 530 NOT_ALLOWED when its connections reach the limit
    (rabbit_reader:is_over_vhost_connection_limit/3)."""
    limits = vhost.limits
    if not limits.items():
        return
    open_here = sum(1 for conn in broker.connections if conn.session is not None and conn.session.vhost is vhost)
    limit = limits.reached(MAX_CONNECTIONS, open_here)
    if limit is not None:
        raise AMQPError(errors.NOT_ALLOWED,
                        f"access to vhost '{vhost.name}' refused for user '{user}': connection limit ({limit}) is reached")


def check_queue_limit(vhost, name: str) -> None:
    """Declaring the new queue `name`: 406 when the vhost's queues reach the limit
    (rabbit_queue_type's check_vhost_queue_limit)."""
    limit = vhost.limits.reached(MAX_QUEUES, len(vhost.queues))
    if limit is not None:
        raise errors.precondition(
            f"cannot declare queue '{name}': queue limit in vhost '{vhost.name}' ({limit}) is reached")
