"""Unit tests for amqp_broker.tables: the linear, iterative field-table decoder and the
structural checker used on every publish that carries headers.

Ordinary tables must decode to exactly what pamqp's decoder gives (the rest of the broker was
written against pamqp's values). The nasty cases are those pamqp cannot handle and RabbitMQ
takes: keys that are not UTF-8, timestamps beyond datetime's range, tables nested thousands
deep, arrays of 100,000+ elements. What RabbitMQ refuses (unknown type letters, lengths that
overrun, NaN/infinite floats) must be a TableError, from the decoder and the checker alike.
"""
from __future__ import annotations

import datetime as dt
import random
import struct
from decimal import Decimal

import pytest
from pamqp import decode as pdecode
from pamqp import encode as pencode

from amqp_broker import tables
from amqp_broker.tables import RawTimestamp, TableError

UTC = dt.timezone.utc


def ss(raw: bytes) -> bytes:
    return bytes((len(raw),)) + raw


def longstr(raw: bytes) -> bytes:
    return struct.pack(">I", len(raw)) + raw


def table(*entries: bytes, length: int | None = None) -> bytes:
    body = b"".join(entries)
    return struct.pack(">I", len(body) if length is None else length) + body


def entry(key: bytes, letter: bytes, raw: bytes = b"") -> bytes:
    return ss(key) + letter + raw


def array(*values: bytes) -> bytes:
    body = b"".join(values)
    return struct.pack(">I", len(body)) + body


def nested(depth: int, letter: bytes = b"F", inner: bytes | None = None) -> bytes:
    """A table holding a table holding a table... `depth` levels (or arrays, with b"A")."""
    inner = table() if inner is None else inner
    for _ in range(depth):
        inner = table(entry(b"n", b"F", inner)) if letter == b"F" else array(b"A" + inner)
    return inner


def decode(data: bytes, **kw):
    value, end = tables.decode_table(data, 0, **kw)
    assert end == len(data)
    return value


def check(data: bytes) -> None:
    tables.check_table(data, 4, len(data))


# --------------------------------------------------------------------------- same values as pamqp

ORDINARY = [
    {},
    {"a": "b"},
    {"s": "", "u": "ünïcødé", "long": "x" * 1000},
    {"b": -128, "b2": 127, "s": -32768, "u": 65535, "I": -(2**31), "i": 2**32 - 1,
     "l": -(2**63), "l2": 2**63 - 1, "zero": 0},
    {"t": True, "f": False},
    {"float": 1.5, "neg": -0.25},
    {"dec": Decimal("123.45"), "dec0": Decimal("7"), "decneg_exp": Decimal("0.001")},
    {"ts": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "epoch": dt.datetime(1970, 1, 1, tzinfo=UTC)},
    {"void": None},
    {"bin": bytearray(b"\x00\xff\x01")},
    {"nested": {"inner": {"deep": [1, "two", {"three": 3.0}, [None, True]]}}},
    {"arr": [], "arr2": [1, 2, 3], "arr3": ["x", {"y": "z"}, bytearray(b"q")]},
    {"x-match": "any", "CC": ["q1", "q2"], "BCC": ["q3"]},
    {"k" * 255: 1},
]


@pytest.mark.parametrize("value", ORDINARY, ids=range(len(ORDINARY)))
def test_ordinary_tables_decode_as_pamqp_does(value):
    data = pencode.field_table(value)
    ours = decode(data)
    theirs = pdecode.field_table(data)[1]
    assert ours == theirs


