"""End-to-end exchange routing, as RabbitMQ 3.x does it (reference doc §6, §7): the default,
direct, fanout, topic and headers exchanges, the predeclared exchanges.

Every expectation here was checked against a real RabbitMQ (AMQP_REFERENCE_URL); names carry
the `uid` suffix because the reference server is shared. Publishing channels use publisher
confirms so that "the message was routed (or not)" is settled before we basic_get.

The other parts: test_exchanges_lifecycle.py (declare / delete, auto-delete, internal),
test_exchanges_bindings.py (exchange-to-exchange bindings, alternate exchange, CC / BCC,
mandatory), test_exchanges_clients.py (aio-pika / aiormq).
"""

from __future__ import annotations

import pika
import pika.exceptions
import pytest
from pika.compat import long as pika_long

from helpers.pika_client import ch, conn  # noqa: F401 - pytest fixtures
from helpers.pika_client import drain, expect_channel_error
from helpers.pika_client import cleanup  # noqa: F401 - pytest fixture
from helpers.exchanges import DEFAULT_EXCHANGE_REFUSED, declare_exchange, declare_queue, get_one

pytestmark = pytest.mark.timeout(30)


# --------------------------------------------------------------------------------------------
# default exchange


def test_default_exchange_routes_by_queue_name(ch, cleanup, uid):
    q = declare_queue(ch, cleanup, f"dflt-{uid}")
    ch.basic_publish("", q, b"hello")
    method, _props, body = get_one(ch, q)
    assert body == b"hello"
    assert method.exchange == ""
    assert method.routing_key == q
    # A routing key that names no queue is silently dropped (not mandatory).
    ch.basic_publish("", f"nope-{uid}", b"lost")
    assert drain(ch, q) == []


def test_default_exchange_is_not_declarable_bindable_or_deletable(conn, ch, cleanup, uid):
    # RabbitMQ refuses every exchange.* operation on "" -- even a passive declare.
    q = declare_queue(ch, cleanup, f"dflt-bind-{uid}")
    expect_channel_error(conn, lambda c: c.exchange_declare("", passive=True), 403,
                         DEFAULT_EXCHANGE_REFUSED)
    expect_channel_error(conn, lambda c: c.exchange_declare("", "direct", durable=True), 403,
                         DEFAULT_EXCHANGE_REFUSED)
    expect_channel_error(conn, lambda c: c.exchange_delete(""), 403, DEFAULT_EXCHANGE_REFUSED)
    expect_channel_error(conn, lambda c: c.queue_bind(q, "", "other"), 403,
                         DEFAULT_EXCHANGE_REFUSED)
    expect_channel_error(conn, lambda c: c.queue_unbind(q, "", q), 403,
                         DEFAULT_EXCHANGE_REFUSED)
    x = declare_exchange(ch, cleanup, f"dflt-e2e-{uid}", "fanout")
    expect_channel_error(conn, lambda c: c.exchange_bind(x, "", "k"), 403,
                         DEFAULT_EXCHANGE_REFUSED)
    expect_channel_error(conn, lambda c: c.exchange_bind("", x, "k"), 403,
                         DEFAULT_EXCHANGE_REFUSED)


def test_publish_to_missing_exchange_is_404(conn, uid):
    name = f"missing-{uid}"
    expect_channel_error(conn, lambda c: (c.confirm_delivery(), c.basic_publish(name, "k", b"x")),
                         404, f"NOT_FOUND - no exchange '{name}' in vhost '/'")


# --------------------------------------------------------------------------------------------
# direct / fanout


def test_direct_exchange_routing(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"direct-{uid}", "direct")
    q1 = declare_queue(ch, cleanup, f"direct-q1-{uid}")
    q2 = declare_queue(ch, cleanup, f"direct-q2-{uid}")
    ch.queue_bind(q1, x, "red")
    ch.queue_bind(q1, x, "green")
    ch.queue_bind(q2, x, "red")
    ch.queue_bind(q2, x, "red")  # duplicate binding: still one copy
    for key in ("red", "green", "blue", "RED", ""):
        ch.basic_publish(x, key, key.encode() or b"<empty>")
    assert drain(ch, q1) == [b"red", b"green"]
    assert drain(ch, q2) == [b"red"]
    ch.queue_unbind(q1, x, "red")
    ch.basic_publish(x, "red", b"again")
    assert drain(ch, q1) == []
    assert drain(ch, q2) == [b"again"]


