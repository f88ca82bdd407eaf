"""A virtual host: its exchanges, queues and bindings, and routing between them.

Exchanges route to opaque destinations; here a destination is the Queue or Exchange object
itself, so the hot path (default or direct exchange -> queue) needs no name lookups.
Every rule about *which* declare/bind/delete is allowed, and the exact RabbitMQ reply texts,
lives here, so the channel only translates frames into these calls.
"""
from __future__ import annotations

import base64
import os

from . import errors, queue_drop
from .arguments import check_exchange_equivalence, check_queue_equivalence
from .args import Arguments
from .errors import AMQPError, resource
from .exchanges import EXCHANGE_TYPES, BindingError, Exchange, ExchangeArgumentError, make_exchange
from .expiry import Expirer
from .queue import Queue
from .queue_args import validate_queue_arguments
from .routing import DEFAULT_EXCHANGE
from .stats import VHostCounters
from .storage.base import BindingDef, ExchangeDef, QueueDef
from .vhost_limits import VHostLimits, check_queue_limit

REPLY_TO = "amq.rabbitmq.reply-to"
REPLY_TO_PREFIX = REPLY_TO + "."  # reply routing keys: the prefix, then the channel's reply key
PREDECLARED = (
    ("", "direct", False),
    ("amq.direct", "direct", False),
    ("amq.fanout", "fanout", False),
    ("amq.topic", "topic", False),
    ("amq.headers", "headers", False),
    ("amq.match", "headers", False),
    ("amq.rabbitmq.trace", "topic", True),
)


def server_named_queue() -> str:
    # RabbitMQ: "amq.gen-" + url-safe base64 of 16 random bytes
    return "amq.gen-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


