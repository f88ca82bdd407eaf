"""Access control: whether a user may configure, write or read a queue or exchange, as
RabbitMQ decides it (https://www.rabbitmq.com/access-control.html, "How Permissions Work";
rabbit_access_control and rabbit_auth_backend_internal), sans-IO.

The rules, in rabbit_channel's words:
- queue.declare (not passive) and queue.delete: configure on the queue; a new queue with a
  dead-letter exchange also needs read on the queue and write on that exchange;
- exchange.declare (not passive) and exchange.delete: configure on the exchange; a new
  exchange with an alternate exchange also needs read on it and write on the alternate;
- queue.bind/unbind, exchange.bind/unbind: write on the destination, read on the source;
- basic.publish: write on the exchange; basic.consume, basic.get, queue.purge: read on the
  queue. Passive declares need nothing.

A pattern is searched in the name as Erlang's re:run does: not anchored ("c" allows "cq").
An empty pattern is "^$" (rabbit_auth_backend_internal), so it allows only the empty name -
and no resource checked has one: the default exchange is checked as "amq.default", and a
server-named queue is checked under its generated name.
"""
from __future__ import annotations

import re

from . import errors
from .errors import AMQPError, resource
from .permissions import Permission, Permissions

QUEUE = "queue"
EXCHANGE = "exchange"
CONFIGURE = "configure"
WRITE = "write"
READ = "read"

# rabbit_access_control checks the default exchange ("") under this name
DEFAULT_EXCHANGE_NAME = "amq.default"

# allowed checks remembered per connection (RabbitMQ keeps 12 per channel); past this many
# the memory starts over, so a client naming endless queues cannot grow it without bound
MAX_REMEMBERED = 4096


def refused(kind: str, name: str, vhost: str, user: str) -> AMQPError:
    """403 ACCESS_REFUSED with RabbitMQ's text."""
    return errors.access_refused(f"access to {resource(kind, name, vhost)} refused for user '{user}'")


def check_vhost(permissions: Permissions, vhost: str, user: str) -> None:
    """connection.open: 530 NOT_ALLOWED unless the user has a permission entry on the vhost
    (rabbit_access_control:check_vhost_access with the internal backend)."""
    if permissions.get(vhost, user) is None:
        raise AMQPError(errors.NOT_ALLOWED, f"access to vhost '{vhost}' refused for user '{user}'")


def _compiled(permission: Permission | None) -> dict[str, re.Pattern]:
    if permission is None:
        return {}
    return {CONFIGURE: re.compile(permission.configure or "^$"),
            WRITE: re.compile(permission.write or "^$"),
            READ: re.compile(permission.read or "^$")}


class Access:
    """One user's rights on one vhost. RabbitMQ reads the permission at every check and
    remembers the allowed ones per channel; so do we, per connection: an allowed check is a
    set lookup, a new one re-reads the permission (recompiling only when it changed)."""

    def __init__(self, permissions: Permissions, vhost: str, user: str):
        self.vhost = vhost
        self.user = user
        self._permissions = permissions
        self._permission = permissions.get(vhost, user)
        self._patterns = _compiled(self._permission)
        self._allowed: set[tuple[str, str, str]] = set()
        # the exchanges this connection has been allowed to publish to: basic.publish looks
        # here first (one set lookup a message) and calls check_publish only on a miss
        self.publishable: set[str] = set()

    @property
    def may_enter(self) -> bool:
        """Whether the user has a permission entry on the vhost now (may open a connection
        to it)."""
        return self._permissions.get(self.vhost, self.user) is not None

    def allowed(self, kind: str, name: str, permission: str) -> bool:
        if kind == EXCHANGE and not name:
            name = DEFAULT_EXCHANGE_NAME
        key = (kind, name, permission)
        if key in self._allowed:
            return True
        current = self._permissions.get(self.vhost, self.user)
        if current is not self._permission:  # changed since the last look
            self._permission = current
            self._patterns = _compiled(current)
            self._allowed.clear()
            self.publishable.clear()
        pattern = self._patterns.get(permission)
        if pattern is None or pattern.search(name) is None:
            return False
        if len(self._allowed) >= MAX_REMEMBERED:
            self._allowed.clear()
        self._allowed.add(key)
        return True

    def check(self, kind: str, name: str, permission: str) -> None:
        """403 ACCESS_REFUSED unless allowed."""
        if not self.allowed(kind, name, permission):
            shown = name if name or kind != EXCHANGE else DEFAULT_EXCHANGE_NAME
            raise refused(kind, shown, self.vhost, self.user)

    def check_publish(self, exchange: str) -> None:
        """basic.publish: write on the exchange (the default one as amq.default)."""
        self.check(EXCHANGE, exchange, WRITE)
        if len(self.publishable) >= MAX_REMEMBERED:
            self.publishable.clear()
        self.publishable.add(exchange)

    def check_queue_declare(self, name: str, dead_letter_exchange: str | None) -> None:
        """A non-passive queue.declare: configure; for a new queue naming a dead-letter
        exchange also read on the queue and write on that exchange."""
        self.check(QUEUE, name, CONFIGURE)
        if dead_letter_exchange is not None:
            self.check(QUEUE, name, READ)
            self.check(EXCHANGE, dead_letter_exchange, WRITE)

    def check_exchange_declare(self, name: str, alternate_exchange: str | None) -> None:
        """A non-passive exchange.declare of a name other than the default: configure; for a
        new exchange naming an alternate exchange also read on it and write on the alternate."""
        self.check(EXCHANGE, name, CONFIGURE)
        if alternate_exchange is not None:
            self.check(EXCHANGE, name, READ)
            self.check(EXCHANGE, alternate_exchange, WRITE)

    def check_binding(self, source: str, destination: str, destination_is_queue: bool) -> None:
        """A bind or unbind: write on the destination, then read on the source. Where an end
        is the default exchange RabbitMQ refuses the binding itself after the write check, so
        the read check is left to that refusal."""
        self.check(QUEUE if destination_is_queue else EXCHANGE, destination, WRITE)
        if source and (destination_is_queue or destination):
            self.check(EXCHANGE, source, READ)


def named_exchange(arguments: dict, key: str) -> str | None:
    """The exchange an x-dead-letter-exchange / alternate-exchange argument names, when it is
    a string (any other type is refused by the declare's own argument checks)."""
    value = arguments.get(key)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None