def test_direct_exchange_empty_routing_key_binding(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"direct-empty-{uid}", "direct")
    q = declare_queue(ch, cleanup, f"direct-empty-q-{uid}")
    ch.queue_bind(q, x, "")
    ch.basic_publish(x, "", b"empty")
    ch.basic_publish(x, "x", b"x")
    assert drain(ch, q) == [b"empty"]


def test_fanout_ignores_routing_key(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"fanout-{uid}", "fanout")
    qs = [declare_queue(ch, cleanup, f"fanout-q{i}-{uid}") for i in range(3)]
    for i, q in enumerate(qs):
        ch.queue_bind(q, x, f"ignored-{i}")
    ch.basic_publish(x, "anything", b"one")
    ch.basic_publish(x, "", b"two")
    for q in qs:
        assert drain(ch, q) == [b"one", b"two"]
    ch.basic_publish(x, "rk-kept", b"three")
    method, _props, _body = get_one(ch, qs[0])
    assert method.routing_key == "rk-kept"
    assert method.exchange == x


# --------------------------------------------------------------------------------------------
# topic

TOPIC_KEYS = ["", "a", "b", "a.b", "b.a", "a.a", "a.b.c", "a..b", "a.x.b", "a.x.y.b", ".",
              "a.", ".a", "A", "ab", "x.a.y"]

ALL_KEYS = set(TOPIC_KEYS)

TOPIC_TABLE = {
    "#": ALL_KEYS,
    "#.#": ALL_KEYS,
    "*": {"a", "b", "A", "ab"},
    "*.#": ALL_KEYS - {""},
    "a.#": {"a", "a.b", "a.a", "a.b.c", "a..b", "a.x.b", "a.x.y.b", "a."},
    "#.a": {"a", "b.a", "a.a", ".a"},
    "#.a.#": {"a", "b.a", "a.b", "a.a", "a.b.c", "a..b", "a.x.b", "a.x.y.b", "a.", ".a",
              "x.a.y"},
    "a.*": {"a.b", "a.a", "a."},
    "*.a": {"b.a", "a.a", ".a"},
    "*.*": {"a.b", "b.a", "a.a", "a.", ".a", "."},
    "a..b": {"a..b"},
    "a.*.b": {"a.x.b", "a..b"},
    "a.#.b": {"a.b", "a..b", "a.x.b", "a.x.y.b"},
    "": {""},
    "a": {"a"},
    "A": {"A"},
    "a.b": {"a.b"},
}


def test_topic_routing_table(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"topic-{uid}", "topic")
    queues = {}
    for i, pattern in enumerate(TOPIC_TABLE):
        queues[pattern] = declare_queue(ch, cleanup, f"topic-q{i}-{uid}")
        ch.queue_bind(queues[pattern], x, pattern)
    for key in TOPIC_KEYS:
        ch.basic_publish(x, key, key.encode())
    mismatches = {}
    for pattern, expected in TOPIC_TABLE.items():
        got = drain(ch, queues[pattern])
        assert len(got) == len(set(got)), f"duplicates for {pattern!r}: {got}"
        got_keys = {b.decode() for b in got}
        if got_keys != expected:
            mismatches[pattern] = (sorted(got_keys - expected), sorted(expected - got_keys))
    assert not mismatches, f"pattern: (unexpected, missing) = {mismatches}"


def test_topic_overlapping_bindings_deliver_one_copy(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"topic-dup-{uid}", "topic")
    q = declare_queue(ch, cleanup, f"topic-dup-q-{uid}")
    for pattern in ("#", "a.*", "a.b", "*.b", "a.#"):
        ch.queue_bind(q, x, pattern)
    ch.basic_publish(x, "a.b", b"once")
    assert drain(ch, q) == [b"once"]


