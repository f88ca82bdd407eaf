"""End-to-end exchange routing, as RabbitMQ 3.x does it (reference doc §6, §7).

Every expectation here was checked against a real RabbitMQ (AMQP_REFERENCE_URL); names carry
the `uid` suffix because the reference server is shared. Publishing channels use publisher
confirms so that "the message was routed (or not)" is settled before we basic_get.
"""
from __future__ import annotations

import time

import aio_pika
import aiormq
import pika
import pika.exceptions
import pytest
from pika.compat import long as pika_long

pytestmark = pytest.mark.timeout(30)

DEFAULT_EXCHANGE_REFUSED = "ACCESS_REFUSED - operation not permitted on the default exchange"


# --------------------------------------------------------------------------------------------
# helpers


def _connect(url: str) -> pika.BlockingConnection:
    params = pika.URLParameters(url)
    params.socket_timeout = 5
    params.blocked_connection_timeout = 10
    return pika.BlockingConnection(params)


@pytest.fixture
def conn(amqp_url):
    c = _connect(amqp_url)
    yield c
    if c.is_open:
        c.close()


@pytest.fixture
def ch(conn):
    """A confirm-mode channel: a publish returns only once the broker has routed it."""
    channel = conn.channel()
    channel.confirm_delivery()
    return channel


@pytest.fixture
def cleanup(amqp_url):
    """Register names to delete at teardown (on a fresh connection)."""
    names: dict[str, list[str]] = {"queues": [], "exchanges": []}
    yield names
    c = _connect(amqp_url)
    try:
        for q in names["queues"]:
            c.channel().queue_delete(q)
        for x in names["exchanges"]:
            try:
                c.channel().exchange_delete(x)
            except pika.exceptions.ChannelClosedByBroker:
                pass
    finally:
        c.close()


def declare_queue(ch, cleanup, name: str, **kw) -> str:
    name = ch.queue_declare(name, **kw).method.queue
    cleanup["queues"].append(name)
    return name


def declare_exchange(ch, cleanup, name: str, type_: str = "direct", **kw) -> str:
    ch.exchange_declare(name, type_, **kw)
    cleanup["exchanges"].append(name)
    return name


def drain(ch, queue: str) -> list[bytes]:
    """All ready messages of `queue` (auto-ack), in order."""
    out = []
    while True:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append(body)


def get_one(ch, queue: str):
    method, props, body = ch.basic_get(queue, auto_ack=True)
    assert method is not None, f"no message in {queue!r}"
    return method, props, body


def expect_channel_error(conn, fn, code: int, text: str | None = None):
    """Run fn(channel) on a fresh channel; it must be closed by the broker with code/text."""
    channel = conn.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as ei:
        fn(channel)
    assert ei.value.reply_code == code, ei.value
    if text is not None:
        assert ei.value.reply_text == text
    return ei.value