class VHost:
    def __init__(self, name: str, store=None, expirer=None):
        self.name = name
        self.store = store
        self.expirer = expirer if expirer is not None else Expirer()
        self.policies = None  # the broker's policy service, applied to what is declared here
        self.stats = VHostCounters()  # message statistics not kept by a queue or exchange
        self.limits = VHostLimits()  # max-connections, max-queues (vhost_limits.py)
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        # destination (Queue or Exchange) -> exchanges that hold a binding to it
        self._sources: dict[object, set[Exchange]] = {}
        for ex_name, ex_type, internal in PREDECLARED:
            self.exchanges[ex_name] = make_exchange(ex_type, ex_name, durable=True, internal=internal)

    # -- lookups ---------------------------------------------------------------------------------

    def get_exchange(self, name: str) -> Exchange:
        ex = self.exchanges.get(name)
        if ex is None:
            raise errors.not_found("exchange", name, self.name)
        return ex

    def get_queue(self, name: str, connection=None) -> Queue:
        """The queue named `name`, checking exclusive ownership (RabbitMQ's lax check)."""
        queue = self.queues.get(name)
        if queue is None:
            raise errors.not_found("queue", name, self.name)
        if queue.exclusive_owner is not None and queue.exclusive_owner is not connection:
            raise errors.resource_locked(name, self.name)
        return queue

    # -- exchanges -------------------------------------------------------------------------------

    def declare_exchange(self, name, type_name, passive, durable, auto_delete, internal, args: Arguments):
        if name == DEFAULT_EXCHANGE:  # even a passive declare of it is refused
            raise errors.access_refused("operation not permitted on the default exchange")
        if passive:
            return self.get_exchange(name)
        existing = self.exchanges.get(name)
        if existing is None:
            if name.startswith("amq."):
                raise errors.access_refused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
            try:
                ex = make_exchange(type_name, name, durable, auto_delete, internal, args.plain)
            except KeyError:
                raise AMQPError(errors.COMMAND_INVALID, f"unknown exchange type '{type_name}'") from None
            except ExchangeArgumentError as exc:  # the type's validate/1 (x-delayed-type)
                raise AMQPError(exc.code, str(exc)) from None
            ex.typed_arguments = args.typed
            self.exchanges[name] = ex
            if self.policies is not None:
                self.policies.apply_exchange(self.name, ex)
            if durable and self.store is not None:
                self.store.save_exchange(ExchangeDef(self.name, ex.name, ex.type_name, True, ex.auto_delete,
                                                     ex.internal, args.encoded))
            return ex
        if type_name not in EXCHANGE_TYPES:
            raise AMQPError(errors.COMMAND_INVALID, f"unknown exchange type '{type_name}'")
        check_exchange_equivalence(existing, self.name, type_name, durable, auto_delete, internal, args.typed)
        return existing

    def delete_exchange(self, name: str, if_unused: bool) -> None:
        if name == DEFAULT_EXCHANGE:
            raise errors.access_refused("operation not permitted on the default exchange")
        if name.startswith("amq."):
            raise errors.access_refused(
                f"deletion of system {resource('exchange', name, self.name)} not allowed"
            )
        ex = self.exchanges.get(name)
        if ex is None:
            return  # idempotent, as RabbitMQ
        if if_unused and ex.has_bindings():
            raise errors.precondition(f"{resource('exchange', name, self.name)} in use")
        self._remove_exchange(ex)

    def _remove_exchange(self, ex: Exchange) -> None:
        self.exchanges.pop(ex.name, None)
        self.stats.exchange_gone(ex)
        for dest, _key, _args in ex.bindings():
            self._unlink(ex, dest)
        # bindings where this exchange is the destination
        for source in self._sources.pop(ex, ()):
            source.unbind_destination(ex)
            self._maybe_auto_delete(source)
        if ex.durable and self.store is not None:
            self.store.delete_exchange(self.name, ex.name)

    def _maybe_auto_delete(self, ex: Exchange) -> None:
        if ex.auto_delete and not ex.has_bindings() and self.exchanges.get(ex.name) is ex:
            self._remove_exchange(ex)

    # -- queues ----------------------------------------------------------------------------------

    def declare_queue(self, name, passive, durable, exclusive, auto_delete, args: Arguments, connection):
        """-> (queue, message_count, consumer_count). `args`: decoded once, typed, from the wire."""
        self.stats.queues_declared += 1
        if passive:
            if name == REPLY_TO:
                return None, 0, 1  # handled by the channel (direct reply-to)
            queue = self.get_queue(name, connection)
            queue.touch()  # a passive declare renews an x-expires lease too
            return queue, queue.message_count, queue.consumer_count
        if not name:
            name = server_named_queue()
        elif name.startswith("amq."):
            raise errors.access_refused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        owner = connection if exclusive else None
        queue = self.queues.get(name)
        if queue is not None:
            # an existing queue is only compared, its arguments are not re-validated
            if queue.exclusive_owner is not owner:  # RabbitMQ's strict check
                raise errors.resource_locked(name, self.name)
            check_queue_equivalence(queue, self.name, durable, auto_delete, args.typed)
            queue.touch()  # a redeclare counts as use (x-expires)
            return queue, queue.message_count, queue.consumer_count
        validate_queue_arguments(name, self.name, args.typed)
        check_queue_limit(self, name)
        queue = Queue(self, name, durable, owner, auto_delete, args.plain, args.typed)
        self.queues[name] = queue
        self.stats.queues_created += 1
        if self.policies is not None:
            self.policies.apply_queue(self.name, queue)
        if owner is not None:
            connection.exclusive_queues.add(queue)
        if self.store is not None and _stored(queue):
            store_id = self.store.save_queue(QueueDef(self.name, queue.name, True, queue.auto_delete, args.encoded))
            if self.store.persists_messages:
                queue.attach_store(self.store, store_id)
        return queue, 0, 0

    def delete_queue(self, name, if_unused, if_empty, connection) -> int:
        queue = self.queues.get(name)
        if queue is None:
            return 0  # idempotent, as RabbitMQ
        self.get_queue(name, connection)  # exclusivity
        if if_unused and queue.consumers:
            raise errors.precondition(f"{resource('queue', name, self.name)} in use")
        count = queue.message_count  # live messages only: expired ones are not "in" it
        if if_empty and count:
            raise errors.precondition(f"{resource('queue', name, self.name)} not empty")
        self.remove_queue(queue)
        return count

    def remove_queue(self, queue: Queue) -> None:
        """Delete a queue for any reason: unbind it, cancel its consumers, forget it."""
        if queue.deleted:
            return
        if self.queues.get(queue.name) is queue:
            del self.queues[queue.name]
        for source in self._sources.pop(queue, ()):
            source.unbind_destination(queue)
            self._maybe_auto_delete(source)
        for consumer in list(queue.consumers):
            queue.remove_consumer(consumer)
            consumer.channel.cancelled_by_server(consumer)
        queue_drop.discard_all(queue)
        self.stats.queue_gone(queue)
        if queue.exclusive_owner is not None:
            queue.exclusive_owner.exclusive_queues.discard(queue)
        if self.store is not None and _stored(queue):
            self.store.delete_queue(self.name, queue.name, queue.store_id)

    def purge_queue(self, name: str, connection) -> int:
        return queue_drop.purge(self.get_queue(name, connection))

    def consumer_gone(self, queue: Queue) -> None:
        """Auto-delete a queue whose last consumer went away."""
        if queue.auto_delete and queue.had_consumer and not queue.consumers and not queue.deleted:
            self.remove_queue(queue)

    # -- bindings --------------------------------------------------------------------------------

    def _binding_ends(self, source_name, dest_name, dest_is_queue, connection):
        if source_name == DEFAULT_EXCHANGE or (not dest_is_queue and dest_name == DEFAULT_EXCHANGE):
            raise errors.access_refused("operation not permitted on the default exchange")
        source = self.get_exchange(source_name)  # a missing source is reported first
        if dest_is_queue:
            dest = self.get_queue(dest_name, connection)
        else:
            dest = self.get_exchange(dest_name)
        return source, dest

    def bind(self, source_name, dest_name, dest_is_queue, routing_key, arguments, connection) -> None:
        source, dest = self._binding_ends(source_name, dest_name, dest_is_queue, connection)
        try:
            source.validate_binding(routing_key, arguments or {})
        except BindingError as exc:
            raise errors.precondition(str(exc)) from None
        if source.bind(dest, routing_key, arguments or {}):
            self._link(source, dest)
            if self.store is not None and source.durable and _durable(dest):
                self.store.save_binding(_binding_def(self.name, source, dest, routing_key, arguments))

    def unbind(self, source_name, dest_name, dest_is_queue, routing_key, arguments, connection) -> None:
        if source_name == DEFAULT_EXCHANGE or (not dest_is_queue and dest_name == DEFAULT_EXCHANGE):
            raise errors.access_refused("operation not permitted on the default exchange")
        dest = (self.queues if dest_is_queue else self.exchanges).get(dest_name)
        source = self.exchanges.get(source_name)
        if source is None or dest is None:
            return  # unbinding something missing is not an error in RabbitMQ
        if dest_is_queue and source.has_binding(dest, routing_key, arguments or {}):
            self.get_queue(dest_name, connection)  # exclusivity, only for a binding that exists
        if source.unbind(dest, routing_key, arguments or {}):
            if not source.has_destination(dest):
                self._unlink(source, dest)
            if self.store is not None and source.durable and _durable(dest):
                self.store.delete_binding(_binding_def(self.name, source, dest, routing_key, arguments))
            self._maybe_auto_delete(source)

    def restore_binding(self, source: Exchange, dest, routing_key: str, arguments: dict) -> None:
        """Recovery: put back a stored binding between two objects of this vhost (neither
        validated nor written to the store again)."""
        if source.bind(dest, routing_key, arguments):
            self._link(source, dest)

    def _link(self, source: Exchange, dest) -> None:
        self._sources.setdefault(dest, set()).add(source)

    def _unlink(self, source: Exchange, dest) -> None:
        """`source` holds no binding to `dest` any more."""
        sources = self._sources.get(dest)
        if sources is not None:
            sources.discard(source)
            if not sources:
                del self._sources[dest]

    # -- connection cleanup ----------------------------------------------------------------------

    def connection_closed(self, connection) -> None:
        for queue in list(connection.exclusive_queues):
            self.remove_queue(queue)


def _stored(queue: Queue) -> bool:
    """Queues that outlive a restart. Exclusive and auto-delete queues would be gone after a
    restart anyway (their connections and consumers are), so they are never written."""
    return queue.durable and queue.exclusive_owner is None and not queue.auto_delete


def _durable(dest) -> bool:
    if isinstance(dest, Queue):
        return _stored(dest)
    return dest.durable


def _binding_def(vhost: str, source: Exchange, dest, routing_key: str, arguments) -> BindingDef:
    # binding arguments are kept plain (no type letters): stored with the letters a client
    # library would have sent them with
    kind = "queue" if isinstance(dest, Queue) else "exchange"
    return BindingDef(vhost, source.name, kind, dest.name, routing_key, Arguments.from_plain(arguments).encoded)

