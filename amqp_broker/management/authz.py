"""Who may use which management endpoint, and which list items they see: rabbitmq_management
3.10's authorisation by user tags and vhost access (rabbit_mgmt_util:is_authorized_admin,
is_authorized_monitor, is_authorized_vhost, is_authorized_policies, is_authorized_user,
filter_vhost, filter_user, list_visible_vhosts), sans-IO: a user's tags and vhosts, the
request's method and route template in, a 401 reason or a list filter out.

The tags (rabbit_web_dispatch_access_control):
- administrator: everything, in every vhost (no permission entry needed to *see* a vhost's
  objects; changing them goes through AMQP, which checks permissions itself);
- monitoring: also nodes, every vhost's name, every connection, channel and consumer;
- policymaker: also the policies of the vhosts it may access;
- management: only the vhosts it has a permission entry on, and its own connections.

"Access to a vhost" is rabbit_access_control:check_vhost_access with the internal backend:
the user has a permission entry (any patterns) on it. A path naming a vhost that does not
exist passes the vhost check, so the handler answers its 404.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable

from .listing import lookup

ADMINISTRATOR = "administrator"
MONITORING = "monitoring"
POLICYMAKER = "policymaker"
MANAGEMENT = "management"
MANAGEMENT_TAGS = frozenset({ADMINISTRATOR, MONITORING, POLICYMAKER, MANAGEMENT})

# the 401 reasons RabbitMQ answers with ({"error": "not_authorised", "reason": ...})
NOT_ADMINISTRATOR = "Not administrator user"
NOT_MONITOR = "Not monitor user"
NO_VHOST_ACCESS = "User not authorised to access virtual host"
NO_OBJECT_ACCESS = "User not authorised to access object"
ACCESS_REFUSED = "Access refused."


@dataclass(frozen=True)
class Subject:
    """The logged-in user as authorisation sees it: name, tags and the vhosts it may access."""

    name: str
    tags: frozenset[str]
    vhosts: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMINISTRATOR in self.tags

    @property
    def is_monitor(self) -> bool:
        return ADMINISTRATOR in self.tags or MONITORING in self.tags

    @property
    def is_policymaker(self) -> bool:
        return ADMINISTRATOR in self.tags or POLICYMAKER in self.tags

    def may_enter(self, vhost: str) -> bool:
        return vhost in self.vhosts


class Check(enum.Enum):
    """What a route requires of the user (after the management-tag login check)."""

    PUBLIC = "public"  # no login at all (Prometheus scrapes, as rabbitmq_prometheus)
    LOGIN = "login"  # any management user (rabbit_mgmt_util:is_authorized)
    ADMIN = "admin"  # is_authorized_admin
    MONITOR = "monitor"  # is_authorized_monitor
    VHOST = "vhost"  # is_authorized_vhost: administrator, or access to the path's vhost
    POLICIES = "policies"  # is_authorized_policies: administrator, or policymaker with access
    OWNER = "owner"  # is_authorized_user: a connection's or channel's user, or a monitor
    # (an administrator to close); the aliveness test logs in to the vhost, so without access
    # an administrator is refused too (by the AMQP login: "Access refused.")
    VHOST_LOGIN = "vhost_login"


class Scope(enum.Enum):
    """Which items of a list the user sees."""

    ALL = "all"
    VHOST_ITEMS = "vhost_items"  # filter_vhost: administrators all, others their vhosts' items
    VISIBLE_VHOSTS = "visible_vhosts"  # list_visible_vhosts: monitors all, others theirs
    OWN = "own"  # filter_user: monitors all, others only their own


class Owned(enum.Enum):
    """The kind of object an OWNER route names (its `{name}`), to look its user up."""

    CONNECTION = "connection"
    CHANNEL = "channel"


@dataclass(frozen=True)
class Rule:
    check: Check
    scope: Scope = Scope.ALL
    key: str = ""  # the dotted field of a list item its scope filters on
    owned: Owned | None = None


PUBLIC = Rule(Check.PUBLIC)
LOGIN = Rule(Check.LOGIN)
ADMIN = Rule(Check.ADMIN)
MONITOR = Rule(Check.MONITOR)
VHOST = Rule(Check.VHOST)
POLICIES = Rule(Check.POLICIES)
VHOST_ITEMS = Rule(Check.LOGIN, Scope.VHOST_ITEMS, "vhost")
OWN_ITEMS = Rule(Check.LOGIN, Scope.OWN, "user")
OWN_CONSUMERS = Rule(Check.LOGIN, Scope.OWN, "channel_details.user")
OWN_IN_VHOST = Rule(Check.VHOST, Scope.OWN, "user")
CONNECTION = Rule(Check.OWNER, owned=Owned.CONNECTION)
CHANNEL = Rule(Check.OWNER, owned=Owned.CHANNEL)

ANY_METHOD = "*"

# (method, route template) -> rule, as each rabbit_mgmt_wm_* resource's is_authorized/2 and
# to_json/2 of 3.10 decide (checked against a RabbitMQ 3.10 with a user of each tag)
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/metrics/"): PUBLIC,
    ("GET", "/metrics/per-object"): PUBLIC,
    ("GET", "/metrics/per-object/"): PUBLIC,
    ("GET", "/api/overview"): LOGIN,
    ("GET", "/api/whoami"): LOGIN,
    ("GET", "/api/nodes"): MONITOR,
    ("GET", "/api/nodes/{node}"): MONITOR,
    ("GET", "/api/health/checks/alarms"): LOGIN,
    ("GET", "/api/health/checks/local-alarms"): LOGIN,
    ("GET", "/api/health/checks/virtual-hosts"): LOGIN,
    ("GET", "/api/health/checks/port-listener/{port}"): LOGIN,
    ("GET", "/api/health/checks/protocol-listener/{protocol}"): LOGIN,
    ("GET", "/api/healthchecks/node"): LOGIN,
    ("GET", "/api/healthchecks/node/{node}"): LOGIN,
    ("GET", "/api/aliveness-test/{vhost}"): Rule(Check.VHOST_LOGIN),
    # vhosts: the list for everyone (filtered); one vhost, creating and deleting: administrators
    ("GET", "/api/vhosts"): Rule(Check.LOGIN, Scope.VISIBLE_VHOSTS, "name"),
    (ANY_METHOD, "/api/vhosts/{vhost}"): ADMIN,
    ("GET", "/api/vhosts/{vhost}/permissions"): ADMIN,
    ("GET", "/api/vhosts/{vhost}/topic-permissions"): ADMIN,
    ("GET", "/api/vhosts/{vhost}/connections"): OWN_IN_VHOST,
    ("GET", "/api/vhosts/{vhost}/channels"): OWN_IN_VHOST,
    # users, permissions and definitions: administrators only
    (ANY_METHOD, "/api/users"): ADMIN,
    (ANY_METHOD, "/api/users/without-permissions"): ADMIN,
    (ANY_METHOD, "/api/users/bulk-delete"): ADMIN,
    (ANY_METHOD, "/api/users/{user}"): ADMIN,
    (ANY_METHOD, "/api/users/{user}/permissions"): ADMIN,
    (ANY_METHOD, "/api/users/{user}/topic-permissions"): ADMIN,
    (ANY_METHOD, "/api/permissions"): ADMIN,
    (ANY_METHOD, "/api/permissions/{vhost}/{user}"): ADMIN,
    (ANY_METHOD, "/api/topic-permissions"): ADMIN,
    (ANY_METHOD, "/api/definitions"): ADMIN,
    (ANY_METHOD, "/api/definitions/{vhost}"): ADMIN,
    # a vhost's queues, exchanges and bindings: whoever may access the vhost
    ("GET", "/api/queues"): VHOST_ITEMS,
    (ANY_METHOD, "/api/queues/{vhost}"): VHOST,
    (ANY_METHOD, "/api/queues/{vhost}/{name}"): VHOST,
    (ANY_METHOD, "/api/queues/{vhost}/{name}/bindings"): VHOST,
    (ANY_METHOD, "/api/queues/{vhost}/{name}/contents"): VHOST,
    (ANY_METHOD, "/api/queues/{vhost}/{name}/get"): VHOST,
    ("GET", "/api/exchanges"): VHOST_ITEMS,
    (ANY_METHOD, "/api/exchanges/{vhost}"): VHOST,
    (ANY_METHOD, "/api/exchanges/{vhost}/{name}"): VHOST,
    (ANY_METHOD, "/api/exchanges/{vhost}/{name}/bindings/source"): VHOST,
    (ANY_METHOD, "/api/exchanges/{vhost}/{name}/bindings/destination"): VHOST,
    (ANY_METHOD, "/api/exchanges/{vhost}/{name}/publish"): VHOST,
    ("GET", "/api/bindings"): VHOST_ITEMS,
    (ANY_METHOD, "/api/bindings/{vhost}"): VHOST,
    (ANY_METHOD, "/api/bindings/{vhost}/e/{source}/{dtype}/{dest}"): VHOST,
    (ANY_METHOD, "/api/bindings/{vhost}/e/{source}/{dtype}/{dest}/{props}"): VHOST,
    # policies: listing them needs vhost access, one policy (read or write) a policymaker
    ("GET", "/api/policies"): VHOST_ITEMS,
    ("GET", "/api/policies/{vhost}"): VHOST,
    (ANY_METHOD, "/api/policies/{vhost}/{name}"): POLICIES,
    # vhost limits: read by whoever may access the vhost, set by administrators (the default)
    ("GET", "/api/vhost-limits"): VHOST_ITEMS,
    ("GET", "/api/vhost-limits/{vhost}"): VHOST,
    (ANY_METHOD, "/api/vhost-limits/{vhost}/{name}"): ADMIN,
    # connections, channels, consumers: a user's own; monitors see (administrators close) all
    ("GET", "/api/connections"): OWN_ITEMS,
    (ANY_METHOD, "/api/connections/{name}"): CONNECTION,
    ("GET", "/api/connections/{name}/channels"): CONNECTION,
    ("GET", "/api/channels"): OWN_ITEMS,
    ("GET", "/api/channels/{name}"): CHANNEL,
    ("GET", "/api/consumers"): OWN_CONSUMERS,
    ("GET", "/api/consumers/{vhost}"): OWN_CONSUMERS,  # no vhost check here in 3.10
}


# templates that end in "/" and have rules of their own
_SLASHED = frozenset(template for _method, template in RULES if template.endswith("/"))


def rule_for(method: str, template: str | None) -> Rule:
    """The rule of a route. A request that matched no route (404/405) only needs a login;
    a route missing from RULES is for administrators only, so a new endpoint is closed until
    its rule is written down."""
    if template is None:
        return LOGIN
    if template.endswith("/") and len(template) > 1 and template not in _SLASHED:
        template = template[:-1]  # the trailing-slash twin of a route has the route's rule
    method = "GET" if method == "HEAD" else method
    rule = RULES.get((method, template)) or RULES.get((ANY_METHOD, template))
    return rule if rule is not None else ADMIN


@dataclass(frozen=True)
class Target:
    """What the path names, as far as authorisation needs it: its vhost (None without one,
    or when that vhost does not exist) and, for an OWNER route, the user of the connection or
    channel it names (None when there is no such object: the handler answers 404)."""

    vhost: str | None = None
    owner: str | None = None


def refusal(subject: Subject, method: str, rule: Rule, target: Target) -> str | None:
    """The reason of the 401 to answer, or None when the user may go on."""
    check = rule.check
    if check in (Check.PUBLIC, Check.LOGIN):
        return None
    if check is Check.ADMIN:
        return None if subject.is_admin else NOT_ADMINISTRATOR
    if check is Check.MONITOR:
        return None if subject.is_monitor else NOT_MONITOR
    entered = target.vhost is None or subject.may_enter(target.vhost)
    if check is Check.VHOST:
        return None if subject.is_admin or entered else NO_VHOST_ACCESS
    if check is Check.POLICIES:
        return None if subject.is_admin or (subject.is_policymaker and entered) else NO_OBJECT_ACCESS
    if check is Check.VHOST_LOGIN:
        if entered:
            return None
        return ACCESS_REFUSED if subject.is_admin else NO_VHOST_ACCESS
    # Check.OWNER
    if target.owner is None or target.owner == subject.name:
        return None
    privileged = subject.is_admin if method == "DELETE" else subject.is_monitor
    return None if privileged else NO_OBJECT_ACCESS


def visible(subject: Subject, rule: Rule, items: Iterable[dict]) -> list[dict]:
    """The items of a list answer the user may see, in their order."""
    scope = rule.scope
    if scope is Scope.ALL:
        return list(items)
    if scope is Scope.VHOST_ITEMS:
        # administrators see every vhost's items (RabbitMQ keeps those of existing vhosts,
        # which every listed item is in)
        if subject.is_admin:
            return list(items)
        return [item for item in items if lookup(item, rule.key) in subject.vhosts]
    if subject.is_monitor:
        return list(items)
    if scope is Scope.VISIBLE_VHOSTS:
        return [item for item in items if lookup(item, rule.key) in subject.vhosts]
    # Scope.OWN
    return [item for item in items if lookup(item, rule.key) == subject.name]


@dataclass(frozen=True)
class Viewer:
    """A request's user and route rule, kept on the request for the list answer."""

    subject: Subject
    rule: Rule

    def visible(self, items: list[dict]) -> list[dict]:
        return visible(self.subject, self.rule, items)
