"""Unit tests for amqp_broker.properties: locating basic.properties inside a raw content
header and splicing one property without touching any other byte.

Headers are built two ways: with pamqp (ContentHeader(...).marshal(), which is the frame
*payload*: class-id, weight, body-size, flags, properties) and by hand, for what pamqp cannot
produce (cluster-id, empty strings, 'd' doubles, 'l' longs, millisecond timestamps, 'x'
binaries, extra flag words). Comparisons are on raw spans, byte for byte: decoded values are
exactly what pamqp gets wrong (pamqp-notes.md trap 2).
"""
from __future__ import annotations

import datetime as dt
import random
import struct

import pytest
from pamqp import commands as C
from pamqp import encode as pencode
from pamqp import header as pheader

from amqp_broker import properties as P
from amqp_broker.properties import Properties, PropertyError, splice

NAMES = ("content_type", "content_encoding", "headers", "delivery_mode", "priority", "correlation_id",
         "reply_to", "expiration", "message_id", "timestamp", "message_type", "user_id", "app_id",
         "cluster_id")
KINDS = ("s", "s", "t", "o", "o", "s", "s", "s", "s", "q", "s", "s", "s", "s")


def ss(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return bytes([len(raw)]) + raw


def table_raw(items) -> bytes:
    """A field table from (key, letter, raw-value) triples, any type letter allowed."""
    body = b"".join(ss(k) + letter + raw for k, letter, raw in items)
    return struct.pack(">I", len(body)) + body


# A headers table full of values pamqp does not round-trip: 64-bit ints, doubles, a
# millisecond timestamp, a non-UTF-8 longstr, nested tables/arrays, a binary, a decimal.
TRICKY_HEADERS = table_raw([
    ("long", b"l", struct.pack(">q", -(2**63) + 7)),
    ("double", b"d", struct.pack(">d", 0.1)),
    ("float", b"f", struct.pack(">f", 1.25)),
    ("ts-ms", b"T", struct.pack(">Q", 1_700_000_000_123)),
    ("latin1", b"S", struct.pack(">I", 3) + b"\xe9t\xe9"),
    ("empty", b"S", struct.pack(">I", 0)),
    ("nested", b"F", table_raw([("inner", b"F", table_raw([("deep", b"l", struct.pack(">q", 2**62))])),
                                 ("arr", b"A", struct.pack(">I", 14) + b"I" + struct.pack(">i", -1)
                                  + b"d" + struct.pack(">d", 2.5))])),
    ("bin", b"x", struct.pack(">I", 3) + b"\x00\xff\x01"),
    ("dec", b"D", b"\x03" + struct.pack(">I", 123456)),
    ("void", b"V", b""),
    ("BCC", b"A", struct.pack(">I", 8) + b"S" + struct.pack(">I", 3) + b"bcc"),
    ("k" * 200, b"t", b"\x01"),
])

# raw wire bytes of each property (index -> bytes)
SAMPLE = {
    P.CONTENT_TYPE: ss("application/json"),
    P.CONTENT_ENCODING: ss("gzip"),
    P.HEADERS: TRICKY_HEADERS,
    P.DELIVERY_MODE: b"\x02",
    P.PRIORITY: b"\x07",
    P.CORRELATION_ID: ss("corr-é"),
    P.REPLY_TO: ss("amq.rabbitmq.reply-to"),
    P.EXPIRATION: ss("60000"),
    P.MESSAGE_ID: ss("m" * 255),
    P.TIMESTAMP: struct.pack(">Q", 1_700_000_000_123),  # milliseconds, as some clients send
    P.TYPE: ss(""),  # empty string: present on the wire, pamqp would drop it
    P.USER_ID: ss("guest"),
    P.APP_ID: ss(b"\xff\xfe"),  # not UTF-8
    P.CLUSTER_ID: ss("cluster"),  # pamqp refuses to build it
}


def build_header(props: dict, body_size: int = 42, weight: int = 0, extra_flag_words: int = 0) -> bytes:
    """class-id 60, weight, body-size, flag word(s), then the raw property bytes in order."""
    flags = 0
    for index in props:
        flags |= 0x8000 >> index
    words = [flags]
    if extra_flag_words:
        words = [flags | 1] + [1] * (extra_flag_words - 1) + [0]
    flag_bytes = b"".join(struct.pack(">H", w) for w in words)
    return (struct.pack(">HHQ", 60, weight, body_size) + flag_bytes
            + b"".join(props[i] for i in sorted(props)))


def check_parsed(header: bytes, props: dict) -> Properties:
    p = Properties(header)
    for index in range(14):
        span = p.spans[index]
        if index in props:
            assert span is not None, NAMES[index]
            assert header[span[0] : span[1]] == props[index], NAMES[index]
        else:
            assert span is None, NAMES[index]
    assert p.delivery_mode == (props[P.DELIVERY_MODE][0] if P.DELIVERY_MODE in props else None)
    assert p.priority == (props[P.PRIORITY][0] if P.PRIORITY in props else None)
    for attr, index in (("reply_to", P.REPLY_TO), ("expiration", P.EXPIRATION), ("user_id", P.USER_ID)):
        expected = props[index][1:].decode("utf-8", "surrogateescape") if index in props else None
        assert getattr(p, attr) == expected, attr
    return p


# --------------------------------------------------------------------------- reading


def test_builder_agrees_with_pamqp():
    """Sanity check of the hand builder on what pamqp can express."""
    pam = C.Basic.Properties(content_type="text/plain", headers={"a": "b"}, delivery_mode=2, priority=3,
                             reply_to="r", expiration="100", user_id="u", app_id="app")
    ours = build_header({
        P.CONTENT_TYPE: ss("text/plain"), P.HEADERS: pencode.field_table({"a": "b"}), P.DELIVERY_MODE: b"\x02",
        P.PRIORITY: b"\x03", P.REPLY_TO: ss("r"), P.EXPIRATION: ss("100"), P.USER_ID: ss("u"),
        P.APP_ID: ss("app")}, body_size=9)
    assert pheader.ContentHeader(0, 9, pam).marshal() == ours


def test_no_properties():
    header = pheader.ContentHeader(0, 5, C.Basic.Properties()).marshal()
    assert header == struct.pack(">HHQH", 60, 0, 5, 0)
    p = check_parsed(header, {})
    assert p.flags == 0
    assert p.headers(header) is None


def test_every_combination_of_the_14_properties():
    """All 2**14 subsets, hand-built (cluster-id and empty strings included)."""
    for mask in range(1 << 14):
        props = {i: SAMPLE[i] for i in range(14) if mask & (1 << i)}
        header = build_header(props)
        p = check_parsed(header, props)
        assert p.flags == sum(0x8000 >> i for i in props)


PAMQP_VALUES = {
    "content_type": "application/octet-stream",
    "content_encoding": "utf-8",
    "headers": {"x-int": 2**40, "x-str": "é", "x-bool": True, "x-nested": {"a": [1, "b"]},
                "CC": ["k1", "k2"]},
    "delivery_mode": 2,
    "priority": 9,
    "correlation_id": "c-1",
    "reply_to": "amq.gen-abc",
    "expiration": "1500",
    "message_id": "id-1",
    "timestamp": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc),
    "message_type": "event",
    "user_id": "guest",
    "app_id": "tests",
}


