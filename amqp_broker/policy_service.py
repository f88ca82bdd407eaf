"""Policies as the broker runs them: validated and matched by the registry (policies.py),
stored durably, and applied to every matching queue and exchange of the vhost at once,
including existing ones.

This is the broker's policy API (`broker.policies`), the one the README documents:

    broker.policies.set("/", "ttl", "^orders\\.", {"message-ttl": 60000}, priority=1)
    broker.policies.delete("/", "ttl")
    broker.policies.list("/")

Set and delete must run on the broker's event loop (they touch queues).
"""
from __future__ import annotations

import json

from .policies import Policy, PolicyError, PolicyRegistry, effective_exchange_arguments, effective_queue_arguments

__all__ = ["PolicyService", "PolicyError"]


class PolicyService:
    """The broker's policies: a PolicyRegistry plus persistence plus applying them."""

    def __init__(self, broker):
        self.broker = broker
        self.registry = PolicyRegistry()

    # -- API -----------------------------------------------------------------------------------

    def set(self, vhost: str, name: str, pattern: str, definition: dict, priority=0,
            apply_to: str = "all") -> Policy:
        """Create or replace a policy; raises PolicyError (a ValueError) when invalid."""
        if vhost not in self.broker.vhosts:
            raise PolicyError(f"no vhost '{vhost}'")
        policy = self.registry.set(vhost, name, pattern, definition, priority, apply_to)
        self.broker.store.save_policy(vhost, name, _to_json(policy))
        self.apply(vhost)
        return policy

    def delete(self, vhost: str, name: str) -> bool:
        existed = self.registry.delete(vhost, name)
        if existed:
            self.broker.store.delete_policy(vhost, name)
            self.apply(vhost)
        return existed

    def list(self, vhost: str | None = None) -> list[Policy]:
        return self.registry.list(vhost)

    # -- applying ------------------------------------------------------------------------------

    def load(self, rows) -> None:
        """Stored policies at start: (vhost, name, json) rows."""
        for vhost, name, text in rows:
            data = json.loads(text)
            self.registry.set(vhost, name, data["pattern"], data["definition"], data["priority"], data["apply-to"])

    def apply(self, vhost_name: str) -> None:
        vhost = self.broker.vhosts.get(vhost_name)
        if vhost is None:
            return
        for queue in list(vhost.queues.values()):
            self.apply_queue(vhost_name, queue)
        for exchange in vhost.exchanges.values():
            self.apply_exchange(vhost_name, exchange)

    def apply_queue(self, vhost_name: str, queue) -> None:
        policy = self.registry.effective(vhost_name, "queue", queue.name)
        queue.policy = policy
        if policy is None and queue.effective_arguments is queue.arguments:
            return
        queue.configure(effective_queue_arguments(queue.arguments, policy) if policy else None)

    def apply_exchange(self, vhost_name: str, exchange) -> None:
        policy = self.registry.effective(vhost_name, "exchange", exchange.name)
        exchange.policy = policy
        args = effective_exchange_arguments(exchange.arguments, policy) if policy else exchange.arguments
        exchange.alternate = args.get("alternate-exchange")


def _to_json(policy: Policy) -> str:
    return json.dumps({"pattern": policy.pattern, "definition": policy.definition,
                       "priority": policy.priority, "apply-to": policy.apply_to})