def _rand_value(rng: random.Random, depth: int):
    kind = rng.randrange(12 if depth < 4 else 10)
    if kind == 0:
        return rng.random() < 0.5
    if kind == 1:
        return rng.choice([0, 1, -1, 127, -128, 255, 32767, -32768, 65535, 2**31 - 1, -(2**31),
                           2**32 - 1, 2**40, -(2**63), 2**63 - 1, rng.randrange(-(2**63), 2**63)])
    if kind == 2:
        return rng.choice(["", "a", "é" * 3, "x" * rng.randrange(300), "k\x00v"])
    if kind == 3:
        return struct.unpack(">f", struct.pack(">f", rng.uniform(-1e6, 1e6)))[0]
    if kind == 4:
        return Decimal(rng.randrange(2**31)) * (Decimal(10) ** -rng.randrange(10))
    if kind == 5:
        return dt.datetime.fromtimestamp(rng.randrange(2**32), tz=UTC)
    if kind == 6:
        return None
    if kind == 7:
        return bytearray(rng.randbytes(rng.randrange(20)))
    if kind in (8, 9):
        return rng.choice(["any", "all", "q", ""])
    if kind == 10:
        return {f"k{i}": _rand_value(rng, depth + 1) for i in range(rng.randrange(4))}
    return [_rand_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def test_random_pamqp_tables_decode_as_pamqp_does():
    rng = random.Random(2024)
    for _ in range(500):
        value = {f"key-{i}-" + "é" * rng.randrange(3): _rand_value(rng, 0) for i in range(rng.randrange(8))}
        data = pencode.field_table(value)
        assert decode(data) == pdecode.field_table(data)[1]
        check(data)  # and the checker accepts them


def test_every_type_letter_hand_encoded_decodes_as_pamqp_does():
    data = table(
        entry(b"t", b"t", b"\x01"), entry(b"t2", b"t", b"\x02"), entry(b"tf", b"t", b"\x00"),
        entry(b"b", b"b", b"\xff"), entry(b"B", b"B", b"\xff"),
        entry(b"s", b"s", struct.pack(">h", -2)), entry(b"u", b"u", struct.pack(">H", 65535)),
        entry(b"I", b"I", struct.pack(">i", -5)), entry(b"i", b"i", struct.pack(">I", 2**32 - 1)),
        entry(b"l", b"l", struct.pack(">q", -(2**62))), entry(b"L", b"L", struct.pack(">Q", 2**62)),
        entry(b"f", b"f", struct.pack(">f", 1.25)), entry(b"d", b"d", struct.pack(">d", 0.1)),
        entry(b"D", b"D", b"\x02" + struct.pack(">I", 12345)),
        entry(b"D0", b"D", b"\x00" + struct.pack(">I", 0)),
        entry(b"S", b"S", longstr("é".encode())), entry(b"S8", b"S", longstr(b"\xe9t\xe9")),
        entry(b"x", b"x", longstr(b"\x00\xff")),
        entry(b"T", b"T", struct.pack(">Q", 1_700_000_000)),
        entry(b"Tms", b"T", struct.pack(">Q", 1_700_000_000_123)),  # milliseconds, as pamqp reads it
        entry(b"V", b"V"),
        entry(b"F", b"F", table(entry(b"a", b"S", longstr(b"b")))),
        entry(b"A", b"A", array(b"I" + struct.pack(">i", -1), b"d" + struct.pack(">d", 2.5), b"V")),
    )
    ours = decode(data)
    assert ours == pdecode.field_table(data)[1]
    assert ours["S8"] == b"\xe9t\xe9"  # a longstr that is not UTF-8 stays bytes (pamqp's choice)
    assert type(ours["x"]) is bytearray and ours["t2"] is True
    check(data)


def test_typed_keeps_letters_at_the_top_level_only():
    data = table(entry(b"a", b"I", struct.pack(">i", 5)), entry(b"b", b"l", struct.pack(">q", 5)),
                 entry(b"c", b"F", table(entry(b"d", b"b", b"\x01"))),
                 entry(b"e", b"A", array(b"s" + struct.pack(">h", 3))), entry(b"v", b"V"))
    assert decode(data, typed=True) == {"a": ("I", 5), "b": ("l", 5), "c": ("F", {"d": 1}),
                                        "e": ("A", [3]), "v": ("V", None)}


def test_decode_at_an_offset_and_table_body():
    data = pencode.field_table({"LOGIN": "guest", "PASSWORD": "pw"})
    value, end = tables.decode_table(b"junk" + data + b"trailer", 4)
    assert value == {"LOGIN": "guest", "PASSWORD": "pw"} and end == 4 + len(data)
    assert tables.decode_table_body(data[4:]) == {"LOGIN": "guest", "PASSWORD": "pw"}


def test_memoryview_input():
    data = pencode.field_table({"a": [1, 2, {"b": "c"}], "v": None})
    assert tables.decode_table(memoryview(data))[0] == {"a": [1, 2, {"b": "c"}], "v": None}
    tables.check_table(memoryview(data), 4, len(data))


# --------------------------------------------------------------------------- the nasty cases


def test_key_that_is_not_utf8_is_kept_with_surrogate_escapes():
    data = table(entry(b"\xff\xfe", b"V"), entry(b"ok", b"S", longstr(b"v")))
    with pytest.raises(Exception):
        pdecode.field_table(data)
    value = decode(data)
    assert value == {"\udcff\udcfe": None, "ok": "v"}
    key = next(iter(value))
    assert key.encode("utf-8", "surrogateescape") == b"\xff\xfe"
    check(data)


@pytest.mark.parametrize("raw", [2**64 - 1, 2**63 - 1, 2**63, 10**17])
def test_timestamps_beyond_datetime_are_raw_ints(raw):
    data = table(entry(b"k", b"T", struct.pack(">Q", raw)))
    with pytest.raises(Exception):
        pdecode.field_table(data)
    value = decode(data)["k"]
    assert isinstance(value, RawTimestamp) and value == raw
    assert decode(data, typed=True) == {"k": ("T", raw)}
    check(data)


@pytest.mark.parametrize("depth", [400, 3000, 15000])
@pytest.mark.parametrize("letter", [b"F", b"A"])
def test_deep_nesting_is_not_recursive(depth, letter):
    if letter == b"F":
        data = nested(depth)
    else:  # arrays holding arrays, in a table entry
        data = table(entry(b"n", b"A", nested(depth - 1, b"A")))
    if depth >= 3000:
        with pytest.raises(RecursionError):
            pdecode.field_table(data)
    value = decode(data)["n"]
    levels = 1
    while value:
        value = value["n"] if letter == b"F" else value[0]
        levels += 1
    assert levels == depth
    check(data)


class _Metered(bytes):
    """bytes that count the work done on them: one step per subscript, plus one per byte a
    slice copies. A slice is metered too, so copies of copies count (pamqp's re-slicing)."""

    def __new__(cls, data: bytes, meter: list[int]):
        self = super().__new__(cls, data)
        self.meter = meter
        return self

    def __getitem__(self, index):
        value = super().__getitem__(index)
        self.meter[0] += 1
        if isinstance(index, slice):
            self.meter[0] += len(value)
            return _Metered(value, self.meter)
        return value


def _work(fn, data: bytes) -> int:
    """The steps `fn(data)` takes on the buffer (counted, not timed: the count is the same on
    any machine, a duration is not)."""
    meter = [0]
    fn(_Metered(data, meter))
    return meter[0]


@pytest.mark.parametrize("letter", [b"V", b"t\x01", b"I\x00\x00\x00\x01", b"S\x00\x00\x00\x00"])
def test_huge_arrays_are_linear(letter):
    """120,000 elements (a frame's worth) decode and check with work linear in the size:
    pamqp re-slices the rest of the buffer per element (quadratic: seconds for this array).
    The work is counted (buffer subscripts and copied bytes), never timed."""
    def data(n):
        body = letter * n
        return table(entry(b"a", b"A", struct.pack(">I", len(body)) + body))

    small, big = data(15_000), data(120_000)
    value = decode(big)["a"]
    assert len(value) == 120_000
    for fn in (decode, check):
        w_small, w_big = _work(fn, small), _work(fn, big)
        assert w_big <= 2 * len(big), (fn.__name__, w_big, len(big))  # a few steps per byte
        assert w_big < 2 * 8 * w_small + 64, (fn.__name__, w_small, w_big)  # 8x data: not 64x work
    # the meter does see a quadratic decoder: pamqp's work grows ~64x for 8x the elements
    p_small, p_big = _work(pdecode.field_table, data(500)), _work(pdecode.field_table, data(4000))
    assert p_big > 30 * p_small, (p_small, p_big)


def test_runs_of_voids_in_arrays_mixed_with_values():
    body = b"V" * 5 + b"b\x01" + b"V" + b"b\x02" + b"V" * 3
    data = table(entry(b"a", b"A", struct.pack(">I", len(body)) + body))
    assert decode(data) == pdecode.field_table(data)[1] == {"a": [None] * 5 + [1, None, 2] + [None] * 3}
    check(data)


# --------------------------------------------------------------------------- refused, as RabbitMQ

MALFORMED = [
    ("unknown type letter", table(entry(b"k", b"Z", b"\x00"))),
    ("NUL type letter (pamqp takes it as void)", table(entry(b"k", b"\x00"))),
    ("unknown letter in an array", table(entry(b"k", b"A", array(b"U\x00\x01")))),
    ("unknown letter deep inside", nested(5, inner=table(entry(b"z", b"Q")))),
    ("key without a type", table(ss(b"k"))),
    ("key length past the table", table(b"\x05kV")),
    ("lone key length byte", table(entry(b"k", b"V") + b"\x05")),
    ("table length past the data", table(entry(b"k", b"V"), length=10)),
    ("entry past the table end", table(entry(b"k", b"S", longstr(b"a")), length=5) + b"\x00" * 8),
    ("longstr past the table", table(entry(b"k", b"S", struct.pack(">I", 100) + b"ab"))),
    ("binary past the table", table(entry(b"k", b"x", struct.pack(">I", 3)))),
    ("nested table past its parent", table(entry(b"k", b"F", struct.pack(">I", 50)))),
    ("array length past the table", table(entry(b"k", b"A", struct.pack(">I", 9) + b"V"))),
    ("value past the array", table(entry(b"k", b"A", struct.pack(">I", 2) + b"I\x00"))),
    ("truncated long", table(entry(b"k", b"l", b"\x00\x00"))),
    ("truncated bool", table(entry(b"k", b"t"))),
    ("truncated decimal", table(entry(b"k", b"D", b"\x02\x00"))),
    ("truncated length prefix", table(entry(b"k", b"S", b"\x00\x00"))),
    ("double NaN", table(entry(b"k", b"d", struct.pack(">d", float("nan"))))),
    ("double +inf", table(entry(b"k", b"d", struct.pack(">d", float("inf"))))),
    ("double -inf", table(entry(b"k", b"d", struct.pack(">d", float("-inf"))))),
    ("float NaN", table(entry(b"k", b"f", struct.pack(">f", float("nan"))))),
    ("float -inf in an array", table(entry(b"k", b"A", array(b"f" + struct.pack(">f", float("-inf")))))),
]


@pytest.mark.parametrize("data", [c[1] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_tables_are_refused_by_decoder_and_checker(data):
    with pytest.raises(TableError):
        tables.decode_table(data, 0)
    if len(data) >= 4 and 4 + struct.unpack(">I", data[:4])[0] <= len(data):
        with pytest.raises(TableError):
            tables.check_table(data, 4, 4 + struct.unpack(">I", data[:4])[0])


def test_table_error_is_a_value_error():
    assert issubclass(TableError, ValueError)


def test_largest_finite_floats_are_fine():
    data = table(entry(b"d", b"d", struct.pack(">d", 1.7976931348623157e308)),
                 entry(b"f", b"f", struct.pack(">f", 3.4028234663852886e38)),
                 entry(b"n", b"d", struct.pack(">d", -0.0)))
    assert decode(data) == pdecode.field_table(data)[1]
    check(data)


def test_checker_and_decoder_agree_on_mutated_tables():
    """Flipped bytes, truncations, lying lengths: the checker refuses exactly what the
    decoder refuses, and neither raises anything but TableError."""
    rng = random.Random(7)
    base = [pencode.field_table({f"k{i}": _rand_value(rng, 0) for i in range(rng.randrange(1, 6))})
            for _ in range(60)]
    base.append(table(entry(b"a", b"d", struct.pack(">d", 1.0)), entry(b"b", b"A", array(b"V" * 9))))
    seen = {True: 0, False: 0}
    for _ in range(6000):
        data = bytearray(rng.choice(base))
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(4, len(data)) if len(data) > 4 else 0] = rng.randrange(256)
        data = bytes(data[: rng.randint(4, len(data))]) if rng.random() < 0.2 else bytes(data)
        end = 4 + struct.unpack(">I", data[:4])[0]
        if end > len(data):
            continue
        try:
            tables.decode_table(data, 0)
            decoded = True
        except TableError:
            decoded = False
        try:
            tables.check_table(data, 4, end)
            checked = True
        except TableError:
            checked = False
        assert decoded == checked, data.hex()
        seen[decoded] += 1
    assert seen[True] > 100 and seen[False] > 100, seen


# --------------------------------------------------------------------------- remove_key


def test_remove_key_keeps_every_other_byte():
    odd = entry(b"\xff", b"T", b"\xff" * 8)
    bcc = entry(b"BCC", b"A", array(b"S" + longstr(b"q")))
    data = table(entry(b"a", b"l", struct.pack(">q", 1)), bcc, odd, bcc, entry(b"z", b"V"))
    out = tables.remove_key(data, b"BCC")
    assert out == table(entry(b"a", b"l", struct.pack(">q", 1)), odd, entry(b"z", b"V"))
    assert tables.remove_key(out, b"BCC") is None
    assert tables.remove_key(table(), b"BCC") is None
    assert tables.remove_key(table(bcc), b"BCC") == table()


# --------------------------------------------------------------------------- encoding


@pytest.mark.parametrize("value", ORDINARY, ids=range(len(ORDINARY)))
def test_encode_ordinary_tables_as_pamqp_does(value):
    if any(len(k.encode()) > 128 for k in value):
        # pamqp cuts keys to 128 bytes (with a warning); a shortstr key may hold 255
        assert decode(tables.encode_table(value)) == value
        return
    assert tables.encode_table(value) == pencode.field_table(value)


def test_encode_random_tables_as_pamqp_does_and_round_trips():
    rng = random.Random(5)
    for _ in range(300):
        value = {f"k{i}": _rand_value(rng, 0) for i in range(rng.randrange(6))}
        data = tables.encode_table(value)
        assert data == pencode.field_table(value)
        assert decode(data) == pdecode.field_table(data)[1]


def test_encode_what_pamqp_cannot():
    deep = decode(nested(5000))
    assert tables.encode_table(deep) == nested(5000)
    odd = {"\udcff\udcfe": None, "ts": RawTimestamp(2**64 - 1), "big": 2**64 - 1,
           "latin1": b"\xe9t\xe9", "dec": Decimal(2**32 - 1) * (Decimal(10) ** -2)}
    data = tables.encode_table(odd)
    assert decode(data) == odd
    assert data[4:8] == b"\x03big" and b"\x02\xff\xfeV" in data
    with pytest.raises(TypeError):
        tables.encode_table({"k": object()})
    assert tables.encode_array([None, [1]]) == pencode.field_array([None, [1]])


@pytest.mark.parametrize("value,letter,name", [
    (None, "V", "void"), (True, "t", "bool"), (1, "I", "signedint"), (2**31, "l", "long"),
    (-(2**31) - 1, "l", "long"), (1.5, "d", "double"), ("s", "S", "longstr"),
    (b"\xff", "S", "longstr"), (bytearray(b"x"), "x", "binary"), (Decimal("1"), "D", "decimal"),
    (dt.datetime(2020, 1, 1, tzinfo=UTC), "T", "timestamp"), (RawTimestamp(5), "T", "timestamp"),
    ({}, "F", "table"), ([], "A", "array"), ((), "A", "array"), (object(), None, "object"),
])
def test_type_letter_and_field_type(value, letter, name):
    assert tables.type_letter(value) == letter
    assert tables.field_type(value) == name