def test_random_pamqp_built_headers():
    rng = random.Random(2024)
    names = list(PAMQP_VALUES)
    for _ in range(400):
        chosen = [n for n in names if rng.random() < 0.5]
        kwargs = {n: PAMQP_VALUES[n] for n in chosen}
        size = rng.choice([0, 1, 2**32, 2**64 - 1])
        header = pheader.ContentHeader(0, size, C.Basic.Properties(**kwargs)).marshal()
        p = Properties(header)
        decoded = pheader.ContentHeader()
        decoded.unmarshal(header)
        for index, name in enumerate(NAMES):
            if name in kwargs:
                span = p.spans[index]
                assert span is not None, name
                raw = header[span[0] : span[1]]
                assert raw == pencode.by_type(kwargs[name], C.Basic.Properties.amqp_type(name)), name
            else:
                assert p.spans[index] is None, name
        assert p.delivery_mode == kwargs.get("delivery_mode")
        assert p.priority == kwargs.get("priority")
        assert p.reply_to == kwargs.get("reply_to")
        assert p.expiration == kwargs.get("expiration")
        assert p.user_id == kwargs.get("user_id")
        assert p.headers(header) == decoded.properties.headers


def test_headers_decoded():
    header = build_header({P.HEADERS: pencode.field_table({"a": 1, "b": "x", "c": {"d": [True]}})})
    assert Properties(header).headers(header) == {"a": 1, "b": "x", "c": {"d": [True]}}
    empty = build_header({P.HEADERS: b"\x00\x00\x00\x00"})
    assert Properties(empty).headers(empty) == {}
    tricky = build_header({P.HEADERS: TRICKY_HEADERS, P.USER_ID: ss("u")})
    headers = Properties(tricky).headers(tricky)
    assert headers["long"] == -(2**63) + 7
    assert headers["double"] == 0.1
    assert headers["latin1"] == b"\xe9t\xe9"
    assert headers["nested"]["inner"] == {"deep": 2**62}
    assert headers["BCC"] == ["bcc"]


