"""Unit tests for amqp_broker.exchanges: pure routing, no broker needed.

Expectations are RabbitMQ 3.12's (rabbit_db_topic_exchange trie walk,
rabbit_exchange_type_headers matching and validation).
"""
from __future__ import annotations

import datetime as dt
import random
import re
from decimal import Decimal

import pytest

from amqp_broker.exchanges import (
    DelayedMessageExchange,
    EXCHANGE_TYPES,
    BindingError,
    DirectExchange,
    Exchange,
    FanoutExchange,
    HeadersExchange,
    TopicExchange,
    make_exchange,
)
from amqp_broker.exchanges import topic as topic_mod

# --------------------------------------------------------------------------- factory


def test_exchange_types_registry():
    assert EXCHANGE_TYPES == {
        "direct": DirectExchange,
        "fanout": FanoutExchange,
        "topic": TopicExchange,
        "headers": HeadersExchange,
        "x-delayed-message": DelayedMessageExchange,
    }
    for name, cls in EXCHANGE_TYPES.items():
        assert cls.type_name == name
        assert issubclass(cls, Exchange)
    assert HeadersExchange.uses_headers is True
    assert not any(c.uses_headers for c in (DirectExchange, FanoutExchange, TopicExchange))


def test_make_exchange_attributes():
    x = make_exchange("topic", "logs", durable=True, auto_delete=True, internal=True,
                      arguments={"alternate-exchange": "ae"})
    assert isinstance(x, TopicExchange)
    assert (x.name, x.durable, x.auto_delete, x.internal) == ("logs", True, True, True)
    assert x.arguments == {"alternate-exchange": "ae"}
    y = make_exchange("direct", "d")
    assert (y.durable, y.auto_delete, y.internal, y.arguments) == (False, False, False, {})
    assert make_exchange("fanout", "f", arguments=None).arguments == {}


@pytest.mark.parametrize("bad", ["x-consistent-hash", "Direct", "", "x-delayed"])
def test_make_exchange_unknown_type(bad):
    with pytest.raises(KeyError):
        make_exchange(bad, "x")


# --------------------------------------------------------------------------- direct

DIRECT_BINDINGS = [("q1", "a"), ("q2", "a"), ("q3", "b"), ("q4", ""), ("q5", "A"), ("q6", "a.b")]
DIRECT_CASES = [
    ("a", ["q1", "q2"]),
    ("b", ["q3"]),
    ("", ["q4"]),
    ("A", ["q5"]),
    ("a.b", ["q6"]),
    ("a.*", []),
    ("c", []),
    (" a", []),
]


@pytest.mark.parametrize("key,expected", DIRECT_CASES)
def test_direct_routing_table(key, expected):
    x = DirectExchange("d")
    for dest, rk in DIRECT_BINDINGS:
        x.bind(dest, rk, None)
    assert list(x.route(key, None)) == expected


def test_direct_dedup_same_destination_different_args():
    x = DirectExchange("d")
    assert x.bind("q", "k", {}) is True
    assert x.bind("q", "k", {"a": 1}) is True
    assert x.route("k", None) == ("q",)
    assert x.unbind("q", "k", {}) is True
    assert x.route("k", None) == ("q",)  # still bound through the second binding
    assert x.unbind("q", "k", {"a": 1}) is True
    assert x.route("k", None) == ()
    assert not x.has_bindings()


def test_direct_route_does_not_allocate():
    x = DirectExchange("d")
    x.bind("q1", "k", None)
    x.bind("q2", "k", None)
    assert x.route("k", None) is x.route("k", None)
    assert x.route("nope", None) is x.route("other", None)


# --------------------------------------------------------------------------- fanout


def test_fanout_routes_everything_once():
    x = FanoutExchange("f")
    assert x.route("any", None) == ()
    x.bind("q1", "", None)
    x.bind("q2", "ignored", None)
    x.bind("q1", "other", None)  # a second binding to q1: still one copy
    for key in ["", "x", "a.b.c", "#"]:
        assert list(x.route(key, {"h": 1})) == ["q1", "q2"]
    x.unbind("q1", "", None)
    assert list(x.route("", None)) == ["q1", "q2"]
    x.unbind("q1", "other", None)
    assert list(x.route("", None)) == ["q2"]
    assert x.route("", None) is x.route("zzz", None)


