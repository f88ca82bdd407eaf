"""Unit tests for the x-delayed-message exchange: the pure exchange type (exchanges/delayed.py),
reading and rewriting the x-delay header and the holding service (amqp_broker/delayed.py),
and the stores' delayed_messages rows.

Headers are built by hand (any field type letter, byte for byte) because what matters is
which AMQP types the plugin reads and what bytes the delivered header has.
"""
from __future__ import annotations

import struct

import pytest

from amqp_broker.args import Arguments
from amqp_broker import errors
from amqp_broker.delayed import MAX_DELAY, DelayedDelivery, delay_of, swap_delay_header
from amqp_broker.exchanges import (
    EXCHANGE_TYPES,
    BindingError,
    DelayedMessageExchange,
    DirectExchange,
    ExchangeArgumentError,
    FanoutExchange,
    HeadersExchange,
    TopicExchange,
    make_exchange,
)
from amqp_broker.message import Message
from amqp_broker.properties import HEADERS, Properties
from amqp_broker.storage import MemoryStore
from amqp_broker.storage.sqlite import SQLiteStore
from amqp_broker.vhost import VHost

XD = "x-delayed-message"


# --------------------------------------------------------------------------------------------
# the exchange type


def test_registered_and_flagged():
    assert EXCHANGE_TYPES[XD] is DelayedMessageExchange
    assert DelayedMessageExchange.type_name == XD
    assert DelayedMessageExchange.delayed is True
    for cls in (DirectExchange, FanoutExchange, TopicExchange, HeadersExchange):
        assert getattr(cls, "delayed", False) is False


@pytest.mark.parametrize("xtype, inner", [
    ("direct", DirectExchange), ("fanout", FanoutExchange), ("topic", TopicExchange),
    ("headers", HeadersExchange), (b"topic", TopicExchange), (bytearray(b"fanout"), FanoutExchange),
])
def test_inner_type(xtype, inner):
    x = make_exchange(XD, "d", durable=True, auto_delete=True, internal=False,
                      arguments={"x-delayed-type": xtype, "alternate-exchange": "ae"})
    assert isinstance(x, DelayedMessageExchange)
    assert type(x.inner) is inner
    assert (x.name, x.durable, x.auto_delete, x.internal) == ("d", True, True, False)
    assert x.arguments == {"x-delayed-type": xtype, "alternate-exchange": "ae"}
    assert x.uses_headers is (inner is HeadersExchange)


MUST_EXIST = "Invalid argument, 'x-delayed-type' must be an existing exchange type"


@pytest.mark.parametrize("arguments, code, text", [
    (None, 406, MUST_EXIST),
    ({}, 406, MUST_EXIST),
    ({"x-delayed-type": 1}, 406, MUST_EXIST),
    ({"x-delayed-type": None}, 406, MUST_EXIST),
    ({"x-delayed-type": ["direct"]}, 406, MUST_EXIST),
    ({"x-delayed-type": XD}, 406, "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'"),
    ({"x-delayed-type": XD.encode()}, 406, "Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'"),
    ({"x-delayed-type": "x-consistent-hash"}, 503, "unknown exchange type 'x-consistent-hash'"),
    ({"x-delayed-type": ""}, 503, "unknown exchange type ''"),
    ({"x-delayed-type": "DIRECT"}, 503, "unknown exchange type 'DIRECT'"),
])
def test_validate(arguments, code, text):
    with pytest.raises(ExchangeArgumentError) as info:
        make_exchange(XD, "d", arguments=arguments)
    assert (info.value.code, str(info.value)) == (code, text)


def test_vhost_declare_maps_the_error():
    vhost = VHost("/")
    with pytest.raises(errors.AMQPError) as info:
        vhost.declare_exchange("d", XD, False, False, False, False, Arguments.from_plain({"x-delayed-type": "nope"}))
    assert (info.value.code, info.value.explanation) == (503, "unknown exchange type 'nope'")
    assert info.value.hard
    with pytest.raises(errors.AMQPError) as info:
        vhost.declare_exchange("d", XD, False, False, False, False, Arguments())
    assert (info.value.code, info.value.explanation) == (406, MUST_EXIST)
    assert not info.value.hard
    assert "d" not in vhost.exchanges