def test_reads_non_utf8_strings_losslessly():
    header = build_header({P.REPLY_TO: ss(b"\xff\x00r"), P.EXPIRATION: ss(b"1\x80"), P.USER_ID: ss(b"\xc3")})
    p = Properties(header)
    assert p.reply_to.encode("utf-8", "surrogateescape") == b"\xff\x00r"
    assert p.expiration.encode("utf-8", "surrogateescape") == b"1\x80"
    assert p.user_id.encode("utf-8", "surrogateescape") == b"\xc3"


def test_weight_and_body_size_ignored():
    props = {P.DELIVERY_MODE: b"\x01", P.USER_ID: ss("u")}
    for weight, size in ((0, 0), (7, 2**64 - 1)):
        check_parsed(build_header(props, body_size=size, weight=weight), props)


@pytest.mark.parametrize("extra", [1, 2, 3])
def test_continuation_flag_words(extra):
    """A flag word with bit 0 set announces another one: the properties start after the
    last word."""
    props = {P.CONTENT_TYPE: ss("t"), P.PRIORITY: b"\x04", P.REPLY_TO: ss("rr"), P.CLUSTER_ID: ss("c")}
    header = build_header(props, extra_flag_words=extra)
    check_parsed(header, props)


def test_trailing_bytes_after_properties_are_ignored():
    props = {P.DELIVERY_MODE: b"\x02"}
    header = build_header(props) + b"\x00\x01"
    check_parsed(header, props)


# --------------------------------------------------------------------------- splicing


def _assert_splice(props: dict, index: int, new: bytes | None, **build_kw):
    header = build_header(props, **build_kw)
    p = Properties(header)
    out = splice(header, p, index, new)
    expected_props = dict(props)
    if new is None:
        expected_props.pop(index, None)
    else:
        expected_props[index] = new
    # byte for byte what a client would have sent with that one property changed
    assert out == build_header(expected_props, **{k: v for k, v in build_kw.items() if k != "extra_flag_words"})
    q = check_parsed(out, expected_props)
    # every other property: identical raw span
    for i in range(14):
        if i != index and i in props:
            a, b = p.spans[i], q.spans[i]
            assert header[a[0] : a[1]] == out[b[0] : b[1]]
    assert out[:12] == header[:12]
    return out


REPLACEMENTS = {
    P.CONTENT_TYPE: ss("text/plain"),
    P.CONTENT_ENCODING: ss(""),
    P.HEADERS: pencode.field_table({"x-death": [{"count": 1, "reason": "rejected"}]}),
    P.DELIVERY_MODE: b"\x01",
    P.PRIORITY: b"\x00",
    P.CORRELATION_ID: ss("c" * 255),
    P.REPLY_TO: ss("amq.rabbitmq.reply-to.g1h2AA5yZXBseUAyNzYxNjU3OAAAB+UAAAAAZ6DDfg==.aGVsbG8="),
    P.EXPIRATION: ss("1"),
    P.MESSAGE_ID: ss("new"),
    P.TIMESTAMP: struct.pack(">Q", 2**64 - 1),
    P.TYPE: ss("t"),
    P.USER_ID: ss("admin"),
    P.APP_ID: ss("a"),
    P.CLUSTER_ID: ss(""),
}


@pytest.mark.parametrize("index", range(14), ids=NAMES)
def test_splice_replace_insert_remove_each_property_all_full(index):
    full = dict(SAMPLE)
    _assert_splice(full, index, REPLACEMENTS[index])  # replace
    _assert_splice(full, index, None)  # remove
    _assert_splice(full, index, SAMPLE[index])  # replace with identical bytes: header unchanged
    header = build_header(full)
    assert splice(header, Properties(header), index, SAMPLE[index]) == header


@pytest.mark.parametrize("index", range(14), ids=NAMES)
def test_splice_insert_into_every_other_property(index):
    others = {i: SAMPLE[i] for i in range(14) if i != index}
    _assert_splice(others, index, REPLACEMENTS[index])  # insert where absent
    _assert_splice(others, index, None)  # remove an absent property: no-op
    header = build_header(others)
    assert splice(header, Properties(header), index, None) == header


def test_splice_random_subsets():
    rng = random.Random(77)
    for _ in range(1500):
        props = {i: SAMPLE[i] for i in range(14) if rng.random() < 0.5}
        index = rng.randrange(14)
        new = rng.choice([None, REPLACEMENTS[index], SAMPLE[index]])
        _assert_splice(props, index, new, body_size=rng.choice([0, 5, 2**40]))