# --------------------------------------------------------------------------- topic

# (pattern, routing key, matches?) — every edge case in the reference §7 plus the
# multi-wildcard patterns whose behaviour comes from the trie walk.
TOPIC_CASES = [
    # literals
    ("a", "a", True),
    ("a", "A", False),  # case-sensitive
    ("a.b", "a.b", True),
    ("a.b", "a.b.c", False),
    ("a.b", "a", False),
    ("a*", "ab", False),  # wildcards are whole words only
    ("a*", "a*", True),
    ("#a", "a", False),
    ("#a", "#a", True),
    ("", "", True),
    ("", "a", False),
    ("a", "", False),
    # empty words
    ("a..b", "a..b", True),
    ("a..b", "a.b", False),
    ("a.*.b", "a..b", True),  # * matches the empty word
    ("a.", "a.", True),
    ("a.", "a", False),
    (".a", ".a", True),
    ("*.a", ".a", True),
    ("*", ".", False),  # "." is two empty words
    ("*.*", ".", True),
    ("#", ".", True),
    # *
    ("*", "a", True),
    ("*", "", False),  # * needs exactly one word
    ("*", "a.b", False),
    ("a.*", "a.b", True),
    ("a.*", "a", False),
    ("a.*", "a.b.c", False),
    ("*.b", "a.b", True),
    ("*.*", "a.b", True),
    ("*.*", "a", False),
    # #
    ("#", "", True),
    ("#", "a", True),
    ("#", "a.b.c", True),
    ("a.#", "a", True),
    ("a.#", "a.b", True),
    ("a.#", "a.b.c", True),
    ("a.#", "b.a", False),
    ("a.#", "", False),
    ("#.a", "a", True),
    ("#.a", "x.y.a", True),
    ("#.a", "a.x", False),
    ("a.#.b", "a.b", True),
    ("a.#.b", "a.x.y.b", True),
    ("a.#.b", "a.x.y", False),
    ("#.#", "", True),
    ("#.#", "a", True),
    ("#.#", "a.b.c", True),
    ("a.#.#.b", "a.b", True),
    ("a.#.#.b", "a.x.b", True),
    ("a.#.#.b", "a.x.y.z.b", True),
    ("a.#.#.b", "a", False),
    ("a.#.#.b", "b", False),
    ("*.#", "", False),
    ("*.#", "a", True),
    ("*.#", "a.b.c", True),
    ("#.*", "", False),
    ("#.*", "a", True),
    ("#.*", "a.b.c", True),
    ("#.*.#", "", False),
    ("#.*.#", "x", True),
    ("*.#.*", "a", False),
    ("*.#.*", "a.b", True),
    ("*.#.*", "a.b.c.d", True),
    ("#.a.#", "a", True),
    ("#.a.#", "x.a.y", True),
    ("#.a.#", "x.b.y", False),
    ("#.a.#", "a.a.a.a", True),
    ("#.b.#.b.#", "b.b", True),
    ("#.b.#.b.#", "b.x", False),
    ("#.#.#.#.#.#.z", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.z", True),
    ("#.#.#.#.#.#.z", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q", False),
    # words that are literally * or # in the routing key are ordinary words
    ("a.*", "a.*", True),
    ("a.#", "a.#", True),
    ("a.b", "a.*", False),
    ("*", "#", True),
]


@pytest.mark.parametrize("pattern,key,matches", TOPIC_CASES)
def test_topic_single_binding_table(pattern, key, matches):
    x = TopicExchange("t")
    x.bind("q", pattern, None)
    assert list(x.route(key, None)) == (["q"] if matches else [])


@pytest.mark.parametrize("key", sorted({k for _, k, _ in TOPIC_CASES}))
def test_topic_all_patterns_at_once(key):
    """The same table with every pattern in one trie: shared prefixes must not interfere."""
    x = TopicExchange("t")
    patterns = sorted({p for p, _, _ in TOPIC_CASES})
    for p in patterns:
        x.bind(("q", p), p, None)
    got = x.route(key, None)
    assert len(got) == len(set(got))  # de-duplicated
    expected = {("q", p) for p in patterns if _reference_match(p, key)}
    assert set(got) == expected
    for p, k, m in TOPIC_CASES:  # the table agrees with the reference matcher
        if k == key:
            assert (("q", p) in expected) == m, p


def _reference_match(pattern: str, key: str) -> bool:
    """Independent definition: # = any number of words, * = exactly one word."""
    pw = pattern.split(".") if pattern else []
    kw = key.split(".") if key else []
    regex = []
    for w in pw:
        if w == "#":
            regex.append(r"(?:\x00[^\x00]*)*")
        elif w == "*":
            regex.append(r"\x00[^\x00]*")
        else:
            regex.append(r"\x00" + re.escape(w))
    return re.fullmatch("".join(regex), "".join("\x00" + w for w in kw)) is not None


def test_topic_randomised_against_reference():
    rng = random.Random(1234)
    vocab = ["a", "b", "", "*", "#"]
    patterns = {".".join(rng.choice(vocab) for _ in range(rng.randint(0, 5))) for _ in range(300)}
    keys = {".".join(rng.choice(["a", "b", ""]) for _ in range(rng.randint(0, 6)))
            for _ in range(300)}
    x = TopicExchange("t")
    for p in patterns:
        x.bind(p, p, None)
    for k in keys:
        got = x.route(k, None)
        assert len(got) == len(set(got))
        assert set(got) == {p for p in patterns if _reference_match(p, k)}, k


def test_topic_duplicate_destination_across_patterns():
    x = TopicExchange("t")
    for p in ["a.*", "*.b", "#", "a.b", "a.#.b"]:
        x.bind("q", p, None)
    x.bind("q2", "a.b", None)
    got = x.route("a.b", None)
    assert sorted(got) == ["q", "q2"]  # q matched by five patterns, delivered once


def test_topic_pathological_hashes_are_fast():
    x = TopicExchange("t")
    x.bind("q", "#.#.#.#.#.#.#.#.#.#.z", None)
    key = ".".join(["w"] * 120)
    assert x.route(key, None) == ()
    assert x.route(key + ".z", None) == ("q",)


def test_topic_cache_invalidated_on_bind_and_unbind():
    x = TopicExchange("t")
    x.bind("q1", "a.*", None)
    assert x.route("a.b", None) == ("q1",)
    assert x.route("c", None) == ()
    x.bind("q2", "#", None)  # new binding must be visible for already-cached keys
    assert set(x.route("a.b", None)) == {"q1", "q2"}
    assert x.route("c", None) == ("q2",)
    x.unbind("q1", "a.*", None)
    assert x.route("a.b", None) == ("q2",)
    x.unbind_destination("q2")
    assert x.route("a.b", None) == ()
    assert x.route("c", None) == ()


def test_topic_cache_bounded(monkeypatch):
    monkeypatch.setattr(topic_mod, "CACHE_LIMIT", 50)
    x = TopicExchange("t")
    x.bind("q", "#", None)
    for i in range(500):
        assert x.route(f"k.{i}", None) == ("q",)
        assert len(x._cache) <= 50


def test_topic_cache_same_object_on_hit():
    x = TopicExchange("t")
    x.bind("q", "a.#", None)
    first = x.route("a.b", None)
    assert x.route("a.b", None) is first


def test_topic_unbind_prunes_trie_but_keeps_shared_prefixes():
    x = TopicExchange("t")
    x.bind("q1", "a.b.c", None)
    x.bind("q2", "a.b", None)
    x.bind("q3", "a.*.#", None)
    x.unbind("q1", "a.b.c", None)
    assert x.route("a.b.c", None) == ("q3",)
    assert set(x.route("a.b", None)) == {"q2", "q3"}
    x.unbind("q2", "a.b", None)
    x.unbind("q3", "a.*.#", None)
    root = x._root
    assert root.is_empty()
    x.bind("q1", "a.b.c", None)  # re-creating after pruning works
    assert x.route("a.b.c", None) == ("q1",)


def test_topic_same_pattern_two_argument_sets():
    x = TopicExchange("t")
    x.bind("q", "a.#", {"x": 1})
    x.bind("q", "a.#", {"x": 2})
    assert x.route("a.b", None) == ("q",)
    x.unbind("q", "a.#", {"x": 1})
    assert x.route("a.b", None) == ("q",)  # the other binding still routes
    x.unbind("q", "a.#", {"x": 2})
    assert x.route("a.b", None) == ()


# --------------------------------------------------------------------------- headers


def _hx(*bindings):
    x = HeadersExchange("h")
    for dest, args in bindings:
        x.bind(dest, "", args)
    return x


# (binding arguments, message headers, matches?)
HEADERS_CASES = [
    # x-match all (explicit and default)
    ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1, "b": "x"}, True),
    ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1, "b": "x", "c": 0}, True),
    ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1}, False),
    ({"x-match": "all", "a": 1, "b": "x"}, {"a": 1, "b": "y"}, False),
    ({"a": 1, "b": "x"}, {"a": 1, "b": "x"}, True),  # default is all
    ({"a": 1, "b": "x"}, {"b": "x"}, False),
    # x-match any
    ({"x-match": "any", "a": 1, "b": "x"}, {"a": 1}, True),
    ({"x-match": "any", "a": 1, "b": "x"}, {"b": "x", "a": 2}, True),
    ({"x-match": "any", "a": 1, "b": "x"}, {"a": 2, "b": "y"}, False),
    ({"x-match": "any", "a": 1, "b": "x"}, {}, False),
    ({"x-match": "any", "a": 1, "b": "x"}, None, False),
    # empty patterns: all matches everything, any nothing
    ({}, {}, True),
    ({}, None, True),
    ({}, {"a": 1}, True),
    ({"x-match": "all"}, None, True),
    ({"x-match": "any"}, {"a": 1}, False),
    ({"x-match": "any"}, None, False),
    # x- arguments ignored unless *-with-x
    ({"x-match": "all", "x-foo": "bar"}, {}, True),
    ({"x-match": "any", "x-foo": "bar"}, {"x-foo": "bar"}, False),
    ({"x-match": "all", "x-foo": "bar", "a": 1}, {"a": 1}, True),
    ({"x-match": "all-with-x", "x-foo": "bar"}, {}, False),
    ({"x-match": "all-with-x", "x-foo": "bar"}, {"x-foo": "bar"}, True),
    ({"x-match": "all-with-x", "x-foo": "bar", "a": 1}, {"x-foo": "bar"}, False),
    ({"x-match": "any-with-x", "x-foo": "bar", "a": 1}, {"x-foo": "bar"}, True),
    ({"x-match": "any-with-x", "x-foo": "bar", "a": 1}, {"x-foo": "baz"}, False),
    ({"x-match": "any-with-x"}, {"x-match": "any-with-x"}, False),  # x-match never compared
    ({"x-match": "all-with-x"}, {}, True),
    ({"X-foo": "bar"}, {}, False),  # prefix check is case-sensitive: X-foo is a normal key
    ({"x-": 1}, {}, True),  # "x-" alone still starts with x-
    # void binding value = presence check
    ({"a": None}, {"a": "anything"}, True),
    ({"a": None}, {"a": None}, True),
    ({"a": None}, {"b": 1}, False),
    ({"x-match": "any", "a": None, "b": 1}, {"a": 0}, True),
    ({"a": "x"}, {"a": None}, False),  # void header does not equal a value
    # numeric equality ignores widths and int/float, not bools
    ({"a": 1}, {"a": 1.0}, True),
    ({"a": 1.5}, {"a": 1.5}, True),
    ({"a": 1}, {"a": True}, False),
    ({"a": True}, {"a": 1}, False),
    ({"a": True}, {"a": True}, True),
    ({"a": False}, {"a": 0}, False),
    ({"a": 0}, {"a": False}, False),
    ({"a": 1}, {"a": "1"}, False),
    # longstr vs binary: same bytes are equal in Erlang
    ({"a": "abc"}, {"a": bytearray(b"abc")}, True),
    ({"a": "abc"}, {"a": b"abc"}, True),
    ({"a": bytearray(b"\xff")}, {"a": b"\xff"}, True),
    ({"a": "é"}, {"a": "é".encode()}, True),
    ({"a": "abc"}, {"a": "ABC"}, False),
    ({"a": ""}, {"a": ""}, True),
    ({"a": ""}, {}, False),
    # decimals: {Scale, Unscaled}, so scale matters
    ({"a": Decimal("1.5")}, {"a": Decimal("1.5")}, True),
    ({"a": Decimal("1.5")}, {"a": Decimal("1.50")}, False),
    ({"a": Decimal("1")}, {"a": 1}, False),
    # timestamps are integer seconds
    ({"a": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)},
     {"a": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)}, True),
    ({"a": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)}, {"a": 1704067200}, True),
    ({"a": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)}, {"a": 1704067201}, False),
    # nested tables / arrays
    ({"a": {"b": 1}}, {"a": {"b": 1}}, True),
    ({"a": {"b": 1}}, {"a": {"b": 2}}, False),
    ({"a": [1, "x"]}, {"a": [1, "x"]}, True),
    ({"a": [1, "x"]}, {"a": ["x", 1]}, False),
    ({"a": [1]}, {"a": 1}, False),
    # keys are case-sensitive
    ({"A": 1}, {"a": 1}, False),
]


