"""Who may do what in the management API: users of each tag (administrator, monitoring,
policymaker, management), with and without a permission entry on a vhost, as RabbitMQ 3.10
answers them (rabbit_mgmt_util:is_authorized_*, filter_vhost, filter_user).

Runs against our broker, or a real RabbitMQ 3.10 when MGMT_REFERENCE_URL is set
(helpers.mgmt): every status and body asserted here is the reference's answer. A module-wide
`world` holds two vhosts (one the "-p" users have permissions on, one nobody has) and one user
per tag with and without permissions.
"""
from __future__ import annotations

import urllib.parse
import uuid
from dataclasses import dataclass

import pika
import pika.exceptions
import pytest

from helpers.mgmt import Mgmt, polled

PASSWORD = "authz-pw"
TAGS = {"adm": "administrator", "mon": "monitoring", "pol": "policymaker", "man": "management"}
KINDS = [f"{short}{perm}" for short in TAGS for perm in ("", "-p")]  # "-p": has permissions on `vhost`
FULL = {"configure": ".*", "write": ".*", "read": ".*"}


def q(name: str) -> str:
    return urllib.parse.quote(name, safe="")


def not_authorised(reason: str) -> dict:
    return {"error": "not_authorised", "reason": reason}


NOT_ADMIN = not_authorised("Not administrator user")
NOT_MONITOR = not_authorised("Not monitor user")
NO_VHOST = not_authorised("User not authorised to access virtual host")
NO_OBJECT = not_authorised("User not authorised to access object")
NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}


@dataclass
class World:
    mgmt: Mgmt
    tag: str  # suffix of every name here
    vhost: str  # the "-p" users have full permissions here
    other: str  # nobody but the test's admin has permissions here
    queue: str  # one queue in each vhost, one exchange, one binding, one policy
    exchange: str
    policy: str

    def user(self, kind: str) -> str:
        return f"authz-{kind}-{self.tag}"

    def as_(self, kind: str) -> tuple[str, str]:
        return (self.user(kind), PASSWORD)

    def get(self, kind: str, path: str):
        return self.mgmt.get(path, auth=self.as_(kind))


@pytest.fixture(scope="module")
def world(mgmt: Mgmt):
    tag = uuid.uuid4().hex[:10]
    w = World(mgmt, tag, f"authz-v-{tag}", f"authz-o-{tag}", f"authz-q-{tag}", f"authz-x-{tag}", f"authz-p-{tag}")
    for vhost in (w.vhost, w.other):
        assert mgmt.put(f"/api/vhosts/{q(vhost)}").status == 201
        assert mgmt.put(f"/api/queues/{q(vhost)}/{w.queue}").status == 201
        assert mgmt.put(f"/api/exchanges/{q(vhost)}/{w.exchange}", {"type": "direct"}).status == 201
        assert mgmt.post(f"/api/bindings/{q(vhost)}/e/{w.exchange}/q/{w.queue}", {"routing_key": "k"}).status == 201
        policy = {"pattern": "^authz-none$", "definition": {"max-length": 5}}
        assert mgmt.put(f"/api/policies/{q(vhost)}/{w.policy}", policy).status == 201
    for kind in KINDS:
        mgmt.add_user(w.user(kind), PASSWORD, (TAGS[kind[:3]],))
        if kind.endswith("-p"):
            assert mgmt.put(f"/api/permissions/{q(w.vhost)}/{w.user(kind)}", FULL).status == 201
    yield w
    for kind in KINDS:
        mgmt.remove_user(w.user(kind))
    for vhost in (w.vhost, w.other):
        mgmt.delete(f"/api/vhosts/{q(vhost)}")


def vhosts_of(items: list) -> set:
    return {item["vhost"] for item in items}


# -- administrator-only endpoints -----------------------------------------------------------------

