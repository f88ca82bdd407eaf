"""Unit tests for amqp_broker.erlang_terms: values printed as RabbitMQ's io_lib prints them.

Expected texts are what Erlang's ~tp / ~p / ~w / ~ts give for the term RabbitMQ holds: a
decoded field table is a list of {Name,Type,Value}, a JSON object (policies) a map, an empty
binary is <<>>, a float always has a fraction (1.0e20).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from amqp_broker.erlang_terms import (
    decimal_parts,
    erl_binary,
    erl_charlist,
    erl_json,
    erl_octets,
    erl_text,
    erl_value,
    timestamp_seconds,
)
from amqp_broker.tables import RawTimestamp

UTC = dt.timezone.utc


@pytest.mark.parametrize("data,text", [
    (b"", "<<>>"),
    (b"foo", '<<"foo">>'),
    ("héllo".encode(), '<<"héllo"/utf8>>'),  # non-ASCII UTF-8 is marked
    (b"caf\xe9", '<<"café">>'),              # not UTF-8 but printable Latin-1
    (b"\x01\x02", "<<1,2>>"),
    (b'a"b\\c\n', '<<"a\\"b\\\\c\\n">>'),
    ("€".encode(), "<<226,130,172>>"),      # beyond io_lib's default printable range
])
def test_erl_binary(data, text):
    assert erl_binary(data) == text


def test_erl_octets():
    assert erl_octets(b"") == "<<>>"
    assert erl_octets(b"ab\x00") == "<<97,98,0>>"
    assert erl_octets(bytes(300)).endswith(",0,...>>")


@pytest.mark.parametrize("text,shown", [
    ("s", '"s"'), ('a"b', '"a\\"b"'), ("a\\b", '"a\\\\b"'), ("\n", '"\\n"'),
    ("", "[]"), ("a\x01", "[97,1]"),
])
def test_erl_charlist(text, shown):
    assert erl_charlist(text) == shown


@pytest.mark.parametrize("value,text", [
    (None, "undefined"), (True, "true"), (7, "7"), (-(2**40), "-1099511627776"),
    (1.5, "1.5"), (1e20, "1.0e20"), ("foo", '<<"foo">>'), (b"\xff\xfe\x00", "<<255,254,0>>"),
    (bytearray(b"ab"), '<<"ab">>'), (Decimal("1.50"), "{2,150}"),
    (dt.datetime(2020, 1, 1, tzinfo=UTC), "1577836800"), (RawTimestamp(2**63), str(2**63)),
    ({"a": 1, "b": "x"}, '[{<<"a">>,signedint,1},{<<"b">>,longstr,<<"x">>}]'),
    ([1, None, [True]], "[{signedint,1},{void,undefined},{array,[{bool,true}]}]"),
    ({}, "[]"),
])
def test_erl_value(value, text):
    assert erl_value(value) == text


def test_erl_value_is_bounded_and_not_recursive():
    deep: dict = {}
    for _ in range(20000):
        deep = {"k": deep}
    text = erl_value(deep)
    assert text.endswith("...") and len(text) < 5000


@pytest.mark.parametrize("value,text", [
    ("dlx", "dlx"), (b"ab", "ab"), (bytearray(b"ab"), "ab"), (2000, "2000"), (True, "true"),
    (1.5, "1.5"), (Decimal("1.5"), "{1,15}"),
])
def test_erl_text(value, text):
    """rabbit_misc:val/1: a binary with ~ts, anything else with ~tp."""
    assert erl_text(value) == text


@pytest.mark.parametrize("value,text", [
    (None, "null"), (True, "true"), (False, "false"), (0, "0"), (-12, "-12"),
    (1.5, "1.5"), (2.0, "2.0"), (1e20, "1.0e20"), (1.5e-7, "1.5e-7"),
    ("abc", '<<"abc">>'), ("", "<<>>"), ('a"b\\c', '<<"a\\"b\\\\c">>'), ("a\nb", '<<"a\\nb">>'),
    ("é", '<<"é"/utf8>>'), (b"\x00\x01", "<<0,1>>"),
    ([], "[]"), ([1, "a", [None]], '[1,<<"a">>,[null]]'),
    ({"b": 1, "a": [2]}, '#{<<"a">> => [2],<<"b">> => 1}'), ({}, "#{}"),
    (("k", 1), '{<<"k">>,1}'),
])
def test_erl_json(value, text):
    assert erl_json(value) == text


@pytest.mark.parametrize("value,parts", [
    (Decimal("1.5"), (1, 15)), (Decimal("1.50"), (2, 150)), (Decimal("-0.03"), (2, -3)),
    (Decimal("1E+2"), (0, 100)), (Decimal("0"), (0, 0)),
])
def test_decimal_parts(value, parts):
    assert decimal_parts(value) == parts


def test_timestamp_seconds():
    assert timestamp_seconds(dt.datetime(1970, 1, 1, 0, 0, 5, tzinfo=UTC)) == 5
    assert timestamp_seconds(dt.datetime(1970, 1, 1, 0, 0, 5)) == 5  # naive: taken as UTC
    assert timestamp_seconds(dt.datetime(1970, 1, 1, 0, 0, 5, 500000, tzinfo=UTC)) == 5.5