@pytest.mark.parametrize("args,headers,matches", HEADERS_CASES)
def test_headers_matching_table(args, headers, matches):
    x = _hx(("q", args))
    assert list(x.route("ignored", headers)) == (["q"] if matches else [])


def test_headers_routing_key_ignored():
    x = _hx(("q", {"a": 1}))
    assert x.route("", {"a": 1}) == x.route("whatever", {"a": 1}) == ("q",)


def test_headers_distinct_destinations_and_shared_specs():
    x = HeadersExchange("h")
    x.bind("q1", "", {"a": 1})
    x.bind("q2", "", {"a": 1})
    x.bind("q1", "", {"x-match": "any", "a": 1, "b": 2})
    x.bind("q3", "", {"b": 2})
    assert list(x.route("", {"a": 1, "b": 2})) == ["q1", "q2", "q3"]
    assert list(x.route("", {"b": 2})) == ["q1", "q3"]
    x.unbind("q1", "", {"a": 1})
    assert list(x.route("", {"a": 1})) == ["q2", "q1"]


VALID_XMATCH = ["all", "any", "all-with-x", "any-with-x"]


@pytest.mark.parametrize("mode", VALID_XMATCH)
def test_headers_valid_x_match(mode):
    x = HeadersExchange("h")
    x.validate_binding("", {"x-match": mode})
    assert x.bind("q", "", {"x-match": mode}) is True