def test_bindings_and_routing_are_the_inner_types():
    x = make_exchange(XD, "d", arguments={"x-delayed-type": "topic"})
    assert not x.has_bindings()
    assert x.bind("q1", "a.*", None) is True
    assert x.bind("q1", "a.*", None) is False
    assert x.bind("q2", "#", {"k": 1}) is True
    assert sorted(x.route("a.b")) == ["q1", "q2"]
    assert list(x.route("b")) == ["q2"]
    assert x.bindings() == [("q1", "a.*", {}), ("q2", "#", {"k": 1})]
    assert x.has_binding("q2", "#", {"k": 1}) and not x.has_binding("q2", "#", None)
    assert x.has_destination("q1")
    assert x.unbind("q1", "a.*", None) is True
    assert not x.has_destination("q1")
    assert x.unbind_destination("q2") == 1
    assert not x.has_bindings() and list(x.route("a.b")) == []
    assert "topic" in repr(x)


def test_headers_inner_validates_bindings():
    x = make_exchange(XD, "d", arguments={"x-delayed-type": "headers"})
    with pytest.raises(BindingError):
        x.validate_binding("", {"x-match": "some"})
    x.bind("q", "", {"x-match": "any", "a": 1})
    assert list(x.route("", {"a": 1})) == ["q"]
    assert list(x.route("", {"a": 2})) == []


# --------------------------------------------------------------------------------------------
# the x-delay header


def ss(text: bytes) -> bytes:
    return bytes([len(text)]) + text


def table(*entries: tuple[bytes, bytes, bytes]) -> bytes:
    body = b"".join(ss(k) + letter + raw for k, letter, raw in entries)
    return struct.pack(">I", len(body)) + body


def content_header(headers: bytes | None, *, app_id: bytes | None = None, body_size: int = 1) -> bytes:
    flags = 0
    props = b""
    if headers is not None:
        flags |= 0x2000
        props += headers
    if app_id is not None:
        flags |= 0x0008
        props += ss(app_id)
    return struct.pack(">HHQH", 60, 0, body_size, flags) + props


def msg_with(*entries, **kw) -> Message:
    return Message("x", "k", content_header(table(*entries), **kw), b"m")


def x_delay(letter: bytes, raw: bytes) -> tuple[bytes, bytes, bytes]:
    return (b"x-delay", letter, raw)


@pytest.mark.parametrize("letter, raw, expected", [
    (b"b", struct.pack(">b", 100), 100),
    (b"b", struct.pack(">b", -100), None),
    (b"B", struct.pack(">B", 255), 255),
    (b"s", struct.pack(">h", 3000), 3000),
    (b"u", struct.pack(">H", 65535), 65535),
    (b"I", struct.pack(">i", 1), 1),
    (b"I", struct.pack(">i", 0), None),
    (b"I", struct.pack(">i", -1), None),
    (b"i", struct.pack(">I", MAX_DELAY), MAX_DELAY),
    (b"l", struct.pack(">q", MAX_DELAY), MAX_DELAY),
    (b"l", struct.pack(">q", MAX_DELAY + 1), None),  # beyond Erlang's longest timer: at once
    (b"L", struct.pack(">Q", 500), 500),
    (b"d", struct.pack(">d", 1.999), 1),
    (b"d", struct.pack(">d", 0.999), None),
    (b"d", struct.pack(">d", -5.5), None),
    (b"f", struct.pack(">f", 2500.75), 2500),
    (b"S", struct.pack(">I", 4) + b"1000", 1000),
    (b"S", struct.pack(">I", 5) + b"+1000", 1000),
    (b"S", struct.pack(">I", 5) + b"-1000", None),
    (b"S", struct.pack(">I", 6) + b"001000", 1000),
    (b"S", struct.pack(">I", 10) + b"4294967296", None),
    (b"S", struct.pack(">I", 60) + b"9" * 60, None),
    (b"S", struct.pack(">I", 60) + b"0" * 57 + b"100", 100),
    (b"x", struct.pack(">I", 2) + b"50", 50),
    (b"D", b"\x00" + struct.pack(">I", 100), None),
    (b"T", struct.pack(">Q", 100), None),
    (b"t", b"\x01", None),
    (b"V", b"", None),
    (b"F", table((b"a", b"I", struct.pack(">i", 5))), None),
    (b"A", struct.pack(">I", 5) + b"I" + struct.pack(">i", 100), None),
])
def test_delay_of_field_types(letter, raw, expected):
    assert delay_of(msg_with((b"a", b"S", struct.pack(">I", 1) + b"z"), x_delay(letter, raw))) == expected


@pytest.mark.parametrize("text", [b"", b"abc", b"10ms", b" 10", b"10 ", b"1_000", b"1.5", b"+", b"\xd9\xa1"])
def test_delay_of_string_that_is_not_an_integer_is_a_channel_crash(text):
    m = msg_with(x_delay(b"S", struct.pack(">I", len(text)) + text))
    with pytest.raises(errors.InternalError):
        delay_of(m)


