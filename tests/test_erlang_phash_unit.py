"""Unit tests for amqp_broker.erlang_phash (erlang:phash2) against values Erlang/OTP's own test
suite pins (erts/emulator/test/hash_SUITE.erl, phash2_test), and for the binding properties keys
built on it (management/binding_props.py), against keys RabbitMQ 3.10 answered with."""
from __future__ import annotations

import pytest

from amqp_broker.erlang_phash import Atom, phash2
from amqp_broker.management import binding_props
from amqp_broker.management.request_body import missing_keys

A = Atom


@pytest.mark.parametrize("term,expected", [
    ([], 3468870702), (A("abc"), 26499), (A("abd"), 26500), (A("åäö"), 62518),
    (0, 3175731469), (1, 539485162), (-1, 1117813597), (1 << 20, 1477815345), (-(1 << 20), 3076904293),
    (4294967296, 2108323275), (-4294967296, 2586067094), (981494972710656, 1622082818),
    (36893488147419103232, 2545846594), (-36893488147419103232, 1649047068),
    (b"", 147926629), (b"\0", 2914887855), (b"\0" * 4, 2014511533), (b"abc", 1306188027),
    (b"12345678901234567890", 3021061640), (bytes(range(32, 128)) * 500, 2644086993),
    (0.0, 423528920), (3.14, 3731709215), (-3.14, 1827518724),
    ([0.0], 167906877), ([()], 4050867804), ([b""], 440873397), ([[]], 499070068), ([A("abc")], 3112446404),
    ([A("a"), A("b"), A("c")], 1505666924), ([97, 98, 99], 519996486), ([97, 98, 99, 1009], 290369864),
    ([97, 98, 99, 1009, 100, 101], 4134369195), ([ord(c) for c in "1234567890123456"], 963649519),
    ((), 221703996), (((),), 2165044361), ((b"",), 682464809), ((0.0,), 688441152), (([],), 1775079505),
    ((A("abc"),), 2032039329), ((A("a"), 1, (), -3.14), 1364396939), ((A("a"), b""), 2724468891),
])
def test_phash2_matches_erlang(term, expected):
    assert phash2(term) == expected


def test_phash2_range():
    assert phash2(b"Scott9", 2**27) == 38990304


@pytest.mark.parametrize("key,arguments,props", [
    ("", {}, "~"),
    ("a b~c/d", {}, "a+b%7Ec%2Fd"),
    ("k", {"x": 1}, "k~9nmLZQ"),
    ("k", {"x": 1, "a": "s", "b": True, "c": 1.5, "d": [1, "z", {"q": 2}], "e": {"n": -70000000000}}, "k~MqMzXA"),
    ("", {"x-match": "any", "h": "v"}, "~KO6tkg"),
])
def test_properties_keys_are_rabbitmqs(key, arguments, props):
    assert binding_props.pack(key, arguments) == props
    assert binding_props.unpack(props) == (key, binding_props.args_hash(arguments) if arguments else None)


def test_unpack_splits_as_rabbitmq_tokenises():
    assert binding_props.unpack("k~h~") == ("k", "h")
    assert binding_props.unpack("a~b~c") is None


def test_missing_keys_are_printed_as_erlang_does():
    assert missing_keys(["a", "b"]) == "[{key_missing,a},{key_missing,b}]"
    assert missing_keys(["routing_key", "payload", "payload_encoding"]) == (
        "[{key_missing,routing_key},\n {key_missing,payload},\n {key_missing,payload_encoding}]")


@pytest.mark.parametrize("table,reason", [
    ({"a": None}, "null_not_allowed"),
    ({"a": [1, {"b": None}]}, "null_not_allowed"),
    ({"k" * 256: 1}, ["field_name_too_long", "k" * 256]),
    ({"a": 2**64}, ["not_int", 2**64]),
])
def test_json_tables_that_no_field_table_holds_are_refused(table, reason):
    from amqp_broker.management.message_json import check_table
    from amqp_broker.management.request_body import BodyError

    with pytest.raises(BodyError) as refused:
        check_table(table)
    assert refused.value.reason == reason
