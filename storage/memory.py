"""An in-memory Store: definitions live as long as the store object.

Used for transient brokers and embedding; a broker restarted in-process with the same
MemoryStore recovers its durable definitions, which lets recovery be tested without a disk.
"""
from __future__ import annotations

from .base import BindingDef, Definitions, ExchangeDef, QueueDef, Store


def _binding_key(vhost, source, destination, routing_key, arguments):
    return (vhost, source, destination, routing_key, repr(sorted(arguments.items(), key=lambda kv: kv[0])))


class MemoryStore(Store):
    def __init__(self) -> None:
        self.exchanges: dict[tuple[str, str], ExchangeDef] = {}
        self.queues: dict[tuple[str, str], QueueDef] = {}
        self.bindings: dict[tuple, BindingDef] = {}
        self._policies: dict[tuple[str, str], str] = {}
        self._delayed: dict[int, tuple] = {}  # row id -> a delayed_messages row
        self._next_delayed_id = 1

    def save_exchange(self, vhost, exchange) -> None:
        self.exchanges[(vhost, exchange.name)] = ExchangeDef(
            vhost, exchange.name, exchange.type_name, exchange.durable, exchange.auto_delete,
            exchange.internal, dict(exchange.arguments), dict(getattr(exchange, "typed_arguments", {}) or {}),
        )

    def delete_exchange(self, vhost, name) -> None:
        self.exchanges.pop((vhost, name), None)
        for key in [k for k, b in self.bindings.items() if b.vhost == vhost and (
                b.source == name or (b.destination_type == "exchange" and b.destination == name))]:
            del self.bindings[key]

    def save_queue(self, vhost, queue) -> None:
        self.queues[(vhost, queue.name)] = QueueDef(
            vhost, queue.name, queue.durable, queue.auto_delete, dict(queue.arguments),
            dict(queue.typed_arguments),
        )

    def delete_queue(self, vhost, name, queue_id=None) -> None:
        self.queues.pop((vhost, name), None)
        for key in [k for k, b in self.bindings.items() if b.vhost == vhost and
                    b.destination_type == "queue" and b.destination == name]:
            del self.bindings[key]

    def save_binding(self, vhost, source, destination, routing_key, arguments) -> None:
        key = _binding_key(vhost, source, destination, routing_key, arguments)
        self.bindings[key] = BindingDef(vhost, source, destination[0], destination[1], routing_key, dict(arguments))

    def delete_binding(self, vhost, source, destination, routing_key, arguments) -> None:
        self.bindings.pop(_binding_key(vhost, source, destination, routing_key, arguments), None)

    def save_policy(self, vhost, name, definition_json) -> None:
        self._policies[(vhost, name)] = definition_json

    def delete_policy(self, vhost, name) -> None:
        self._policies.pop((vhost, name), None)

    def policies(self) -> list[tuple]:
        return [(vhost, name, text) for (vhost, name), text in self._policies.items()]

    def add_delayed(self, row_id, vhost, exchange, routing_key, due_at, header, body) -> int:
        if row_id is None:
            row_id = self._next_delayed_id
        self._next_delayed_id = max(self._next_delayed_id, row_id + 1)
        self._delayed[row_id] = (row_id, vhost, exchange, routing_key, due_at, bytes(header), bytes(body))
        return row_id

    def remove_delayed(self, row_id) -> None:
        self._delayed.pop(row_id, None)

    def delayed(self) -> list[tuple]:
        return sorted(self._delayed.values(), key=lambda row: (row[4], row[0]))

    def load(self) -> Definitions:
        return Definitions(list(self.exchanges.values()), list(self.queues.values()), list(self.bindings.values()))