INVALID_XMATCH = [
    ("foo", 'Invalid x-match field value <<"foo">>; expected all, any, all-with-x, or any-with-x'),
    ("ALL", 'Invalid x-match field value <<"ALL">>; expected all, any, all-with-x, or any-with-x'),
    ("", "Invalid x-match field value <<>>; expected all, any, all-with-x, or any-with-x"),
    ("all ", 'Invalid x-match field value <<"all ">>; expected all, any, all-with-x, or any-with-x'),
    ('a"b', 'Invalid x-match field value <<"a\\"b">>; expected all, any, all-with-x, or any-with-x'),
    ("é", 'Invalid x-match field value <<"é"/utf8>>; expected all, any, all-with-x, or any-with-x'),
    (b"\x01\x02", "Invalid x-match field value <<1,2>>; expected all, any, all-with-x, or any-with-x"),
    (23, "Invalid x-match field type signedint (value 23); expected longstr"),
    (2**40, f"Invalid x-match field type long (value {2**40}); expected longstr"),
    (True, "Invalid x-match field type bool (value true); expected longstr"),
    (1.5, "Invalid x-match field type double (value 1.5); expected longstr"),
    (None, "Invalid x-match field type void (value undefined); expected longstr"),
    (bytearray(b"all"), 'Invalid x-match field type binary (value <<"all">>); expected longstr'),
    (Decimal("1.5"), "Invalid x-match field type decimal (value {1,15}); expected longstr"),
    (["all"], 'Invalid x-match field type array (value [{longstr,<<"all">>}]); expected longstr'),
    ({"k": 1}, 'Invalid x-match field type table (value [{<<"k">>,signedint,1}]); '
               "expected longstr"),
]