ADMIN_ONLY = [
    "/api/users", "/api/users/without-permissions", "/api/users/{user}", "/api/users/{user}/permissions",
    "/api/permissions", "/api/permissions/{vhost}/{user}", "/api/vhosts/{vhost}/permissions",
    "/api/vhosts/{vhost}", "/api/definitions", "/api/definitions/{vhost}",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ADMIN_ONLY)
def test_administrator_only_reads(world: World, kind: str, path: str):
    reply = world.get(kind, path.format(user=q(world.user("man-p")), vhost=q(world.vhost)))
    if kind.startswith("adm"):
        assert reply.status == 200, reply
    else:
        assert (reply.status, reply.json) == (401, NOT_ADMIN)


@pytest.mark.parametrize("kind", ["mon-p", "pol-p", "man-p"])
def test_administrator_only_writes_are_refused_and_change_nothing(world: World, kind: str):
    mgmt, auth = world.mgmt, world.as_(kind)
    newcomer = f"authz-new-{world.tag}"
    reply = mgmt.put(f"/api/users/{newcomer}", {"password": "x", "tags": "administrator"}, auth=auth)
    assert (reply.status, reply.json) == (401, NOT_ADMIN)
    assert mgmt.get(f"/api/users/{newcomer}").status == 404
    reply = mgmt.put(f"/api/permissions/{q(world.other)}/{world.user(kind)}", FULL, auth=auth)
    assert (reply.status, reply.json) == (401, NOT_ADMIN)
    assert mgmt.get(f"/api/permissions/{q(world.other)}/{world.user(kind)}").status == 404
    reply = mgmt.delete(f"/api/vhosts/{q(world.other)}", auth=auth)
    assert (reply.status, reply.json) == (401, NOT_ADMIN)
    assert mgmt.get(f"/api/vhosts/{q(world.other)}").status == 200
    reply = mgmt.put(f"/api/vhosts/authz-new-{world.tag}", auth=auth)
    assert (reply.status, reply.json) == (401, NOT_ADMIN)
    assert mgmt.get(f"/api/vhosts/authz-new-{world.tag}").status == 404
    reply = mgmt.post("/api/definitions", {"vhosts": [{"name": f"authz-new-{world.tag}"}]}, auth=auth)
    assert (reply.status, reply.json) == (401, NOT_ADMIN)
    assert mgmt.get(f"/api/vhosts/authz-new-{world.tag}").status == 404


def test_administrator_check_comes_before_the_missing_vhost(world: World):
    missing = f"/api/vhosts/authz-missing-{world.tag}"
    assert (world.get("man-p", missing).status, world.get("man-p", missing).json) == (401, NOT_ADMIN)
    assert world.get("adm", missing).json == NOT_FOUND


# -- monitoring ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_nodes_need_monitoring_or_administrator(world: World, kind: str):
    reply = world.get(kind, "/api/nodes")
    if kind[:3] in ("adm", "mon"):
        assert reply.status == 200 and len(reply.json) == 1
    else:
        assert (reply.status, reply.json) == (401, NOT_MONITOR)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["/api/overview", "/api/whoami", "/api/health/checks/alarms"])
def test_every_management_user_reaches_the_general_endpoints(world: World, kind: str, path: str):
    assert world.get(kind, path).status == 200


# -- vhost-scoped endpoints -----------------------------------------------------------------------