def test_topic_unbind_and_amq_topic(ch, cleanup, uid):
    q = declare_queue(ch, cleanup, f"amqtopic-q-{uid}")
    ch.queue_bind(q, "amq.topic", f"{uid}.*.x")
    ch.basic_publish("amq.topic", f"{uid}.foo.x", b"1")
    ch.basic_publish("amq.topic", f"{uid}.foo.y", b"2")
    assert drain(ch, q) == [b"1"]
    ch.queue_unbind(q, "amq.topic", f"{uid}.*.x")
    ch.basic_publish("amq.topic", f"{uid}.foo.x", b"3")
    assert drain(ch, q) == []


# --------------------------------------------------------------------------------------------
# headers

HEADER_BINDINGS = {
    "all_ab": {"x-match": "all", "a": 1, "b": 2},
    "any_ab": {"x-match": "any", "a": 1, "b": 2},
    "default_ab": {"a": 1, "b": 2},
    "void_a": {"a": None},
    "void_any": {"x-match": "any", "a": None, "z": None},
    "all_empty": {},
    "explicit_all_empty": {"x-match": "all"},
    "any_empty": {"x-match": "any"},
    "all_ignores_x": {"x-match": "all", "a": 1, "x-foo": "bar"},
    "all_with_x": {"x-match": "all-with-x", "a": 1, "x-foo": "bar"},
    "all_only_x": {"x-match": "all", "x-foo": "bar"},
    "any_only_x": {"x-match": "any", "x-foo": "bar"},
    "any_with_x": {"x-match": "any-with-x", "x-foo": "bar"},
    "str_s": {"s": "hello"},
}

HEADER_MESSAGES = {
    "m_ab": {"a": 1, "b": 2},
    "m_a": {"a": 1},
    "m_a_long": {"a": pika_long(1)},  # type 'long' vs binding's 'signedint': same class
    "m_a2b2": {"a": 2, "b": 2},
    "m_none": None,
    "m_astr": {"a": "1"},  # longstr '1' is not the integer 1
    "m_ax": {"a": 1, "x-foo": "bar"},
    "m_x": {"x-foo": "bar"},
    "m_abc": {"a": 1, "b": 2, "c": 3},
    "m_s": {"s": "hello"},
    "m_s_bytes": {"s": b"hello"},  # pika sends bytes as type 'x' (binary): equal to longstr
    "m_a_true": {"a": True},  # bool true is not the integer 1
    "m_avoid": {"a": None},
    "m_z": {"z": 5},
}

_ALL_MSGS = set(HEADER_MESSAGES)
_HAS_A = {"m_ab", "m_a", "m_a_long", "m_a2b2", "m_astr", "m_ax", "m_abc", "m_avoid",
          "m_a_true"}
_A_IS_1 = {"m_ab", "m_a", "m_a_long", "m_ax", "m_abc"}

HEADER_EXPECTED = {
    "all_ab": {"m_ab", "m_abc"},
    "any_ab": _A_IS_1 | {"m_a2b2"},
    "default_ab": {"m_ab", "m_abc"},
    "void_a": _HAS_A,
    "void_any": _HAS_A | {"m_z"},
    "all_empty": _ALL_MSGS,
    "explicit_all_empty": _ALL_MSGS,
    "any_empty": set(),
    "all_ignores_x": _A_IS_1,
    "all_with_x": {"m_ax"},
    "all_only_x": _ALL_MSGS,
    "any_only_x": set(),
    "any_with_x": {"m_ax", "m_x"},
    "str_s": {"m_s", "m_s_bytes"},
}


