"""Unit tests for amqp_broker.management.authz: the rule of every route, the 401 reasons by
tags and vhost access, and which list items each user sees (the HTTP behaviour itself is in
test_mgmt_authz.py, checked against RabbitMQ 3.10)."""
from __future__ import annotations

import base64

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from amqp_broker.broker import Broker
from amqp_broker.management import auth, authz
from amqp_broker.management.app import make_app
from amqp_broker.management.authz import Check, Rule, Scope, Subject, Target, refusal, rule_for, visible


def subject(*tags: str, vhosts=("v",), name: str = "u") -> Subject:
    return Subject(name, frozenset(tags), frozenset(vhosts))


ADMIN = subject("administrator", vhosts=())
MONITOR = subject("monitoring", vhosts=())
POLICYMAKER = subject("policymaker")
MANAGEMENT = subject("management")
STRANGER = subject("management", vhosts=())


# -- the routes ---------------------------------------------------------------------------------

def all_routes() -> set[tuple[str, str]]:
    app = make_app(Broker(port=0))
    return {(route.method, route.resource.canonical) for route in app.router.routes()}


def is_twin(template: str, templates: set[str]) -> bool:
    """The trailing-slash twin the app adds to a route (app.add_trailing_slash_routes)."""
    return template.endswith("/") and template[:-1] in templates


def registered_routes() -> list[tuple[str, str]]:
    routes = all_routes()
    templates = {t for _m, t in routes}
    return sorted(r for r in routes if not is_twin(r[1], templates))


def test_trailing_slash_twins_have_their_routes_rule():
    routes = all_routes()
    templates = {t for _m, t in routes}
    twins = [(m, t) for m, t in routes if is_twin(t, templates)]
    assert ("GET", "/api/healthchecks/node/") in twins
    for method, template in twins:
        assert rule_for(method, template) is rule_for(method, template[:-1])


@pytest.mark.parametrize(("method", "template"), registered_routes())
def test_every_route_has_its_own_rule(method: str, template: str):
    method = "GET" if method == "HEAD" else method
    assert (method, template) in authz.RULES or (authz.ANY_METHOD, template) in authz.RULES


def test_rule_lookup():
    assert rule_for("GET", "/api/queues") is authz.VHOST_ITEMS
    assert rule_for("HEAD", "/api/nodes") is authz.MONITOR
    assert rule_for("DELETE", "/api/users/{user}") is authz.ADMIN  # any method
    assert rule_for("GET", "/api/not-yet-ruled") is authz.ADMIN  # closed until written down
    assert rule_for("GET", None) is authz.LOGIN  # no route matched: login, then 404/405
    assert rule_for("GET", "/metrics") is authz.PUBLIC


# -- 401 reasons --------------------------------------------------------------------------------

def test_tags():
    assert ADMIN.is_admin and ADMIN.is_monitor and ADMIN.is_policymaker
    assert MONITOR.is_monitor and not MONITOR.is_admin and not MONITOR.is_policymaker
    assert POLICYMAKER.is_policymaker and not POLICYMAKER.is_monitor
    assert not (MANAGEMENT.is_admin or MANAGEMENT.is_monitor or MANAGEMENT.is_policymaker)


@pytest.mark.parametrize(("who", "admin", "monitor"), [
    (ADMIN, None, None),
    (MONITOR, authz.NOT_ADMINISTRATOR, None),
    (POLICYMAKER, authz.NOT_ADMINISTRATOR, authz.NOT_MONITOR),
    (MANAGEMENT, authz.NOT_ADMINISTRATOR, authz.NOT_MONITOR),
])
def test_tag_checks(who: Subject, admin, monitor):
    assert refusal(who, "GET", authz.ADMIN, Target()) == admin
    assert refusal(who, "GET", authz.MONITOR, Target()) == monitor
    assert refusal(who, "GET", authz.LOGIN, Target()) is None
    assert refusal(who, "GET", authz.PUBLIC, Target()) is None


def test_vhost_check():
    assert refusal(MANAGEMENT, "GET", authz.VHOST, Target("v")) is None
    assert refusal(MANAGEMENT, "PUT", authz.VHOST, Target("w")) == authz.NO_VHOST_ACCESS
    assert refusal(MONITOR, "GET", authz.VHOST, Target("v")) == authz.NO_VHOST_ACCESS
    assert refusal(ADMIN, "DELETE", authz.VHOST, Target("v")) is None  # no entry needed
    # no vhost in the path, or one that does not exist: the handler answers (404)
    assert refusal(STRANGER, "GET", authz.VHOST, Target(None)) is None


