"""Virtual hosts as durable objects: created, described, deleted and recovered at start.

`broker.vhosts` stays the name -> VHost dict the rest of the broker routes through; this
registry (`broker.vhost_registry`) is the one place that adds to it or removes from it after
start, keeps RabbitMQ's vhost metadata (description, tags, tracing) and writes both to the
store. A new vhost gets the standard amq.* exchanges (VHost does that); deleting one does
what rabbit_vhost:delete/2 does: its connections are closed with 320 CONNECTION_FORCED, then
its queues, exchanges, bindings, policies and permissions go, in memory and on disk.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from . import errors
from .vhost import VHost

DEFAULT_VHOST = "/"
DEFAULT_DESCRIPTION = "Default virtual host"  # what RabbitMQ's first start gives "/"


@dataclass(frozen=True)
class VHostMeta:
    """RabbitMQ's vhost metadata (rabbit_vhost's `metadata` map) plus the tracing flag."""

    description: str = ""
    tags: tuple[str, ...] = ()
    tracing: bool = False

    def to_json(self) -> str:
        return json.dumps({"description": self.description, "tags": list(self.tags), "tracing": self.tracing})

    @classmethod
    def from_json(cls, text: str) -> "VHostMeta":
        data = json.loads(text or "{}")
        return cls(str(data.get("description", "")), tuple(data.get("tags", ())), bool(data.get("tracing", False)))


class VHostRegistry:
    def __init__(self, broker):
        self.broker = broker
        self._meta: dict[str, VHostMeta] = {}

    def recover(self) -> None:
        """At start: the stored vhosts; on the first start (none stored) the default one."""
        rows = self.broker.store.vhosts()
        if not rows:
            self.put(DEFAULT_VHOST, VHostMeta(DEFAULT_DESCRIPTION))
            return
        for name, metadata_json in rows:
            vhost = self._open(name, VHostMeta.from_json(metadata_json))
            for limit, value in json.loads(metadata_json or "{}").get("limits", {}).items():
                vhost.limits.set(limit, value)

    def meta(self, name: str) -> VHostMeta:
        return self._meta.get(name, VHostMeta())

    def put(self, name: str, meta: VHostMeta) -> bool:
        """Create the vhost or replace its metadata; True if it was created."""
        created = name not in self.broker.vhosts
        if created:
            self._open(name, meta)
        else:
            self._meta[name] = meta
        self.save(name)
        return created

    def save(self, name: str) -> None:
        """Write the vhost's metadata, and its limits (vhost_limits.py) when it has any."""
        record = json.loads(self.meta(name).to_json())
        limits = self.broker.vhosts[name].limits.items()
        if limits:
            record["limits"] = limits
        self.broker.store.save_vhost(name, json.dumps(record))

    def _open(self, name: str, meta: VHostMeta) -> VHost:
        broker = self.broker
        vhost = VHost(name, broker.store, broker.expirer)
        vhost.policies = broker.policies
        broker.vhosts[name] = vhost
        self._meta[name] = meta
        return vhost

    def delete(self, name: str) -> bool:
        """Delete the vhost and everything in it; False if there is no such vhost."""
        broker = self.broker
        vhost = broker.vhosts.pop(name, None)  # first: no connection.open can reach it now
        if vhost is None:
            return False
        self._meta.pop(name, None)
        text = errors.reply_text(errors.CONNECTION_FORCED, f"vhost '{name}' is deleted")
        for conn in list(broker.connections):
            if conn.session is not None and conn.session.vhost is vhost:
                conn.close(errors.CONNECTION_FORCED, text)  # tears its channels down at once
        for queue in list(vhost.queues.values()):
            vhost.remove_queue(queue)  # consumers, timers, stored messages
        for exchange_name in [n for n in vhost.exchanges if n and not n.startswith("amq.")]:
            vhost.delete_exchange(exchange_name, False)
        for policy in broker.policies.list(name):
            broker.policies.delete(name, policy.name)
        broker.permissions.forget_vhost(name)
        broker.store.delete_vhost(name)  # and whatever else is stored under the vhost
        return True