@pytest.mark.parametrize("value,message", INVALID_XMATCH)
def test_headers_invalid_x_match(value, message):
    x = HeadersExchange("h")
    with pytest.raises(BindingError) as info:
        x.validate_binding("", {"x-match": value, "a": 1})
    assert str(info.value) == message
    with pytest.raises(BindingError):
        x.bind("q", "", {"x-match": value})
    assert not x.has_bindings()
    # unbinding is never validated; it just does not find anything
    assert x.unbind("q", "", {"x-match": value}) is False


def test_headers_longstr_bytes_x_match_accepted():
    # A longstr that pamqp left as bytes is still a longstr to RabbitMQ.
    x = HeadersExchange("h")
    x.bind("q", "", {"x-match": b"any", "a": 1})
    assert x.route("", {"a": 1}) == ("q",)
    assert x.route("", {"b": 1}) == ()


@pytest.mark.parametrize("cls", [DirectExchange, FanoutExchange, TopicExchange])
def test_other_types_accept_any_arguments(cls):
    x = cls("x")
    x.validate_binding("k", {"x-match": "foo"})
    assert x.bind("q", "k", {"x-match": "foo"}) is True


# ---------------------------------------------------------------- binding bookkeeping

ALL_TYPES = [DirectExchange, FanoutExchange, TopicExchange, HeadersExchange]


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_bind_identity_includes_arguments(cls):
    x = cls("x")
    assert x.bind("q", "k", None) is True
    assert x.bind("q", "k", {}) is False  # None and {} are the same (empty) table
    assert x.bind("q", "k", {"a": 1}) is True
    assert x.bind("q", "k", {"a": 1}) is False
    assert x.bind("q", "k", {"a": 1.0}) is True  # typed: 1 and 1.0 are different args
    assert x.bind("q", "k", {"a": True}) is True
    assert x.bind("q", "k", {"a": "1"}) is True
    assert x.bind("q", "k2", {"a": 1}) is True  # different key
    assert x.bind("q2", "k", {"a": 1}) is True  # different destination
    assert len(x.bindings()) == 7
    assert x.unbind("q", "k", {"a": 2}) is False
    assert x.unbind("q", "k", {"a": 1}) is True
    assert x.unbind("q", "k", {"a": 1}) is False
    assert x.unbind("q", "k", None) is True
    assert x.unbind("q", "k", {}) is False