VHOST_SCOPED = [
    "/api/queues/{vhost}", "/api/queues/{vhost}/{queue}", "/api/queues/{vhost}/{queue}/bindings",
    "/api/exchanges/{vhost}", "/api/exchanges/{vhost}/{exchange}",
    "/api/exchanges/{vhost}/{exchange}/bindings/source", "/api/bindings/{vhost}",
    "/api/bindings/{vhost}/e/{exchange}/q/{queue}", "/api/bindings/{vhost}/e/{exchange}/q/{queue}/k",
    "/api/vhosts/{vhost}/connections", "/api/vhosts/{vhost}/channels", "/api/policies/{vhost}",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", VHOST_SCOPED)
def test_vhost_scoped_reads_need_a_permission_entry_except_for_administrators(world: World, kind: str, path: str):
    reply = world.get(kind, path.format(vhost=q(world.vhost), queue=world.queue, exchange=world.exchange))
    if kind.startswith("adm") or kind.endswith("-p"):
        assert reply.status == 200, reply
    else:
        assert (reply.status, reply.json) == (401, NO_VHOST)


@pytest.mark.parametrize("kind", ["mon-p", "pol-p", "man-p"])
def test_a_permission_entry_elsewhere_does_not_open_a_vhost(world: World, kind: str):
    reply = world.get(kind, f"/api/queues/{q(world.other)}/{world.queue}")
    assert (reply.status, reply.json) == (401, NO_VHOST)


@pytest.mark.parametrize("kind", ["man", "adm"])
def test_a_missing_vhost_is_not_found_for_everyone(world: World, kind: str):
    for path in (f"/api/queues/authz-missing-{world.tag}", f"/api/exchanges/authz-missing-{world.tag}/x"):
        reply = world.get(kind, path)
        assert (reply.status, reply.json) == (404, NOT_FOUND)


def test_vhost_scoped_writes_without_access_are_refused_and_change_nothing(world: World):
    mgmt, auth, vhost = world.mgmt, world.as_("man"), q(world.vhost)
    reply = mgmt.put(f"/api/queues/{vhost}/authz-new-{world.tag}", auth=auth)
    assert (reply.status, reply.json) == (401, NO_VHOST)
    assert mgmt.get(f"/api/queues/{vhost}/authz-new-{world.tag}").status == 404
    reply = mgmt.delete(f"/api/queues/{vhost}/{world.queue}", auth=auth)
    assert (reply.status, reply.json) == (401, NO_VHOST)
    reply = mgmt.delete(f"/api/exchanges/{vhost}/{world.exchange}", auth=auth)
    assert (reply.status, reply.json) == (401, NO_VHOST)
    reply = mgmt.delete(f"/api/queues/{vhost}/{world.queue}/contents", auth=auth)
    assert (reply.status, reply.json) == (401, NO_VHOST)
    publish = {"properties": {}, "routing_key": "k", "payload": "x", "payload_encoding": "string"}
    reply = mgmt.post(f"/api/exchanges/{vhost}/{world.exchange}/publish", publish, auth=auth)
    assert (reply.status, reply.json) == (401, NO_VHOST)
    reply = mgmt.delete(f"/api/bindings/{vhost}/e/{world.exchange}/q/{world.queue}/k", auth=auth)
    assert (reply.status, reply.json) == (401, NO_VHOST)
    assert mgmt.get(f"/api/queues/{vhost}/{world.queue}").status == 200
    assert mgmt.get(f"/api/exchanges/{vhost}/{world.exchange}").status == 200
    assert mgmt.get(f"/api/bindings/{vhost}/e/{world.exchange}/q/{world.queue}/k").status == 200


def test_a_management_user_with_access_declares_and_deletes(world: World):
    mgmt, auth, vhost = world.mgmt, world.as_("man-p"), q(world.vhost)
    name = f"authz-own-{world.tag}"
    assert mgmt.put(f"/api/queues/{vhost}/{name}", auth=auth).status == 201
    assert mgmt.delete(f"/api/queues/{vhost}/{name}", auth=auth).status == 204


def test_aliveness_test_logs_in_to_the_vhost(world: World):
    vhost = q(world.other)  # nobody tested here has permissions on it
    reply = world.get("man", f"/api/aliveness-test/{vhost}")
    assert (reply.status, reply.json) == (401, NO_VHOST)
    # an administrator passes the vhost check, but the AMQP login to the vhost refuses it
    reply = world.get("adm", f"/api/aliveness-test/{vhost}")
    assert (reply.status, reply.json) == (401, not_authorised("Access refused."))
    assert world.get("adm", f"/api/aliveness-test/authz-missing-{world.tag}").status == 404


# -- policies -------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_one_policy_needs_a_policymaker_with_access(world: World, kind: str):
    path = f"/api/policies/{q(world.vhost)}/{world.policy}"
    reply = world.get(kind, path)
    if kind.startswith("adm") or kind == "pol-p":
        assert reply.status == 200 and reply.json["name"] == world.policy
    else:
        assert (reply.status, reply.json) == (401, NO_OBJECT)


@pytest.mark.parametrize("kind", ["mon-p", "man-p", "pol"])
def test_policy_writes_by_others_are_refused_and_change_nothing(world: World, kind: str):
    mgmt, auth = world.mgmt, world.as_(kind)
    path = f"/api/policies/{q(world.vhost)}/{world.policy}"
    reply = mgmt.put(path, {"pattern": "^changed$", "definition": {"max-length": 1}}, auth=auth)
    assert (reply.status, reply.json) == (401, NO_OBJECT)
    reply = mgmt.delete(path, auth=auth)
    assert (reply.status, reply.json) == (401, NO_OBJECT)
    assert mgmt.get(path).json["pattern"] == "^authz-none$"


def test_a_policymaker_with_access_writes_policies(world: World):
    mgmt, auth = world.mgmt, world.as_("pol-p")
    path = f"/api/policies/{q(world.vhost)}/authz-pm-{world.tag}"
    assert mgmt.put(path, {"pattern": "^pm$", "definition": {"max-length": 2}}, auth=auth).status == 201
    assert mgmt.delete(path, auth=auth).status == 204
    # ... but only in the vhosts it may access
    reply = mgmt.put(f"/api/policies/{q(world.other)}/authz-pm-{world.tag}",
                     {"pattern": "^pm$", "definition": {"max-length": 2}}, auth=auth)
    assert (reply.status, reply.json) == (401, NO_OBJECT)


# -- list filtering ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("path", ["/api/queues", "/api/exchanges", "/api/bindings", "/api/policies"])
def test_lists_show_the_vhosts_a_user_may_access(world: World, kind: str, path: str):
    """Administrators see every vhost's objects; everybody else, monitors too, only those of
    the vhosts they have a permission entry on."""
    reply = world.get(kind, path)
    assert reply.status == 200
    ours = vhosts_of(reply.json) & {world.vhost, world.other}
    if kind.startswith("adm"):
        assert ours == {world.vhost, world.other}
    elif kind.endswith("-p"):
        assert vhosts_of(reply.json) == {world.vhost}
    else:
        assert reply.json == []


@pytest.mark.parametrize("kind", KINDS)
def test_vhost_list_shows_every_vhost_to_monitors_only(world: World, kind: str):
    names = {v["name"] for v in world.get(kind, "/api/vhosts").json}
    if kind[:3] in ("adm", "mon"):
        assert {world.vhost, world.other} <= names
    elif kind.endswith("-p"):
        assert names == {world.vhost}
    else:
        assert names == set()


def test_pagination_counts_only_what_the_user_sees(world: World):
    everything = world.get("man-p", "/api/queues").json
    page = world.get("man-p", "/api/queues?page=1&page_size=100").json
    assert page["total_count"] == page["filtered_count"] == len(everything) == page["item_count"]
    assert vhosts_of(page["items"]) == {world.vhost}


# -- connections, channels, consumers: one's own, or everyone's for monitors ------------------------

@pytest.fixture(scope="module")
def clients(world: World):
    """An AMQP connection with a channel and a consumer of the management user and of the
    monitoring user (both in `vhost`), and one of the test's administrator (its own vhost)."""
    url = urllib.parse.urlsplit(world.mgmt.amqp_url)
    conns = {}
    for kind, vhost, user, password in (("man-p", world.vhost, world.user("man-p"), PASSWORD),
                                        ("mon-p", world.vhost, world.user("mon-p"), PASSWORD),
                                        ("admin", urllib.parse.unquote(url.path[1:] or "/"),
                                         world.mgmt.user, world.mgmt.password)):
        params = pika.ConnectionParameters(
            url.hostname, url.port, vhost, pika.PlainCredentials(user, password),
            client_properties={"connection_name": f"authz-{kind}-{world.tag}"})
        conn = pika.BlockingConnection(params)
        channel = conn.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.basic_consume(queue, lambda *args: None)
        conns[kind] = conn
    labels = {f"authz-{kind}-{world.tag}" for kind in conns}

    def named(item) -> str | None:
        return (item.get("client_properties") or {}).get("connection_name")

    listed = polled(world.mgmt, "/api/connections", lambda cs: labels <= {named(c) for c in cs})
    names = {named(c).split("-")[1]: c["name"] for c in listed if named(c) in labels}
    # channels and consumers reach RabbitMQ's statistics a little later than connections
    polled(world.mgmt, "/api/channels", lambda chs: {c["connection_details"]["name"] for c in chs} >= set(names.values()))
    polled(world.mgmt, "/api/consumers",
           lambda cs: {c["channel_details"]["connection_name"] for c in cs} >= set(names.values()))
    yield names
    for conn in conns.values():
        if conn.is_open:
            try:
                conn.close()
            except pika.exceptions.AMQPError:  # the test closed it through the API
                pass


CONNECTION_LISTS = ["/api/connections", "/api/channels", "/api/consumers", "/api/consumers/{vhost}",
                    "/api/vhosts/{vhost}/connections", "/api/vhosts/{vhost}/channels"]


def user_of(item: dict) -> str:
    """The user of a connection or channel, or of a consumer's channel."""
    return item["channel_details"]["user"] if "channel_details" in item else item["user"]


@pytest.mark.parametrize("path", CONNECTION_LISTS)
def test_connection_lists_show_a_management_user_only_its_own(world: World, clients, path: str):
    path = path.format(vhost=q(world.vhost))
    assert {user_of(item) for item in world.get("man-p", path).json} == {world.user("man-p")}
    seen_by_monitor = {user_of(item) for item in world.get("mon-p", path).json}
    assert {world.user("man-p"), world.user("mon-p")} <= seen_by_monitor
    if world.vhost not in path:
        assert world.mgmt.user in seen_by_monitor  # the administrator's, in another vhost


@pytest.mark.parametrize("path", CONNECTION_LISTS[:4])
def test_connection_lists_of_a_user_without_connections_are_empty(world: World, clients, path: str):
    assert world.get("pol", path.format(vhost=q(world.vhost))).json == []


def test_monitors_without_permissions_see_every_connection(world: World, clients):
    seen = {user_of(item) for item in world.get("mon", "/api/connections").json}
    assert {world.user("man-p"), world.user("mon-p"), world.mgmt.user} <= seen


def test_one_connection_or_channel_for_its_owner_and_monitors(world: World, clients):
    admins = q(clients["admin"])
    for path in (f"/api/connections/{admins}", f"/api/connections/{admins}/channels",
                 f"/api/channels/{q(clients['admin'] + ' (1)')}"):
        assert world.get("mon", path).status == 200
        reply = world.get("man-p", path)
        assert (reply.status, reply.json) == (401, NO_OBJECT)
    own = q(clients["man"])
    assert world.get("man-p", f"/api/connections/{own}").json["user"] == world.user("man-p")
    assert world.get("man-p", f"/api/channels/{q(clients['man'] + ' (1)')}").status == 200


def test_closing_a_connection_needs_its_owner_or_an_administrator(world: World, clients):
    mgmt = world.mgmt
    reply = mgmt.delete(f"/api/connections/{q(clients['mon'])}", auth=world.as_("man-p"))
    assert (reply.status, reply.json) == (401, NO_OBJECT)
    # monitors see everyone's connections, but close only their own
    reply = mgmt.delete(f"/api/connections/{q(clients['man'])}", auth=world.as_("mon-p"))
    assert (reply.status, reply.json) == (401, NO_OBJECT)
    assert mgmt.get(f"/api/connections/{q(clients['man'])}").status == 200
    assert mgmt.delete(f"/api/connections/{q(clients['man'])}", auth=world.as_("man-p")).status == 204
