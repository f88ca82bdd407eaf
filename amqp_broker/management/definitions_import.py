"""Importing RabbitMQ definitions (POST /api/definitions[/{vhost}]): check everything, then apply.

The whole document is checked before anything changes (shapes and types, users' hashes and
tags, permission and policy patterns, that every vhost named exists or is in the document,
exchange types, queue arguments, equivalence with what already exists), so a refused import
leaves the broker as it was. Then it is applied in RabbitMQ's order (rabbit_definitions):
users, vhosts, permissions, policies, queues, exchanges, bindings, through the same calls as
the API and AMQP use. As in RabbitMQ: exchanges named amq.* (and the default exchange) are
skipped, a binding whose source or destination does not exist is skipped, runtime parameters
are accepted and ignored (this broker has no federation or shovel to give them to).
"""
from __future__ import annotations

from collections.abc import Callable

from .. import errors
from ..args import Arguments
from ..arguments import check_exchange_equivalence, check_queue_equivalence
from ..exchanges import EXCHANGE_TYPES
from ..permissions import InvalidRegex, check_regex
from ..policies import PolicyError, validate as validate_policy
from ..queue_args import validate_queue_arguments
from ..vhost_registry import VHostMeta
from .permissions import KEYS as PERMISSION_KEYS, invalid_regexp_reason
from .users import BadUser, user_from_body

SECTIONS = ("users", "vhosts", "permissions", "topic_permissions", "parameters", "global_parameters",
            "policies", "queues", "exchanges", "bindings")
VHOST_SECTIONS = ("parameters", "policies", "queues", "exchanges", "bindings")


class ImportRefused(ValueError):
    """The document cannot be imported; args[0] is RabbitMQ's 400 reason."""