def test_delay_of_without_headers_or_x_delay():
    assert delay_of(Message("x", "k", content_header(None), b"m")) is None
    assert delay_of(Message("x", "k", struct.pack(">HHQH", 60, 0, 1, 0), b"m")) is None
    assert delay_of(msg_with((b"x-delayed", b"I", struct.pack(">i", 100)))) is None
    assert delay_of(msg_with()) is None
    # the key's bytes inside a value are not a header
    value = b"\x07x-delayI\x00\x00\x00\x64"
    assert delay_of(msg_with((b"v", b"S", struct.pack(">I", len(value)) + value))) is None
    # nor inside a nested table
    assert delay_of(msg_with((b"n", b"F", table(x_delay(b"I", struct.pack(">i", 100)))))) is None


def test_delay_of_first_entry_wins():
    """table_lookup/2 is lists:keysearch: the first x-delay counts."""
    m = msg_with(x_delay(b"I", struct.pack(">i", 0)), x_delay(b"I", struct.pack(">i", 500)))
    assert delay_of(m) is None
    m = msg_with(x_delay(b"I", struct.pack(">i", 500)), x_delay(b"I", struct.pack(">i", 0)))
    assert delay_of(m) == 500


def _headers_raw(header: bytes) -> bytes:
    span = Properties(header).spans[HEADERS]
    return header[span[0] : span[1]]


def test_swap_negates_as_signedint_and_sorts():
    long_raw = struct.pack(">q", 7)
    ts_raw = struct.pack(">Q", 1700000000)
    original = content_header(table(
        (b"zeta", b"l", long_raw),
        x_delay(b"S", struct.pack(">I", 4) + b"1500"),
        (b"alpha", b"T", ts_raw),
        (b"B", b"t", b"\x01"),
    ), app_id=b"app")
    swapped = swap_delay_header(original)
    assert _headers_raw(swapped) == table(
        (b"B", b"t", b"\x01"),
        (b"alpha", b"T", ts_raw),
        x_delay(b"I", struct.pack(">i", -1500)),
        (b"zeta", b"l", long_raw),
    )
    props = Properties(swapped)
    assert swapped[props.spans[12][0] : props.spans[12][1]] == ss(b"app")  # app_id untouched
    assert delay_of(Message("x", "k", swapped, b"m")) is None  # never held twice


def test_swap_beyond_signedint_uses_long():
    swapped = swap_delay_header(content_header(table(x_delay(b"i", struct.pack(">I", MAX_DELAY)))))
    assert _headers_raw(swapped) == table(x_delay(b"l", struct.pack(">q", -MAX_DELAY)))
    swapped = swap_delay_header(content_header(table(x_delay(b"i", struct.pack(">I", 2 ** 31)))))
    assert _headers_raw(swapped) == table(x_delay(b"I", struct.pack(">i", -(2 ** 31))))


def test_swap_keeps_duplicates_in_order_and_replaces_the_first():
    swapped = swap_delay_header(content_header(table(
        (b"b", b"I", struct.pack(">i", 1)),
        x_delay(b"I", struct.pack(">i", 300)),
        (b"a", b"I", struct.pack(">i", 2)),
        x_delay(b"I", struct.pack(">i", 9)),
    )))
    assert _headers_raw(swapped) == table(
        (b"a", b"I", struct.pack(">i", 2)),
        (b"b", b"I", struct.pack(">i", 1)),
        x_delay(b"I", struct.pack(">i", -300)),
        x_delay(b"I", struct.pack(">i", 9)),
    )


def test_swap_without_x_delay_is_identity():
    header = content_header(table((b"b", b"I", struct.pack(">i", 1)), (b"a", b"I", struct.pack(">i", 2))))
    assert swap_delay_header(header) == header
    header = content_header(None, app_id=b"a")
    assert swap_delay_header(header) == header


# --------------------------------------------------------------------------------------------
# the service, on a vhost with a fake clock


class FakeExpirer:
    def __init__(self):
        self.scheduled = []

    def schedule(self, when_ms, callback, *args):
        self.scheduled.append((when_ms, callback, args))

    def fire_all(self):
        pending, self.scheduled = sorted(self.scheduled, key=lambda e: e[0]), []
        for _when, callback, args in pending:
            callback(*args)


class FakeBroker:
    def __init__(self, store=None):
        self.expirer = FakeExpirer()
        self.store = store if store is not None else MemoryStore()
        self.vhosts = {"/": VHost("/", self.store, self.expirer)}
        self.delayed = DelayedDelivery(self)