NESTED_EQUAL = [
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}),  # top-level order is irrelevant (RabbitMQ sorts)
    ({"n": {"x": [1, "s", None], "y": b"z"}}, {"n": {"y": b"z", "x": [1, "s", None]}}),
    ({"d": Decimal("1.5")}, {"d": Decimal("1.5")}),
    ({"t": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)},
     {"t": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)}),
    ({"s": "abc"}, {"s": b"abc"}),  # both longstr
    ({"f": float("nan")}, {"f": float("nan")}),
]
NESTED_DIFFERENT = [
    ({"a": [1, 2]}, {"a": [2, 1]}),
    ({"a": {"x": 1}}, {"a": {"x": True}}),
    ({"d": Decimal("1.5")}, {"d": Decimal("1.50")}),
    ({"s": "abc"}, {"s": bytearray(b"abc")}),  # longstr vs binary
    ({"v": None}, {"v": 0}),
    ({"a": 0}, {"a": False}),
]


@pytest.mark.parametrize("first,second", NESTED_EQUAL)
def test_argument_identity_equal(first, second):
    x = TopicExchange("t")
    assert x.bind("q", "k", first) is True
    assert x.bind("q", "k", second) is False
    assert x.unbind("q", "k", second) is True
    assert not x.has_bindings()