def _objects(doc: dict, section: str) -> list[dict]:
    items = doc.get(section, [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ImportRefused(f"{section} must be a list of objects")
    return items


def _text(item: dict, key: str, section: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if not isinstance(value, str):
        raise ImportRefused(f"{section}: {key} must be a string")
    return value


def _flag(item: dict, key: str) -> bool:
    value = item.get(key, False)
    if not isinstance(value, bool):
        raise ImportRefused(["not_boolean", value])
    return value


def _table(item: dict, section: str) -> Arguments:
    value = item.get("arguments") or {}
    if not isinstance(value, dict):
        raise ImportRefused(f"{section}: arguments must be an object")
    return Arguments.from_plain(value)


class ImportPlan:
    """The checked changes of one document, in the order they are applied."""

    def __init__(self, broker, doc: dict, only_vhost: str | None = None):
        self.broker = broker
        self.only_vhost = only_vhost
        self.steps: list[Callable[[], None]] = []
        self.vhosts = set(broker.vhosts)  # those that exist once the vhost steps ran
        self.users = set(broker.users.users)
        if only_vhost is None:
            self._users(_objects(doc, "users"))
            self._vhosts(_objects(doc, "vhosts"))
            self._permissions(_objects(doc, "permissions"))
            for section in ("topic_permissions", "parameters", "global_parameters"):
                _objects(doc, section)
        else:
            _objects(doc, "parameters")
        self._policies(_objects(doc, "policies"))
        self._queues(_objects(doc, "queues"))
        self._exchanges(_objects(doc, "exchanges"))
        self._bindings(_objects(doc, "bindings"))

    def apply(self) -> None:
        for step in self.steps:
            step()

    def _vhost_of(self, item: dict) -> str:
        if self.only_vhost is not None:
            return self.only_vhost
        name = item.get("vhost")
        if not isinstance(name, str) or name not in self.vhosts:
            raise ImportRefused(["no_such_vhost", name if isinstance(name, str) else "undefined"])
        return name

    # -- the access domain -----------------------------------------------------------------------

    def _users(self, items: list[dict]) -> None:
        for item in items:
            name = _text(item, "name", "users")
            try:
                user = user_from_body(name, item)
            except BadUser as exc:
                raise ImportRefused(exc.args[0]) from None
            self.users.add(name)
            self.steps.append(lambda user=user: self.broker.users.put(user))

    def _vhosts(self, items: list[dict]) -> None:
        registry = self.broker.vhost_registry
        for item in items:
            name = _text(item, "name", "vhosts")
            meta = _meta(item)
            if name in self.vhosts and meta is None:
                continue  # RabbitMQ's own exports carry only names: nothing to change
            self.vhosts.add(name)
            meta = meta or VHostMeta()
            self.steps.append(lambda name=name, meta=meta: registry.put(name, meta))

    def _permissions(self, items: list[dict]) -> None:
        for item in items:
            user = _text(item, "user", "permissions")
            vhost = self._vhost_of(item)
            if user not in self.users:
                raise ImportRefused(["no_such_user", user])
            patterns = [_text(item, key, "permissions") for key in PERMISSION_KEYS]
            try:
                for pattern in patterns:
                    check_regex(pattern)
            except InvalidRegex as exc:
                raise ImportRefused(invalid_regexp_reason(exc)) from None
            self.steps.append(lambda u=user, v=vhost, p=patterns: self.broker.permissions.set(u, v, *p))

    # -- policies and the objects of a vhost --------------------------------------------------

    def _policies(self, items: list[dict]) -> None:
        for item in items:
            vhost = self._vhost_of(item)
            name = _text(item, "name", "policies")
            try:
                policy = validate_policy(name, item.get("pattern"), item.get("definition"),
                                         item.get("priority"), item.get("apply-to"))
            except PolicyError as exc:
                raise ImportRefused(f"Validation failed\n\n{exc}\n ({vhost}/{name})") from None
            self.steps.append(lambda v=vhost, p=policy: self.broker.policies.set(
                v, p.name, p.pattern, p.definition, p.priority, p.apply_to))

    def _queues(self, items: list[dict]) -> None:
        for item in items:
            vhost_name = self._vhost_of(item)
            name = _text(item, "name", "queues")
            durable, auto_delete = _flag(item, "durable"), _flag(item, "auto_delete")
            args = _table(item, "queues")
            vhost = self.broker.vhosts.get(vhost_name)
            existing = vhost.queues.get(name) if vhost is not None else None
            try:
                if existing is not None:
                    if existing.exclusive_owner is not None:  # a connection's own queue
                        raise errors.resource_locked(name, vhost_name)
                    check_queue_equivalence(existing, vhost_name, durable, auto_delete, args.typed)
                else:
                    validate_queue_arguments(name, vhost_name, args.typed)
            except errors.AMQPError as exc:
                raise ImportRefused(exc.explanation) from None
            self.steps.append(lambda v=vhost_name, n=name, d=durable, a=auto_delete, t=args:
                              self.broker.vhosts[v].declare_queue(n, False, d, False, a, t, None))

    def _exchanges(self, items: list[dict]) -> None:
        for item in items:
            vhost_name = self._vhost_of(item)
            name = _text(item, "name", "exchanges")
            type_name = _text(item, "type", "exchanges")
            durable, auto_delete = _flag(item, "durable"), _flag(item, "auto_delete")
            internal = _flag(item, "internal")
            args = _table(item, "exchanges")
            if not name or name.startswith("amq."):
                continue  # the standard exchanges every vhost has
            if type_name not in EXCHANGE_TYPES:
                raise ImportRefused(f"unknown exchange type '{type_name}'")
            vhost = self.broker.vhosts.get(vhost_name)
            existing = vhost.exchanges.get(name) if vhost is not None else None
            if existing is not None:
                try:
                    check_exchange_equivalence(existing, vhost_name, type_name, durable, auto_delete, internal,
                                               args.typed)
                except errors.AMQPError as exc:
                    raise ImportRefused(exc.explanation) from None
            self.steps.append(lambda v=vhost_name, n=name, t=type_name, d=durable, a=auto_delete, i=internal,
                              g=args: self.broker.vhosts[v].declare_exchange(n, t, False, d, a, i, g))

    def _bindings(self, items: list[dict]) -> None:
        for item in items:
            vhost_name = self._vhost_of(item)
            source = _text(item, "source", "bindings")
            destination = _text(item, "destination", "bindings")
            kind = _text(item, "destination_type", "bindings")
            key = _text(item, "routing_key", "bindings", "")
            if kind not in ("queue", "exchange"):
                raise ImportRefused("bindings: destination_type must be queue or exchange")
            arguments = _table(item, "bindings").plain
            if not source:
                continue  # the default exchange's bindings are implicit
            self.steps.append(lambda v=vhost_name, s=source, d=destination, q=kind == "queue", k=key,
                              a=arguments: self._bind(v, s, d, q, k, a))

    def _bind(self, vhost_name: str, source: str, destination: str, to_queue: bool, key: str,
              arguments: dict) -> None:
        vhost = self.broker.vhosts[vhost_name]
        if source not in vhost.exchanges or destination not in (vhost.queues if to_queue else vhost.exchanges):
            return  # RabbitMQ skips a binding whose ends are missing
        vhost.bind(source, destination, to_queue, key, arguments, None)


def _meta(item: dict) -> VHostMeta | None:
    """The metadata an exported vhost carries (later RabbitMQ versions export it), or None."""
    metadata = item.get("metadata")
    source = metadata if isinstance(metadata, dict) else item
    if not any(key in source for key in ("description", "tags")) and "tracing" not in item:
        return None
    description = source.get("description", "")
    tags = source.get("tags", [])
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    if not isinstance(description, str) or not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ImportRefused("vhosts: description must be a string and tags a list of strings")
    return VHostMeta(description, tuple(tags), item.get("tracing") is True)
