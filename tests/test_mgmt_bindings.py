"""The management API's bindings: /api/bindings, the binding lists of exchanges and queues, and
create / show / delete of one binding by its properties key, over real HTTP against our broker
or the reference (helpers.mgmt): every status and body asserted here is RabbitMQ 3.10's."""
from __future__ import annotations

import pytest

from helpers.mgmt import Mgmt
from helpers.mgmt_amqp import amqp, bad_request, post, publish  # noqa: F401 - amqp is a fixture

NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}
ACCESS_REFUSED = {"error": "not_authorised", "reason": "Access refused."}


@pytest.fixture
def ends(mgmt: Mgmt, uid: str):
    """A direct exchange `x`, a headers exchange `h` and a queue `q` of this test."""
    made = {"x": f"mgmt-bx-{uid}", "h": f"mgmt-bh-{uid}", "q": f"mgmt-bq-{uid}"}
    assert mgmt.put(f"/api/exchanges/%2F/{made['x']}", {"type": "direct"}).status == 201
    assert mgmt.put(f"/api/exchanges/%2F/{made['h']}", {"type": "headers"}).status == 201
    assert mgmt.put(f"/api/queues/%2F/{made['q']}", {}).status == 201
    yield made
    mgmt.delete(f"/api/exchanges/%2F/{made['x']}")
    mgmt.delete(f"/api/exchanges/%2F/{made['h']}")
    mgmt.delete(f"/api/queues/%2F/{made['q']}")


def binding(source: str, dest: str, kind: str, key: str, props: str, arguments: dict | None = None) -> dict:
    return {"source": source, "vhost": "/", "destination": dest, "destination_type": kind, "routing_key": key,
            "arguments": arguments or {}, "properties_key": props}


def test_create_answers_201_with_the_location_of_the_binding(mgmt: Mgmt, ends):
    pair = f"/api/bindings/%2F/e/{ends['x']}/q/{ends['q']}"
    cases = [
        ({"routing_key": "a b~c/d", "arguments": {}}, "a%2Bb%257Ec%252Fd"),
        ({"routing_key": ""}, "~"),
        ({}, "~"),
        ({"routing_key": "k", "arguments": {"x": 1}}, "k~9nmLZQ"),
        ({"routing_key": "k", "arguments": {"x": 1, "a": "s", "b": True, "c": 1.5,
                                            "d": [1, "z", {"q": 2}], "e": {"n": -70000000000}}}, "k~MqMzXA"),
    ]
    for body, location in cases:
        reply = post(mgmt, pair, body)
        assert (reply.status, reply.headers.get("location")) == (201, f"{ends['q']}/{location}"), body
        shown = mgmt.get(f"{pair}/{location}")
        assert shown.status == 200, location
        assert shown.json["routing_key"] == body.get("routing_key", "")


def test_lists(mgmt: Mgmt, ends):
    x, h, q = ends["x"], ends["h"], ends["q"]
    assert post(mgmt, f"/api/bindings/%2F/e/{x}/q/{q}", {"routing_key": "k", "arguments": {"x": 1}}).status == 201
    assert post(mgmt, f"/api/bindings/%2F/e/{x}/q/{q}", {"routing_key": "a b~c/d"}).status == 201
    assert post(mgmt, f"/api/bindings/%2F/e/{x}/e/{h}", {"routing_key": "k2"}).status == 201
    assert post(mgmt, f"/api/bindings/%2F/e/{h}/q/{q}",
                {"arguments": {"x-match": "any", "h": "v"}}).status == 201
    default = binding("", q, "queue", q, q)
    x_q = [binding(x, q, "queue", "a b~c/d", "a+b%7Ec%2Fd"), binding(x, q, "queue", "k", "k~9nmLZQ", {"x": 1})]
    x_h = binding(x, h, "exchange", "k2", "k2")
    h_q = binding(h, q, "queue", "", "~KO6tkg", {"h": "v", "x-match": "any"})
    assert mgmt.get(f"/api/queues/%2F/{q}/bindings").json == [default, h_q] + x_q
    assert mgmt.get(f"/api/exchanges/%2F/{x}/bindings/source").json == [x_h] + x_q
    assert mgmt.get(f"/api/exchanges/%2F/{h}/bindings/destination").json == [x_h]
    assert mgmt.get(f"/api/bindings/%2F/e/{x}/q/{q}").json == x_q
    assert mgmt.get(f"/api/bindings/%2F/e/{x}/e/{h}").json == [x_h]
    assert mgmt.get(f"/api/bindings/%2F/e/amq.default/q/{q}").json == [default]
    everything = mgmt.get("/api/bindings/%2F").json
    assert all(b in everything for b in [default, x_h, h_q] + x_q)
    mine = [b for b in everything if b["destination"] in (h, q)]
    assert mine == sorted(mine, key=lambda b: (b["source"], b["destination"], b["routing_key"]))
    assert x_h in mgmt.get("/api/bindings").json
    assert default in mgmt.get("/api/exchanges/%2F/amq.default/bindings/source").json