def test_policies_check():
    policies = authz.POLICIES
    assert refusal(POLICYMAKER, "PUT", policies, Target("v")) is None
    assert refusal(POLICYMAKER, "PUT", policies, Target("w")) == authz.NO_OBJECT_ACCESS
    assert refusal(POLICYMAKER, "PUT", policies, Target(None)) is None
    assert refusal(MANAGEMENT, "GET", policies, Target("v")) == authz.NO_OBJECT_ACCESS
    assert refusal(MANAGEMENT, "GET", policies, Target(None)) == authz.NO_OBJECT_ACCESS
    assert refusal(ADMIN, "DELETE", policies, Target("w")) is None


def test_aliveness_check_refuses_administrators_without_access():
    rule = authz.RULES[("GET", "/api/aliveness-test/{vhost}")]
    assert refusal(MANAGEMENT, "GET", rule, Target("v")) is None
    assert refusal(STRANGER, "GET", rule, Target("v")) == authz.NO_VHOST_ACCESS
    assert refusal(ADMIN, "GET", rule, Target("v")) == authz.ACCESS_REFUSED
    assert refusal(ADMIN, "GET", rule, Target(None)) is None


@pytest.mark.parametrize(("who", "get", "delete"), [
    (subject("management", name="owner"), None, None),
    (MANAGEMENT, authz.NO_OBJECT_ACCESS, authz.NO_OBJECT_ACCESS),
    (POLICYMAKER, authz.NO_OBJECT_ACCESS, authz.NO_OBJECT_ACCESS),
    (MONITOR, None, authz.NO_OBJECT_ACCESS),  # monitors see everyone's, close only their own
    (ADMIN, None, None),
])
def test_owner_check(who: Subject, get, delete):
    assert refusal(who, "GET", authz.CONNECTION, Target(owner="owner")) == get
    assert refusal(who, "DELETE", authz.CONNECTION, Target(owner="owner")) == delete
    # no such connection: the handler answers 404
    assert refusal(who, "DELETE", authz.CONNECTION, Target(owner=None)) is None


# -- list filtering -----------------------------------------------------------------------------

ITEMS = [{"name": "a", "vhost": "v", "user": "u"}, {"name": "b", "vhost": "w", "user": "other"}]


@pytest.mark.parametrize(("who", "names"), [
    (ADMIN, ["a", "b"]),
    (MONITOR, []),  # monitors too see only the objects of vhosts they may access
    (subject("monitoring", vhosts=("w",)), ["b"]),
    (MANAGEMENT, ["a"]),
    (STRANGER, []),
])
def test_vhost_items(who: Subject, names):
    assert [i["name"] for i in visible(who, authz.VHOST_ITEMS, ITEMS)] == names


@pytest.mark.parametrize(("who", "names"), [
    (ADMIN, ["v", "w"]), (MONITOR, ["v", "w"]), (POLICYMAKER, ["v"]), (STRANGER, []),
])
def test_visible_vhosts(who: Subject, names):
    rule = authz.RULES[("GET", "/api/vhosts")]
    assert [i["name"] for i in visible(who, rule, [{"name": "v"}, {"name": "w"}])] == names


@pytest.mark.parametrize(("who", "names"), [
    (ADMIN, ["a", "b"]), (MONITOR, ["a", "b"]), (MANAGEMENT, ["a"]), (subject("policymaker", name="x"), []),
])
def test_own_items(who: Subject, names):
    assert [i["name"] for i in visible(who, authz.OWN_ITEMS, ITEMS)] == names
    consumers = [{"name": i["name"], "channel_details": {"user": i["user"]}} for i in ITEMS]
    assert [i["name"] for i in visible(who, authz.OWN_CONSUMERS, consumers)] == names


def test_unscoped_lists_are_kept_whole():
    rule = Rule(Check.ADMIN)
    assert rule.scope is Scope.ALL
    assert visible(STRANGER, rule, ITEMS) == ITEMS


# -- the middleware -----------------------------------------------------------------------------

async def test_public_routes_need_no_login_and_others_do():
    """A PUBLIC route (a Prometheus scrape) answers without credentials; the rules of every
    other route apply after the login."""
    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text="# metrics\n")

    broker = Broker(port=0)
    app = make_app(broker)
    app.router.add_get("/metrics", metrics)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/metrics")).status == 200
        no_login = await client.get("/api/nodes")
        assert no_login.status == 401 and "WWW-Authenticate" in no_login.headers
        broker.users.add("watcher", "pw", ("management",))
        token = base64.b64encode(b"watcher:pw").decode()
        refused = await client.get("/api/nodes", headers={"Authorization": f"Basic {token}"})
        assert refused.status == 401
        assert await refused.json() == {"error": "not_authorised", "reason": authz.NOT_MONITOR}


def test_subject_of_a_user_lists_its_permission_entries():
    broker = Broker(port=0)
    user = broker.users.add("someone", "pw", ("management",))
    broker.permissions.set("someone", "v1", "", "", "")  # empty patterns still open the vhost
    broker.permissions.set("other", "v2", ".*", ".*", ".*")
    assert auth.subject_of(broker, user) == Subject("someone", frozenset({"management"}), frozenset({"v1"}))