def wait_until(pred, timeout: float = 2.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def exchange_exists(conn, name: str) -> bool:
    channel = conn.channel()
    try:
        channel.exchange_declare(name, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        assert exc.reply_code == 404
        return False
    channel.close()
    return True


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


# --------------------------------------------------------------------------------------------
# declare / delete


def test_exchange_declare_passive_missing_is_404(conn, uid):
    name = f"nosuch-{uid}"
    expect_channel_error(conn, lambda c: c.exchange_declare(name, passive=True), 404,
                         f"NOT_FOUND - no exchange '{name}' in vhost '/'")


def test_exchange_declare_passive_ignores_type_and_flags(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"passive-{uid}", "direct")
    ch.exchange_declare(x, "fanout", passive=True, durable=True, auto_delete=True)


def test_exchange_redeclare_inequivalent(conn, ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"ineq-{uid}", "direct")
    ch.exchange_declare(x, "direct")  # equivalent: ok
    pre = f"PRECONDITION_FAILED - inequivalent arg '%s' for exchange '{x}' in vhost '/': "
    expect_channel_error(conn, lambda c: c.exchange_declare(x, "fanout"), 406,
                         pre % "type" + "received 'fanout' but current is 'direct'")
    expect_channel_error(conn, lambda c: c.exchange_declare(x, "direct", durable=True), 406,
                         pre % "durable" + "received 'true' but current is 'false'")
    expect_channel_error(conn, lambda c: c.exchange_declare(x, "direct", auto_delete=True), 406,
                         pre % "auto_delete" + "received 'true' but current is 'false'")
    expect_channel_error(conn, lambda c: c.exchange_declare(x, "direct", internal=True), 406,
                         pre % "internal" + "received 'true' but current is 'false'")
    expect_channel_error(
        conn,
        lambda c: c.exchange_declare(x, "direct", arguments={"alternate-exchange": "foo"}), 406,
        pre % "alternate-exchange"
        + "received the value 'foo' of type 'longstr' but current is none")
    # Unknown arguments are not compared.
    ch.exchange_declare(x, "direct", arguments={"x-whatever": 1})


def test_exchange_durable_and_auto_delete_flags_redeclare(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"flags-{uid}", "topic", durable=True, auto_delete=True)
    ch.exchange_declare(x, "topic", durable=True, auto_delete=True)
    ch.exchange_declare(x, passive=True)


def test_unknown_exchange_type_closes_connection(amqp_url, uid):
    # A hard error. (RabbitMQ says "invalid exchange type" instead when the name happens to be
    # an existing Erlang atom, e.g. 'foo' or 'Direct'; a never-seen name is "unknown".)
    c = _connect(amqp_url)
    try:
        with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as ei:
            c.channel().exchange_declare(f"badtype-{uid}", f"weird-{uid}")
        assert ei.value.reply_code == 503
        assert ei.value.reply_text == f"COMMAND_INVALID - unknown exchange type 'weird-{uid}'"
    finally:
        if c.is_open:
            c.close()


def test_exchange_delete_if_unused(conn, ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"ifunused-{uid}", "direct")
    q = declare_queue(ch, cleanup, f"ifunused-q-{uid}")
    ch.queue_bind(q, x, "k")
    expect_channel_error(conn, lambda c: c.exchange_delete(x, if_unused=True), 406,
                         f"PRECONDITION_FAILED - exchange '{x}' in vhost '/' in use")
    ch.queue_unbind(q, x, "k")
    ch.exchange_delete(x, if_unused=True)
    assert not exchange_exists(conn, x)


def test_exchange_delete_if_unused_counts_only_source_bindings(conn, ch, cleanup, uid):
    src = declare_exchange(ch, cleanup, f"ifunused-src-{uid}", "fanout")
    dst = declare_exchange(ch, cleanup, f"ifunused-dst-{uid}", "fanout")
    ch.exchange_bind(dst, src)
    # dst is only a destination: "unused" as far as if_unused is concerned.
    ch.exchange_delete(dst, if_unused=True)
    assert not exchange_exists(conn, dst)
    # ...and its deletion removed the binding, so src is now unused too.
    ch.exchange_delete(src, if_unused=True)
    assert not exchange_exists(conn, src)


def test_exchange_delete_missing_is_ok(ch, uid):
    ch.exchange_delete(f"never-{uid}")
    ch.exchange_delete(f"never-{uid}", if_unused=True)


def test_exchange_delete_removes_its_bindings(ch, cleanup, uid):
    x = f"delbind-{uid}"
    ch.exchange_declare(x, "fanout")
    q = declare_queue(ch, cleanup, f"delbind-q-{uid}")
    ch.queue_bind(q, x)
    ch.exchange_delete(x)
    ch.exchange_declare(x, "fanout")
    cleanup["exchanges"].append(x)
    ch.basic_publish(x, "", b"x")
    assert drain(ch, q) == []


def test_queue_bind_to_missing_exchange_or_queue(conn, ch, cleanup, uid):
    q = declare_queue(ch, cleanup, f"bindmissing-q-{uid}")
    expect_channel_error(conn, lambda c: c.queue_bind(q, f"nox-{uid}", "k"), 404,
                         f"NOT_FOUND - no exchange 'nox-{uid}' in vhost '/'")
    expect_channel_error(conn, lambda c: c.queue_bind(f"noq-{uid}", "amq.direct", "k"), 404,
                         f"NOT_FOUND - no queue 'noq-{uid}' in vhost '/'")


# --------------------------------------------------------------------------------------------
# auto-delete / internal


def test_auto_delete_exchange_lifecycle(conn, ch, cleanup, uid):
    x = f"autodel-{uid}"
    ch.exchange_declare(x, "fanout", auto_delete=True)
    cleanup["exchanges"].append(x)
    # Never had a binding: stays.
    assert exchange_exists(conn, x)
    q1 = declare_queue(ch, cleanup, f"autodel-q1-{uid}")
    q2 = declare_queue(ch, cleanup, f"autodel-q2-{uid}")
    ch.queue_bind(q1, x)
    ch.queue_bind(q2, x)
    ch.queue_unbind(q1, x)
    assert exchange_exists(conn, x)  # one binding left
    ch.queue_unbind(q2, x)
    assert wait_until(lambda: not exchange_exists(conn, x))


def test_auto_delete_exchange_deleted_when_bound_queue_deleted(conn, ch, cleanup, uid):
    x = f"autodel-qdel-{uid}"
    ch.exchange_declare(x, "fanout", auto_delete=True)
    cleanup["exchanges"].append(x)
    q = ch.queue_declare(f"autodel-qdel-q-{uid}").method.queue
    ch.queue_bind(q, x)
    ch.queue_delete(q)
    assert wait_until(lambda: not exchange_exists(conn, x))


def test_auto_delete_exchange_counts_only_source_bindings(conn, ch, cleanup, uid):
    ad = f"autodel-e2e-{uid}"
    ch.exchange_declare(ad, "fanout", auto_delete=True)
    cleanup["exchanges"].append(ad)
    other = declare_exchange(ch, cleanup, f"autodel-other-{uid}", "fanout")
    ch.exchange_bind(ad, other)  # ad is the destination
    ch.exchange_unbind(ad, other)
    assert exchange_exists(conn, ad)
    ch.exchange_bind(other, ad)  # ad is the source
    ch.exchange_unbind(other, ad)
    assert wait_until(lambda: not exchange_exists(conn, ad))


def test_internal_exchange(conn, ch, cleanup, uid):
    internal = declare_exchange(ch, cleanup, f"internal-{uid}", "fanout", internal=True)
    front = declare_exchange(ch, cleanup, f"front-{uid}", "fanout")
    q = declare_queue(ch, cleanup, f"internal-q-{uid}")
    ch.queue_bind(q, internal)
    ch.exchange_bind(internal, front)
    ch.basic_publish(front, "k", b"via-e2e")
    assert drain(ch, q) == [b"via-e2e"]
    expect_channel_error(
        conn, lambda c: (c.confirm_delivery(), c.basic_publish(internal, "k", b"direct")), 403,
        f"ACCESS_REFUSED - cannot publish to internal exchange '{internal}' in vhost '/'")
    assert drain(ch, q) == []


# --------------------------------------------------------------------------------------------
# exchange-to-exchange bindings


def test_exchange_bind_chain_and_unbind(ch, cleanup, uid):
    a = declare_exchange(ch, cleanup, f"e2e-a-{uid}", "direct")
    b = declare_exchange(ch, cleanup, f"e2e-b-{uid}", "topic")
    c = declare_exchange(ch, cleanup, f"e2e-c-{uid}", "fanout")
    q = declare_queue(ch, cleanup, f"e2e-q-{uid}")
    ch.exchange_bind(b, a, "k.1")       # a --k.1--> b
    ch.exchange_bind(c, b, "k.*")       # b --k.*--> c
    ch.queue_bind(q, c)                 # c --> q
    ch.basic_publish(a, "k.1", b"through")
    ch.basic_publish(a, "k.2", b"stopped-at-a")
    ch.basic_publish(b, "k.2", b"from-b")
    ch.basic_publish(b, "j.2", b"stopped-at-b")
    assert drain(ch, q) == [b"through", b"from-b"]
    ch.basic_publish(a, "k.1", b"meta")
    method, _props, _body = get_one(ch, q)
    assert method.exchange == a  # delivery names the exchange published to
    assert method.routing_key == "k.1"
    ch.exchange_unbind(b, a, "k.1")
    ch.basic_publish(a, "k.1", b"after-unbind")
    assert drain(ch, q) == []


def test_exchange_bind_missing_exchanges(conn, ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"e2e-missing-{uid}", "fanout")
    missing = f"e2e-nope-{uid}"
    expect_channel_error(conn, lambda c: c.exchange_bind(x, missing, "k"), 404,
                         f"NOT_FOUND - no exchange '{missing}' in vhost '/'")
    expect_channel_error(conn, lambda c: c.exchange_bind(missing, x, "k"), 404,
                         f"NOT_FOUND - no exchange '{missing}' in vhost '/'")
    # Unbinding something that does not exist is fine.
    ch.exchange_unbind(x, "amq.fanout", "k")
    ch.exchange_unbind(x, missing, "k")


def test_exchange_bind_cycle_delivers_one_copy(ch, cleanup, uid):
    a = declare_exchange(ch, cleanup, f"cyc-a-{uid}", "fanout")
    b = declare_exchange(ch, cleanup, f"cyc-b-{uid}", "fanout")
    qa = declare_queue(ch, cleanup, f"cyc-qa-{uid}")
    qb = declare_queue(ch, cleanup, f"cyc-qb-{uid}")
    ch.exchange_bind(b, a)
    ch.exchange_bind(a, b)
    ch.queue_bind(qa, a)
    ch.queue_bind(qb, b)
    ch.basic_publish(a, "", b"from-a")
    ch.basic_publish(b, "", b"from-b")
    assert drain(ch, qa) == [b"from-a", b"from-b"]
    assert drain(ch, qb) == [b"from-a", b"from-b"]


def test_exchange_bound_to_itself(ch, cleanup, uid):
    a = declare_exchange(ch, cleanup, f"self-{uid}", "fanout")
    q = declare_queue(ch, cleanup, f"self-q-{uid}")
    ch.exchange_bind(a, a)
    ch.queue_bind(q, a)
    ch.basic_publish(a, "", b"once")
    assert drain(ch, q) == [b"once"]


def test_diamond_delivers_one_copy(ch, cleanup, uid):
    top = declare_exchange(ch, cleanup, f"dia-top-{uid}", "fanout")
    left = declare_exchange(ch, cleanup, f"dia-l-{uid}", "direct")
    right = declare_exchange(ch, cleanup, f"dia-r-{uid}", "topic")
    q = declare_queue(ch, cleanup, f"dia-q-{uid}")
    ch.exchange_bind(left, top)
    ch.exchange_bind(right, top)
    ch.queue_bind(q, left, "k")
    ch.queue_bind(q, right, "#")
    ch.queue_bind(q, top)
    ch.basic_publish(top, "k", b"one")
    assert drain(ch, q) == [b"one"]


# --------------------------------------------------------------------------------------------
# alternate exchange


def test_alternate_exchange_receives_unroutable(ch, cleanup, uid):
    ae = declare_exchange(ch, cleanup, f"ae-{uid}", "fanout")
    x = declare_exchange(ch, cleanup, f"ae-main-{uid}", "direct",
                         arguments={"alternate-exchange": ae})
    q_main = declare_queue(ch, cleanup, f"ae-main-q-{uid}")
    q_ae = declare_queue(ch, cleanup, f"ae-q-{uid}")
    ch.queue_bind(q_main, x, "good")
    ch.queue_bind(q_ae, ae)
    ch.basic_publish(x, "good", b"routed")
    ch.basic_publish(x, "bad", b"unroutable")
    assert drain(ch, q_main) == [b"routed"]
    method, _props, body = get_one(ch, q_ae)
    assert body == b"unroutable"
    assert method.exchange == x  # still reported as published to the original exchange
    assert method.routing_key == "bad"
    assert drain(ch, q_ae) == []


def test_alternate_exchange_chain(ch, cleanup, uid):
    ae2 = declare_exchange(ch, cleanup, f"ae2-{uid}", "fanout")
    ae1 = declare_exchange(ch, cleanup, f"ae1-{uid}", "direct",
                           arguments={"alternate-exchange": ae2})
    x = declare_exchange(ch, cleanup, f"aechain-{uid}", "direct",
                         arguments={"alternate-exchange": ae1})
    q1 = declare_queue(ch, cleanup, f"aechain-q1-{uid}")
    q2 = declare_queue(ch, cleanup, f"aechain-q2-{uid}")
    ch.queue_bind(q1, ae1, "k1")  # the AE routes with the original routing key
    ch.queue_bind(q2, ae2)
    ch.basic_publish(x, "k1", b"caught-by-ae1")
    ch.basic_publish(x, "k2", b"caught-by-ae2")
    assert drain(ch, q1) == [b"caught-by-ae1"]
    assert drain(ch, q2) == [b"caught-by-ae2"]


def test_alternate_exchange_mandatory_is_not_returned(conn, cleanup, uid):
    setup = conn.channel()
    ae = declare_exchange(setup, cleanup, f"aem-{uid}", "fanout")
    x = declare_exchange(setup, cleanup, f"aem-main-{uid}", "direct",
                         arguments={"alternate-exchange": ae})
    q = declare_queue(setup, cleanup, f"aem-q-{uid}")
    setup.queue_bind(q, ae)
    returned = []
    ch = conn.channel()
    ch.add_on_return_callback(lambda *a: returned.append(a))
    ch.confirm_delivery()
    ch.basic_publish(x, "nowhere", b"m", mandatory=True)  # no UnroutableError
    conn.process_data_events(0.1)
    assert returned == []
    assert drain(ch, q) == [b"m"]


def test_alternate_exchange_missing_drops_or_returns(conn, ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"aemissing-{uid}", "direct",
                         arguments={"alternate-exchange": f"ae-absent-{uid}"})
    ch.basic_publish(x, "k", b"dropped")  # silently dropped
    with pytest.raises(pika.exceptions.UnroutableError) as ei:
        ch.basic_publish(x, "k", b"returned", mandatory=True)
    (msg,) = ei.value.messages
    assert msg.method.reply_code == 312
    assert msg.method.reply_text == "NO_ROUTE"
    assert msg.method.exchange == x
    assert msg.body == b"returned"


def test_alternate_exchange_cycle_terminates(ch, cleanup, uid):
    a = f"aecyc-a-{uid}"
    b = f"aecyc-b-{uid}"
    declare_exchange(ch, cleanup, a, "direct", arguments={"alternate-exchange": b})
    declare_exchange(ch, cleanup, b, "direct", arguments={"alternate-exchange": a})
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish(a, "k", b"x", mandatory=True)
    ch.basic_publish(a, "k", b"x")  # not mandatory: dropped, channel still fine
    assert ch.is_open


def test_alternate_exchange_may_be_internal(ch, cleanup, uid):
    ae = declare_exchange(ch, cleanup, f"aeint-{uid}", "fanout", internal=True)
    x = declare_exchange(ch, cleanup, f"aeint-main-{uid}", "topic",
                         arguments={"alternate-exchange": ae})
    q = declare_queue(ch, cleanup, f"aeint-q-{uid}")
    ch.queue_bind(q, ae)
    ch.basic_publish(x, "a.b", b"to-internal-ae", mandatory=True)
    assert drain(ch, q) == [b"to-internal-ae"]


# --------------------------------------------------------------------------------------------
# CC / BCC and mandatory


def test_cc_and_bcc_headers(ch, cleanup, uid):
    q1 = declare_queue(ch, cleanup, f"cc-q1-{uid}")
    q2 = declare_queue(ch, cleanup, f"cc-q2-{uid}")
    q3 = declare_queue(ch, cleanup, f"cc-q3-{uid}")
    headers = {"CC": [q2], "BCC": [q3], "other": "kept"}
    ch.basic_publish("", q1, b"m", properties=pika.BasicProperties(headers=headers))
    for q in (q1, q2, q3):
        method, props, body = get_one(ch, q)
        assert body == b"m"
        assert method.routing_key == q1  # the delivered key is the original one
        assert props.headers == {"CC": [q2], "other": "kept"}  # BCC stripped, CC kept
        assert drain(ch, q) == []


def test_cc_routes_through_direct_and_topic(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"cc-topic-{uid}", "topic")
    q1 = declare_queue(ch, cleanup, f"cc-t1-{uid}")
    q2 = declare_queue(ch, cleanup, f"cc-t2-{uid}")
    ch.queue_bind(q1, x, "a.*")
    ch.queue_bind(q2, x, "b.#")
    # both CC keys reach q2: still one copy; main key reaches nothing
    props = pika.BasicProperties(headers={"CC": ["b.1", "b.2.3", "a.1"]})
    ch.basic_publish(x, "zzz", b"cc", properties=props)
    assert drain(ch, q1) == [b"cc"]
    assert drain(ch, q2) == [b"cc"]


def test_bcc_only_route_counts_for_mandatory(ch, cleanup, uid):
    q = declare_queue(ch, cleanup, f"bcc-only-{uid}")
    props = pika.BasicProperties(headers={"BCC": [q]})
    ch.basic_publish("", f"nowhere-{uid}", b"m", mandatory=True, properties=props)
    _method, props, body = get_one(ch, q)
    assert body == b"m"
    assert not props.headers  # BCC removed (RabbitMQ leaves an empty table)


def test_cc_must_be_an_array(conn, cleanup, uid):
    setup = conn.channel()
    q = declare_queue(setup, cleanup, f"cc-bad-{uid}")
    expect_channel_error(
        conn,
        lambda c: (c.confirm_delivery(),
                   c.basic_publish("", q, b"m",
                                   properties=pika.BasicProperties(headers={"CC": q}))),
        406, 'PRECONDITION_FAILED - invalid message: {unacceptable_type_in_header,"CC",longstr}')


def test_mandatory_unroutable_with_confirms_raises(ch, cleanup, uid):
    x = declare_exchange(ch, cleanup, f"mand-{uid}", "direct")
    with pytest.raises(pika.exceptions.UnroutableError) as ei:
        ch.basic_publish(x, "nobody", b"back", mandatory=True,
                         properties=pika.BasicProperties(message_id="mid-1"))
    (msg,) = ei.value.messages
    assert msg.method.reply_code == 312
    assert msg.method.reply_text == "NO_ROUTE"
    assert msg.method.exchange == x
    assert msg.method.routing_key == "nobody"
    assert msg.properties.message_id == "mid-1"
    assert msg.body == b"back"
    # the channel stays usable
    ch.exchange_declare(x, passive=True)


def test_mandatory_unroutable_on_return_callback(conn, uid):
    ch = conn.channel()
    returned = []
    ch.add_on_return_callback(
        lambda _ch, method, props, body: returned.append((method, props, body)))
    ch.basic_publish("", f"no-such-queue-{uid}", b"r1", mandatory=True)
    ch.basic_publish("", f"no-such-queue-{uid}", b"not-mandatory")
    deadline = time.monotonic() + 2
    while not returned and time.monotonic() < deadline:
        conn.process_data_events(0.05)
    conn.process_data_events(0.1)
    assert len(returned) == 1
    method, _props, body = returned[0]
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert method.exchange == ""
    assert method.routing_key == f"no-such-queue-{uid}"
    assert body == b"r1"


# --------------------------------------------------------------------------------------------
# aio-pika / aiormq


async def test_aio_pika_topic_fanout_and_e2e(amqp_url, uid):
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        topic = await channel.declare_exchange(f"aio-topic-{uid}", aio_pika.ExchangeType.TOPIC,
                                               auto_delete=True)
        fan = await channel.declare_exchange(f"aio-fan-{uid}", aio_pika.ExchangeType.FANOUT,
                                             auto_delete=True)
        q1 = await channel.declare_queue(exclusive=True)
        q2 = await channel.declare_queue(exclusive=True)
        assert q1.name.startswith("amq.gen-")
        await q1.bind(topic, "stock.#")
        await fan.bind(topic, "*.eur")       # topic --*.eur--> fan
        await q2.bind(fan)
        for key in ("stock.usd", "stock.eur", "bond.eur", "bond.usd"):
            await topic.publish(aio_pika.Message(key.encode()), routing_key=key)
        got1, got2 = [], []
        for q, got in ((q1, got1), (q2, got2)):
            while (m := await q.get(no_ack=True, fail=False, timeout=5)) is not None:
                got.append(m.body)
        assert got1 == [b"stock.usd", b"stock.eur"]
        assert got2 == [b"stock.eur", b"bond.eur"]
        await fan.unbind(topic, "*.eur")
        await topic.publish(aio_pika.Message(b"x"), routing_key="bond.eur")
        assert await q2.get(no_ack=True, fail=False, timeout=5) is None
    finally:
        await connection.close()


async def test_aio_pika_headers_exchange(amqp_url, uid):
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        x = await channel.declare_exchange(f"aio-hdr-{uid}", aio_pika.ExchangeType.HEADERS,
                                           auto_delete=True)
        q_any = await channel.declare_queue(exclusive=True)
        q_all = await channel.declare_queue(exclusive=True)
        await q_any.bind(x, arguments={"x-match": "any", "fmt": "pdf", "type": "report"})
        await q_all.bind(x, arguments={"x-match": "all", "fmt": "pdf", "type": "report"})
        msgs = [("both", {"fmt": "pdf", "type": "report"}), ("fmt", {"fmt": "pdf"}),
                ("none", {"fmt": "zip"})]
        for body, headers in msgs:
            await x.publish(aio_pika.Message(body.encode(), headers=headers), routing_key="")

        async def bodies(q):
            out = []
            while (m := await q.get(no_ack=True, fail=False, timeout=5)) is not None:
                out.append(m.body)
            return out

        assert await bodies(q_any) == [b"both", b"fmt"]
        assert await bodies(q_all) == [b"both"]
    finally:
        await connection.close()


async def test_aio_pika_mandatory_return_raises(amqp_url, uid):
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        x = await channel.declare_exchange(f"aio-mand-{uid}", aio_pika.ExchangeType.DIRECT,
                                           auto_delete=True)
        with pytest.raises(aiormq.exceptions.DeliveryError) as ei:
            await x.publish(aio_pika.Message(b"m"), routing_key="nobody", mandatory=True)
        frame = ei.value.message.delivery
        assert frame.reply_code == 312
        assert frame.reply_text == "NO_ROUTE"
    finally:
        await connection.close()


async def test_aiormq_exchange_declare_errors(amqp_url, uid):
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel()
        with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity) as ei:
            await channel.exchange_declare(f"aiormq-missing-{uid}", passive=True)
        assert f"no exchange 'aiormq-missing-{uid}'" in str(ei.value)
        channel = await connection.channel()
        name = f"aiormq-x-{uid}"
        await channel.exchange_declare(name, exchange_type="topic", auto_delete=True)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed):
            await channel.exchange_declare(name, exchange_type="direct", auto_delete=True)
        channel = await connection.channel()
        await channel.exchange_delete(name)
    finally:
        await connection.close()