@pytest.mark.parametrize("first,second", NESTED_DIFFERENT)
def test_argument_identity_different(first, second):
    x = TopicExchange("t")
    assert x.bind("q", "k", first) is True
    assert x.bind("q", "k", second) is True
    assert x.unbind("q", "k", second) is True
    assert x.bindings() == [("q", "k", first)]


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_bindings_order_and_original_arguments(cls):
    x = cls("x")
    args = {"n": {"deep": [1, 2]}, "b": b"raw"}
    x.bind(("q", "z"), "k1", None)
    x.bind(("e", "ex"), "k2", args)
    x.bind(("q", "a"), "k0", {"x": 1})
    x.bind(("q", "z"), "k1", None)  # duplicate keeps its original position
    assert x.bindings() == [(("q", "z"), "k1", {}), (("e", "ex"), "k2", args),
                            (("q", "a"), "k0", {"x": 1})]
    assert x.bindings()[1][2] == {"n": {"deep": [1, 2]}, "b": b"raw"}
    args["mutated"] = True  # caller mutating its dict afterwards changes nothing
    assert "mutated" not in x.bindings()[1][2]
    assert x.unbind(("e", "ex"), "k2", {"n": {"deep": [1, 2]}, "b": b"raw"}) is True


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_unbind_destination(cls):
    x = cls("x")
    x.bind("q1", "a", None)
    x.bind("q1", "b", {"x": 1})
    x.bind("q2", "a", None)
    x.bind("q1", "a", {"x": 2})
    assert x.unbind_destination("q1") == 3
    assert x.unbind_destination("q1") == 0
    assert x.unbind_destination("never") == 0
    assert x.bindings() == [("q2", "a", {})]
    assert x.has_bindings()
    assert list(x.route("a", {})) == ["q2"]
    assert list(x.route("b", {})) == ([] if cls in (DirectExchange, TopicExchange) else ["q2"])
    assert x.unbind_destination("q2") == 1
    assert not x.has_bindings()
    assert x.bindings() == []
    assert list(x.route("a", {})) == []


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_has_bindings(cls):
    x = cls("x")
    assert not x.has_bindings()
    assert not x.has_destination("q")
    x.bind("q", "k", None)
    x.bind("q", "k", {"a": 1})
    assert x.has_bindings() and x.has_destination("q")
    x.unbind("q", "k", None)
    assert x.has_destination("q")
    x.unbind("q", "k", {"a": 1})
    assert not x.has_bindings()
    assert not x.has_destination("q")


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_destinations_are_opaque(cls):
    x = cls("x")
    dests = [("q", "a"), ("e", "a"), "a", 1, frozenset({"z"})]
    for d in dests:
        x.bind(d, "k", None)
    assert set(x.route("k", {})) == set(dests)
    assert len(x.route("k", {})) == len(dests)


@pytest.mark.parametrize("cls", ALL_TYPES)
def test_route_after_rebind_cycle(cls):
    """Bind/unbind churn leaves no stale routing state behind."""
    x = cls("x")
    for _ in range(3):
        x.bind("q", "a.b", {"h": 1} if cls is HeadersExchange else None)
        assert list(x.route("a.b", {"h": 1})) == ["q"]
        x.unbind("q", "a.b", {"h": 1} if cls is HeadersExchange else None)
        assert list(x.route("a.b", {"h": 1})) == []