def test_headers_exchange_matching_table(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"headers-{uid}", "headers")
    queues = {}
    for name, args in HEADER_BINDINGS.items():
        queues[name] = declare_queue(ch, cleanup, f"hdr-{name}-{uid}")
        ch.queue_bind(queues[name], x, "ignored-key", arguments=args)
    for name, headers in HEADER_MESSAGES.items():
        ch.basic_publish(x, "any-key", name.encode(),
                         properties=pika.BasicProperties(headers=headers))
    mismatches = {}
    for name, expected in HEADER_EXPECTED.items():
        got = drain(ch, queues[name])
        assert len(got) == len(set(got)), f"duplicates in {name}: {got}"
        got_names = {b.decode() for b in got}
        if got_names != expected:
            mismatches[name] = (sorted(got_names - expected), sorted(expected - got_names))
    assert not mismatches, f"binding: (unexpected, missing) = {mismatches}"


def test_headers_binding_with_invalid_x_match(conn, ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"headers-bad-{uid}", "headers")
    q = declare_queue(ch, cleanup, f"headers-bad-q-{uid}")
    expect_channel_error(
        conn, lambda c: c.queue_bind(q, x, "", arguments={"x-match": "foo"}), 406,
        'PRECONDITION_FAILED - Invalid x-match field value <<"foo">>; '
        "expected all, any, all-with-x, or any-with-x")
    expect_channel_error(
        conn, lambda c: c.queue_bind(q, x, "", arguments={"x-match": 1}), 406,
        "PRECONDITION_FAILED - Invalid x-match field type signedint (value 1); expected longstr")


def test_headers_unbind_uses_arguments(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"headers-unbind-{uid}", "headers")
    q = declare_queue(ch, cleanup, f"headers-unbind-q-{uid}")
    ch.queue_bind(q, x, "", arguments={"k": "v1"})
    ch.queue_bind(q, x, "", arguments={"k": "v2"})
    ch.queue_unbind(q, x, "", arguments={"k": "v1"})
    for v in ("v1", "v2"):
        ch.basic_publish(x, "", v.encode(), properties=pika.BasicProperties(headers={"k": v}))
    assert drain(ch, q) == [b"v2"]


# --------------------------------------------------------------------------------------------
# predeclared exchanges


@pytest.mark.parametrize("name,type_", [
    ("amq.direct", "direct"), ("amq.fanout", "fanout"), ("amq.topic", "topic"),
    ("amq.headers", "headers"), ("amq.match", "headers"),
])
def test_predeclared_exchanges(conn, ch, cleanup, uid, name, type_):
    ch.exchange_declare(name, passive=True)
    # An equivalent active redeclare of an existing amq.* exchange is allowed...
    ch.exchange_declare(name, type_, durable=True)
    # ...an inequivalent one is not.
    expect_channel_error(
        conn, lambda c: c.exchange_declare(name, type_, durable=False), 406,
        f"PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '{name}' in vhost '/': "
        "received 'false' but current is 'true'")
    q = declare_queue(ch, cleanup, f"predecl-{type_}-{uid}")
    key = f"key-{uid}"
    args = {"x-match": "all", "uid": uid} if type_ == "headers" else None
    ch.queue_bind(q, name, key, arguments=args)
    props = pika.BasicProperties(headers={"uid": uid})
    ch.basic_publish(name, key, b"routed", properties=props)
    assert drain(ch, q) == [b"routed"]
    ch.queue_unbind(q, name, key, arguments=args)
    ch.basic_publish(name, key, b"not-routed", properties=props)
    assert drain(ch, q) == []
    expect_channel_error(
        conn, lambda c: c.exchange_delete(name), 403,
        f"ACCESS_REFUSED - deletion of system exchange '{name}' in vhost '/' not allowed")


def test_exchange_name_with_amq_prefix_is_refused(conn, uid):
    name = f"amq.custom-{uid}"
    expect_channel_error(conn, lambda c: c.exchange_declare(name, "direct"), 403,
                         f"ACCESS_REFUSED - exchange name '{name}' contains reserved prefix 'amq.*'")
    # passive: just not found
    expect_channel_error(conn, lambda c: c.exchange_declare(name, passive=True), 404,
                         f"NOT_FOUND - no exchange '{name}' in vhost '/'")