def test_splice_to_empty_and_from_empty():
    out = _assert_splice({P.REPLY_TO: ss("x")}, P.REPLY_TO, None)
    assert out == struct.pack(">HHQH", 60, 0, 42, 0)
    _assert_splice({}, P.HEADERS, pencode.field_table({"a": 1}))


def test_splice_drops_redundant_continuation_words_but_keeps_every_property():
    props = {P.CONTENT_TYPE: ss("t"), P.TIMESTAMP: SAMPLE[P.TIMESTAMP], P.CLUSTER_ID: ss("c")}
    header = build_header(props, extra_flag_words=2)
    out = splice(header, Properties(header), P.REPLY_TO, ss("r"))
    check_parsed(out, {**props, P.REPLY_TO: ss("r")})


def test_splice_reply_to_as_direct_reply_to_does():
    """What channel.publish does for amq.rabbitmq.reply-to: pamqp then reads the result and
    every other property keeps its raw bytes (timestamp in ms, headers with a double...)."""
    props = {i: SAMPLE[i] for i in range(13)}  # everything but cluster-id, so pamqp can decode it
    props[P.TYPE] = ss("type")
    props[P.APP_ID] = ss("app")
    header = build_header(props)
    p = Properties(header)
    new = P.encode_shortstr("amq.rabbitmq.reply-to.abc")
    out = splice(header, p, P.REPLY_TO, new)
    decoded = pheader.ContentHeader()
    decoded.unmarshal(out)
    assert decoded.properties.reply_to == "amq.rabbitmq.reply-to.abc"
    assert Properties(out).reply_to == "amq.rabbitmq.reply-to.abc"
    before = pheader.ContentHeader()
    before.unmarshal(header)
    for name in NAMES:
        if name != "reply_to":
            assert getattr(decoded.properties, name) == getattr(before.properties, name), name


def test_splice_headers_like_bcc_stripping():
    header = build_header({P.HEADERS: TRICKY_HEADERS, P.DELIVERY_MODE: b"\x02", P.TIMESTAMP: SAMPLE[P.TIMESTAMP]})
    p = Properties(header)
    out = splice(header, p, P.HEADERS, P.encode_table({"CC": ["a"]}))
    q = Properties(out)
    assert q.headers(out) == {"CC": ["a"]}
    assert q.delivery_mode == 2
    assert out[q.spans[P.TIMESTAMP][0] : q.spans[P.TIMESTAMP][1]] == SAMPLE[P.TIMESTAMP]


def test_encode_helpers():
    assert P.encode_shortstr("") == b"\x00"
    assert P.encode_shortstr("é") == b"\x02\xc3\xa9"
    assert P.encode_shortstr("\udcff") == b"\x01\xff"  # surrogateescape round trip
    assert P.encode_table({}) == b"\x00\x00\x00\x00"
    assert P.encode_table({"a": "b"}) == pencode.field_table({"a": "b"})


# --------------------------------------------------------------------------- malformed


@pytest.mark.parametrize("size", range(14))
def test_too_short_header(size):
    with pytest.raises(PropertyError):
        Properties(struct.pack(">HHQH", 60, 0, 1, 0)[:size])


def test_every_truncation_of_a_full_header_raises_property_error():
    """A property list cut anywhere is a PropertyError, never an IndexError/struct.error."""
    header = build_header(SAMPLE)
    Properties(header)
    for cut in range(14, len(header)):
        with pytest.raises(PropertyError):
            Properties(header[:cut])


@pytest.mark.parametrize("index", range(14), ids=NAMES)
def test_truncation_inside_each_property(index):
    props = {index: SAMPLE[index]}
    header = build_header(props)
    for cut in range(14, len(header)):
        with pytest.raises(PropertyError):
            Properties(header[:cut])


def test_flags_announce_a_property_that_is_missing():
    for index in range(14):
        header = struct.pack(">HHQH", 60, 0, 0, 0x8000 >> index)  # flag set, no bytes follow
        with pytest.raises(PropertyError):
            Properties(header)


def test_truncated_continuation_flag_word():
    header = struct.pack(">HHQH", 60, 0, 0, 0x0001)  # "another flag word follows", but none does
    with pytest.raises(PropertyError):
        Properties(header)
    with pytest.raises(PropertyError):
        Properties(header + b"\x00")