def _setup(broker, durable=True, name="dx"):
    vhost = broker.vhosts["/"]
    ex = vhost.declare_exchange(name, XD, False, durable, False, False, Arguments.from_plain({"x-delayed-type": "direct"}))
    queue, _, _ = vhost.declare_queue("q", False, True, False, False, Arguments(), None)
    vhost.bind(name, "q", True, "k", {}, None)
    return vhost, ex, queue


def test_hold_then_route_when_due():
    broker = FakeBroker()
    vhost, ex, queue = _setup(broker)
    m = msg_with(x_delay(b"I", struct.pack(">i", 250)))
    m.routing_key = "k"
    assert broker.delayed.hold(vhost, ex, m, 250) is False  # MemoryStore: nothing to wait for
    assert len(broker.delayed) == 1 and broker.delayed.count("/", "dx") == 1
    assert len(broker.store.delayed()) == 1
    assert queue.message_count == 0
    broker.expirer.fire_all()
    assert len(broker.delayed) == 0 and broker.store.delayed() == []
    assert queue.message_count == 1
    got = queue.ready[0].msg
    assert got.exchange == "dx" and got.routing_key == "k"
    assert _headers_raw(got.header) == table(x_delay(b"I", struct.pack(">i", -250)))


def test_transient_exchange_is_not_stored():
    broker = FakeBroker()
    vhost, ex, queue = _setup(broker, durable=False)
    m = msg_with(x_delay(b"I", struct.pack(">i", 250)))
    m.routing_key = "k"
    broker.delayed.hold(vhost, ex, m, 250)
    assert broker.store.delayed() == []
    broker.expirer.fire_all()
    assert queue.message_count == 1


def test_deleted_exchange_drops_and_forgets_the_row():
    broker = FakeBroker()
    vhost, ex, queue = _setup(broker)
    m = msg_with(x_delay(b"I", struct.pack(">i", 250)))
    m.routing_key = "k"
    broker.delayed.hold(vhost, ex, m, 250)
    vhost.delete_exchange("dx", False)
    _setup(broker)  # same name again, bound again
    broker.expirer.fire_all()
    assert queue.message_count == 0
    assert broker.store.delayed() == [] and len(broker.delayed) == 0


def test_load_schedules_at_the_stored_time_and_drops_orphans():
    store = MemoryStore()
    broker = FakeBroker(store)
    vhost, ex, queue = _setup(broker)
    header = content_header(table(x_delay(b"I", struct.pack(">i", 100))))
    store.add_delayed(None, "/", "dx", "k", 12345, header, b"m")
    store.add_delayed(None, "/", "gone", "k", 1, header, b"m")
    store.add_delayed(None, "/nope", "dx", "k", 1, header, b"m")
    broker.delayed.load(store.delayed())
    assert [when for when, _cb, _args in broker.expirer.scheduled] == [12345]
    assert [row[2] for row in store.delayed()] == ["dx"]
    broker.expirer.fire_all()
    assert queue.message_count == 1 and store.delayed() == []


def test_memory_store_rows():
    store = MemoryStore()
    a = store.add_delayed(None, "/", "x", "k", 200, b"h", b"b")
    b = store.add_delayed(None, "/", "x", "k", 100, b"h", b"b")
    c = store.add_delayed(10, "/", "y", "", 100, b"h", b"b")
    assert (a, b, c) == (1, 2, 10)
    assert store.add_delayed(None, "/", "x", "k", 1, b"h", b"b") == 11
    assert [row[0] for row in store.delayed()] == [11, 2, 10, 1]  # by due time, then id
    store.remove_delayed(2)
    store.remove_delayed(2)
    assert [row[0] for row in store.delayed()] == [11, 10, 1]


async def test_sqlite_store_rows(tmp_path):
    store = SQLiteStore(tmp_path)
    await store.open()
    assert store.delayed() == []
    ids = [store.add_delayed(None, "/", "x", "k", due, b"head", b"body%d" % due) for due in (300, 100, 200)]
    assert ids == [1, 2, 3]
    store.remove_delayed(3)
    await store.close()

    store = SQLiteStore(tmp_path)
    await store.open()
    assert store.delayed() == [(2, "/", "x", "k", 100, b"head", b"body100"),
                               (1, "/", "x", "k", 300, b"head", b"body300")]
    assert store.add_delayed(None, "/", "x", "k", 1, b"h", b"b") == 3  # above every loaded id
    store.remove_delayed(1)
    store.remove_delayed(2)
    await store.close()

    store = SQLiteStore(tmp_path)
    await store.open()
    assert [row[0] for row in store.delayed()] == [3]
    await store.close()