def test_lists_of_unknown_things(mgmt: Mgmt, uid):
    assert mgmt.get(f"/api/queues/%2F/nosuch-{uid}/bindings").json == [
        binding("", f"nosuch-{uid}", "queue", f"nosuch-{uid}", f"nosuch-{uid}")]
    for path in (f"/api/queues/nope-{uid}/q/bindings", f"/api/exchanges/%2F/nosuch-{uid}/bindings/source",
                 f"/api/exchanges/nope-{uid}/x/bindings/destination", f"/api/bindings/nope-{uid}/e/x/q/y"):
        reply = mgmt.get(path)
        assert (reply.status, reply.json) == (200, []), path
    assert (mgmt.get(f"/api/bindings/nope-{uid}").status, mgmt.get(f"/api/bindings/nope-{uid}").json) == (404, NOT_FOUND)


def test_show_and_delete_by_properties_key(mgmt: Mgmt, ends):
    pair = f"/api/bindings/%2F/e/{ends['x']}/q/{ends['q']}"
    assert post(mgmt, pair, {"routing_key": "k", "arguments": {"x": 1}}).status == 201
    assert post(mgmt, pair, {"routing_key": "k"}).status == 201
    for props in ("k~zzz", "k~zz~z", "nokey", "~", "k~9nmLZQ~"):
        reply = mgmt.get(f"{pair}/{props}")
        assert (reply.status, reply.json) == ((200, binding(ends["x"], ends["q"], "queue", "k", "k~9nmLZQ", {"x": 1}))
                                              if props == "k~9nmLZQ~" else (404, NOT_FOUND)), props
    assert mgmt.delete(f"{pair}/k~zzz").status == 404
    assert mgmt.delete(f"{pair}/k~9nmLZQ").status == 204
    assert mgmt.delete(f"{pair}/k~9nmLZQ").status == 404
    assert mgmt.get(pair).json == [binding(ends["x"], ends["q"], "queue", "k", "k")]
    assert mgmt.delete(f"{pair}/k").status == 204
    assert mgmt.get(pair).json == []


def test_bindings_route_like_amqp_ones(mgmt: Mgmt, amqp, ends):
    x, q = ends["x"], ends["q"]
    assert post(mgmt, f"/api/bindings/%2F/e/{x}/q/{q}", {"routing_key": "rk"}).status == 201
    assert publish(mgmt, x, "rk", "bound").json == {"routed": True}
    assert amqp.basic_get(q, auto_ack=True)[2] == b"bound"
    amqp.queue_unbind(q, x, "rk")  # the AMQP unbind removes the binding made over HTTP
    assert mgmt.get(f"/api/bindings/%2F/e/{x}/q/{q}").json == []
    amqp.queue_bind(q, x, "amqp")
    assert mgmt.get(f"/api/bindings/%2F/e/{x}/q/{q}").json == [binding(x, q, "queue", "amqp", "amqp")]


def test_default_exchange_bindings_cannot_be_changed(mgmt: Mgmt, ends):
    q = ends["q"]
    shown = mgmt.get(f"/api/bindings/%2F/e/amq.default/q/{q}/{q}")
    assert (shown.status, shown.json) == (200, binding("", q, "queue", q, q))
    for reply in (mgmt.delete(f"/api/bindings/%2F/e/amq.default/q/{q}/{q}"),
                  post(mgmt, f"/api/bindings/%2F/e/amq.default/q/{q}", {"routing_key": "k"}),
                  post(mgmt, f"/api/bindings/%2F/e/{ends['x']}/e/amq.default", {"routing_key": "k"})):
        assert (reply.status, reply.json) == (401, ACCESS_REFUSED)


def test_create_refusals(mgmt: Mgmt, ends, uid):
    x, q = ends["x"], ends["q"]
    cases = [
        (f"/api/bindings/%2F/e/nosuch-{uid}/q/{q}", {"routing_key": "k"},
         404, {"error": "not_found", "reason": f"no exchange 'nosuch-{uid}' in vhost '/'"}),
        (f"/api/bindings/%2F/e/{x}/q/nosuch-{uid}", {"routing_key": "k"},
         404, {"error": "not_found", "reason": f"no queue 'nosuch-{uid}' in vhost '/'"}),
        (f"/api/bindings/nope-{uid}/e/{x}/q/{q}", {"routing_key": "k"},
         404, {"error": "not_found", "reason": "vhost_not_found"}),
        (f"/api/bindings/%2F/e/{ends['h']}/q/{q}", {"arguments": {"x-match": "foo"}},
         400, bad_request('Invalid x-match field value <<"foo">>; expected all, any, all-with-x, or any-with-x')),
    ]
    for path, body, status, error in cases:
        reply = post(mgmt, path, body)
        assert (reply.status, reply.json) == (status, error), path
    assert mgmt.get(f"/api/queues/%2F/{q}/bindings").json == [binding("", q, "queue", q, q)]


def test_wrong_method_is_405(mgmt: Mgmt, ends):
    reply = mgmt.put(f"/api/bindings/%2F/e/{ends['x']}/q/{ends['q']}", {})
    assert reply.status == 405


def test_exclusive_queue_of_a_connection_cannot_be_bound(mgmt: Mgmt, amqp, uid):
    name = f"mgmt-bexcl-{uid}"
    amqp.queue_declare(name, exclusive=True)
    reply = post(mgmt, f"/api/bindings/%2F/e/amq.direct/q/{name}", {"routing_key": "k"})
    assert (reply.status, reply.json) == (400, bad_request(
        f"cannot obtain exclusive access to locked queue '{name}' in vhost '/'. It could be originally declared "
        "on another connection or the exclusive property value does not match that of the original declaration."))
    assert mgmt.get(f"/api/queues/%2F/{name}/bindings").json == [binding("", name, "queue", name, name)]