def test_lengths_overrunning_the_header():
    with pytest.raises(PropertyError):
        Properties(build_header({P.CONTENT_TYPE: b"\x05abc"}))
    with pytest.raises(PropertyError):
        Properties(build_header({P.HEADERS: struct.pack(">I", 100) + b"\x00" * 10}))
    with pytest.raises(PropertyError):
        Properties(build_header({P.TIMESTAMP: b"\x00" * 7}))


# --------------------------------------------------------------------------- checked (publish)
# Properties.checked reads a property list as RabbitMQ decodes it on publish (every case below
# was checked against RabbitMQ 3.10: refused ones get 541 INTERNAL_ERROR, accepted ones are
# stored and delivered byte for byte).


def test_checked_agrees_with_lenient_reading_on_well_formed_headers():
    for props in ({}, SAMPLE, {P.DELIVERY_MODE: b"\x02"}, {P.HEADERS: TRICKY_HEADERS, P.USER_ID: ss("u")}):
        header = build_header(props)
        strict, lenient = Properties.checked(header), Properties(header)
        assert strict.spans == lenient.spans and strict.flags == lenient.flags
        assert (strict.delivery_mode, strict.priority, strict.reply_to, strict.expiration,
                strict.user_id) == (lenient.delivery_mode, lenient.priority, lenient.reply_to,
                                    lenient.expiration, lenient.user_id)


@pytest.mark.parametrize("flags, rest", [
    (0x0002, b""),  # the reserved bit: ignored
    (0x0001, b""),  # "another flag word follows" with none: RabbitMQ reads one word only
    (0x1003, b"\x02"),
])
def test_checked_ignores_the_low_two_flag_bits(flags, rest):
    p = Properties.checked(struct.pack(">HHQH", 60, 0, 1, flags) + rest)
    assert p.flags == flags & 0xFFFC


@pytest.mark.parametrize("header", [
    struct.pack(">HHQ", 60, 0, 1),  # no flag word
    struct.pack(">HHQ", 60, 0, 1) + b"\x00",
    struct.pack(">HHQH", 60, 0, 1, 0x0001) + b"\x00\x00",  # a second flag word: trailing bytes
    struct.pack(">HHQH", 60, 0, 1, 0) + b"junk",
    struct.pack(">HHQH", 60, 0, 1, 0x8000) + b"\x09ab",
    struct.pack(">HHQH", 60, 0, 1, 0x8000),
    struct.pack(">HHQH", 60, 0, 1, 0x0040) + b"\x00" * 7,
    struct.pack(">HHQH", 60, 0, 1, 0x2000) + table_raw([("k", b"Z", b"\x00")]),
    struct.pack(">HHQH", 60, 0, 1, 0x2000) + table_raw([("k", b"d", struct.pack(">d", float("nan")))]),
    struct.pack(">HHQH", 60, 0, 1, 0x2000) + struct.pack(">I", 3) + b"\x01kS\x00\x00\x00\x01a",
    struct.pack(">HHQH", 60, 0, 1, 0x2000) + struct.pack(">I", 0) + b"zz",
])
def test_checked_refuses_what_rabbitmq_cannot_decode(header):
    with pytest.raises(PropertyError):
        Properties.checked(header)


def test_checked_accepts_odd_but_valid_headers():
    deep = struct.pack(">I", 0)
    for _ in range(3000):
        body = b"\x01nF" + deep
        deep = struct.pack(">I", len(body)) + body
    for table in (struct.pack(">I", 4) + b"\x02\xff\xfeV",  # a key that is not UTF-8
                  table_raw([("k", b"T", b"\xff" * 8)]), deep,
                  table_raw([("CC", b"A", struct.pack(">I", 60000) + b"V" * 60000)])):
        header = build_header({P.HEADERS: table, P.DELIVERY_MODE: b"\x09"})
        p = Properties.checked(header)
        assert p.delivery_mode == 9  # checked by the channel (406), not here
        assert header[p.spans[P.HEADERS][0] : p.spans[P.HEADERS][1]] == table


def test_strip_header_removes_bcc_byte_for_byte():
    odd = ("odd", b"T", b"\xff" * 8)
    header = build_header({P.HEADERS: table_raw([("a", b"l", struct.pack(">q", 1)), ("BCC", b"A", struct.pack(">I", 0)), odd]),
                           P.DELIVERY_MODE: b"\x02"})
    out = P.strip_header(header, Properties.checked(header), b"BCC")
    assert out == build_header({P.HEADERS: table_raw([("a", b"l", struct.pack(">q", 1)), odd]), P.DELIVERY_MODE: b"\x02"})
    assert P.strip_header(out, Properties.checked(out), b"BCC") is None
