"""Table-driven unit tests for x-argument validation (amqp_broker.queue_args), redeclare
equivalence (amqp_broker.arguments) and AMQP error objects (amqp_broker.errors).

Expected texts are RabbitMQ 3.10's: rabbit_amqqueue:declare_args/0 checkers rendered with
~p ({value_negative,-1}, "expected integer, got longstr" with its double quotes,
{unacceptable_type,longstr}, routing_key_but_no_dlx_defined), and rabbit_misc's
assert_args_equivalence/4.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest

from amqp_broker import errors
from amqp_broker.arguments import (
    EXCHANGE_EQUIVALENT_ARGS,
    QUEUE_EQUIVALENT_ARGS,
    check_args,
    check_exchange_equivalence,
    check_queue_equivalence,
    describe_typed,
)
from amqp_broker.errors import AMQPError, reply_text
from amqp_broker.exchanges import make_exchange
from amqp_broker.queue_args import MAX_EXPIRY, parse_expiration, validate_queue_arguments

INT_LETTERS = "bBsuIil"  # every AMQP integer type RabbitMQ's parser knows
TYPE = {"b": "byte", "B": "unsignedbyte", "s": "short", "u": "unsignedshort", "I": "signedint",
        "i": "unsignedint", "l": "long", "t": "bool", "f": "float", "d": "double", "D": "decimal",
        "S": "longstr", "A": "array", "T": "timestamp", "F": "table", "V": "void", "x": "binary"}
# a value of each non-integer type
NON_INT = [("t", True), ("f", 1.5), ("d", 2.5), ("D", Decimal("1.5")), ("S", "10"), ("A", [1]),
           ("T", dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)), ("F", {"a": 1}), ("V", None),
           ("x", bytearray(b"10"))]
NON_LONGSTR = [("I", 1), ("l", 1), ("b", 1), ("t", True), ("d", 1.0), ("F", {}), ("A", []), ("V", None),
               ("x", bytearray(b"dlx")), ("T", dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))]


def invalid(key: str, error: str, name: str = "q", vhost: str = "/") -> str:
    return f"invalid arg '{key}' for queue '{name}' in vhost '{vhost}': {error}"


def validate(args: dict, name: str = "q", vhost: str = "/"):
    validate_queue_arguments(name, vhost, args)


def assert_invalid(args: dict, key: str, error: str):
    with pytest.raises(AMQPError) as info:
        validate(args)
    exc = info.value
    assert exc.code == 406 and not exc.hard
    assert exc.explanation == invalid(key, error)
    assert exc.text == "PRECONDITION_FAILED - " + invalid(key, error)


# --------------------------------------------------------------------------- valid values

VALID = [
    *[("x-expires", (letter, 1)) for letter in INT_LETTERS],
    ("x-expires", ("l", MAX_EXPIRY)),
    ("x-expires", ("I", 1800000)),
    *[("x-message-ttl", (letter, 0)) for letter in INT_LETTERS],
    ("x-message-ttl", ("l", MAX_EXPIRY)),
    ("x-message-ttl", ("I", 60000)),
    ("x-dead-letter-exchange", ("S", "dlx")),
    ("x-dead-letter-exchange", ("S", "")),
    *[(key, (letter, value)) for key in ("x-max-length", "x-max-length-bytes", "x-max-in-memory-length",
                                        "x-max-in-memory-bytes")
      for letter, value in (("b", 0), ("I", 10), ("l", 2**62), ("i", 2**32 - 1), ("u", 1), ("B", 255), ("s", 7))],
    ("x-max-priority", ("b", 0)),
    ("x-max-priority", ("b", 10)),
    ("x-max-priority", ("I", 255)),
    ("x-max-priority", ("u", 255)),
    ("x-overflow", ("S", "drop-head")),
    ("x-overflow", ("S", "reject-publish")),
    ("x-overflow", ("S", "reject-publish-dlx")),
    ("x-queue-mode", ("S", "default")),
    ("x-queue-mode", ("S", "lazy")),
    ("x-single-active-consumer", ("t", True)),
    ("x-single-active-consumer", ("t", False)),
    ("x-queue-type", ("S", "classic")),
    ("x-queue-type", ("S", "quorum")),
    ("x-queue-type", ("S", "stream")),
    # unknown and client-side arguments are ignored
    ("x-unknown", ("S", "whatever")),
    ("x-priority", ("S", "not checked here")),
    ("x-queue-master-locator", ("I", 5)),
    ("alternate-exchange", ("I", 1)),
]


@pytest.mark.parametrize("key,typed", VALID, ids=lambda v: str(v))
def test_valid_argument(key, typed):
    validate({key: typed})


def test_valid_combination():
    validate({
        "x-expires": ("I", 10_000), "x-message-ttl": ("l", 5), "x-dead-letter-exchange": ("S", "dlx"),
        "x-dead-letter-routing-key": ("S", "rk"), "x-max-length": ("I", 0), "x-max-length-bytes": ("l", 1),
        "x-max-priority": ("b", 5), "x-overflow": ("S", "reject-publish"), "x-queue-mode": ("S", "lazy"),
        "x-single-active-consumer": ("t", True), "x-queue-type": ("S", "classic"),
    })
    validate({})


# --------------------------------------------------------------------------- invalid values

INVALID = [
    # x-expires: integer, > 0, <= ten years
    ("x-expires", ("I", 0), "{value_zero,0}"),
    ("x-expires", ("l", 0), "{value_zero,0}"),
    ("x-expires", ("I", -1), "{value_negative,-1}"),
    ("x-expires", ("l", -(2**63)), "{value_negative,-9223372036854775808}"),
    ("x-expires", ("l", MAX_EXPIRY + 1), "{value_too_large,315360000001}"),
    *[("x-expires", typed, f'"expected integer, got {TYPE[typed[0]]}"') for typed in NON_INT],
    # x-message-ttl: integer, >= 0, <= ten years
    ("x-message-ttl", ("I", -1), "{value_negative,-1}"),
    ("x-message-ttl", ("b", -128), "{value_negative,-128}"),
    ("x-message-ttl", ("l", MAX_EXPIRY + 1), "{value_too_large,315360000001}"),
    ("x-message-ttl", ("l", 2**63 - 1), "{value_too_large,9223372036854775807}"),
    *[("x-message-ttl", typed, f'"expected integer, got {TYPE[typed[0]]}"') for typed in NON_INT],
    # x-max-*: non-negative integers
    *[(key, ("I", -1), "{value_negative,-1}")
      for key in ("x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes")],
    *[(key, ("l", -5), "{value_negative,-5}")
      for key in ("x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes")],
    *[(key, typed, f'"expected integer, got {TYPE[typed[0]]}"')
      for key in ("x-max-length", "x-max-length-bytes", "x-max-in-memory-length", "x-max-in-memory-bytes")
      for typed in NON_INT],
    # x-max-priority: 0..255
    ("x-max-priority", ("I", 256), "{max_value_exceeded,256}"),
    ("x-max-priority", ("l", 2**40), "{max_value_exceeded,1099511627776}"),
    ("x-max-priority", ("b", -1), "{value_negative,-1}"),
    *[("x-max-priority", typed, f'"expected integer, got {TYPE[typed[0]]}"') for typed in NON_INT],
    # x-overflow / x-queue-mode: longstr from a fixed set
    ("x-overflow", ("S", "foo"), "invalid_overflow"),
    ("x-overflow", ("S", ""), "invalid_overflow"),
    ("x-overflow", ("S", "Drop-Head"), "invalid_overflow"),
    ("x-overflow", ("S", b"\xff"), "invalid_overflow"),  # non-UTF-8 longstr (pamqp hands bytes)
    *[("x-overflow", typed, f"{{unacceptable_type,{TYPE[typed[0]]}}}") for typed in NON_LONGSTR],
    ("x-queue-mode", ("S", "eager"), "invalid_queue_mode"),
    ("x-queue-mode", ("S", "LAZY"), "invalid_queue_mode"),
    *[("x-queue-mode", typed, f"{{unacceptable_type,{TYPE[typed[0]]}}}") for typed in NON_LONGSTR],
    # x-single-active-consumer: bool only
    ("x-single-active-consumer", ("b", 1), "{unacceptable_type,byte}"),
    ("x-single-active-consumer", ("I", 1), "{unacceptable_type,signedint}"),
    ("x-single-active-consumer", ("S", "true"), "{unacceptable_type,longstr}"),
    ("x-single-active-consumer", ("V", None), "{unacceptable_type,void}"),
    # x-queue-type (3.10: rabbit_queue_type:discover/1 refuses the name)
    ("x-queue-type", ("S", "foo"), "\"unsupported queue type 'foo'\""),
    ("x-queue-type", ("S", "Classic"), "\"unsupported queue type 'Classic'\""),
    *[("x-queue-type", typed, f"{{unacceptable_type,{TYPE[typed[0]]}}}") for typed in NON_LONGSTR],
]


@pytest.mark.parametrize("key,typed,error", INVALID, ids=lambda v: str(v))
def test_invalid_argument(key, typed, error):
    assert_invalid({key: typed}, key, error)


def test_dead_letter_routing_key_needs_a_dlx():
    assert_invalid({"x-dead-letter-routing-key": ("S", "rk")}, "x-dead-letter-routing-key",
                   "routing_key_but_no_dlx_defined")
    validate({"x-dead-letter-routing-key": ("S", "rk"), "x-dead-letter-exchange": ("S", "")})
    validate({"x-dead-letter-routing-key": ("S", ""), "x-dead-letter-exchange": ("S", "dlx")})
    # a wrongly typed routing key is reported as such, DLX or not
    for args in ({}, {"x-dead-letter-exchange": ("S", "dlx")}):
        assert_invalid({**args, "x-dead-letter-routing-key": ("I", 1)}, "x-dead-letter-routing-key",
                       "{unacceptable_type,signedint}")
    # a wrongly typed DLX is reported first, in rabbit_channel's own words
    assert_dlx_type({"x-dead-letter-exchange": ("I", 1), "x-dead-letter-routing-key": ("S", "rk")}, "signedint")


def assert_dlx_type(args: dict, type_name: str):
    with pytest.raises(AMQPError) as info:
        validate(args)
    assert info.value.code == 406
    assert info.value.explanation == (
        f"invalid type '{type_name}' for arg 'x-dead-letter-exchange' in queue 'q' in vhost '/'"
    )


@pytest.mark.parametrize("typed", NON_LONGSTR, ids=lambda v: str(v))
def test_dead_letter_exchange_must_be_a_longstr(typed):
    """RabbitMQ 3.10 (verified on the reference): rabbit_channel checks the DLX type before
    the queue arguments, with `invalid type 'T' for arg ... in queue ...`."""
    assert_dlx_type({"x-dead-letter-exchange": typed, "x-max-length": ("I", -1)}, TYPE[typed[0]])


def test_first_failing_argument_in_rabbitmq_order_is_reported():
    args = {
        "x-queue-type": ("S", "foo"),
        "x-single-active-consumer": ("I", 1),
        "x-overflow": ("S", "bad"),
        "x-max-priority": ("I", 999),
        "x-max-length": ("I", -1),
        "x-message-ttl": ("I", -1),
        "x-expires": ("I", 0),
    }
    order = ["x-expires", "x-message-ttl", "x-max-length", "x-max-priority", "x-overflow",
             "x-single-active-consumer", "x-queue-type"]
    for key in order:
        with pytest.raises(AMQPError) as info:
            validate(args)
        assert info.value.explanation.startswith(f"invalid arg '{key}'")
        del args[key]
    validate(args)


def test_resource_name_and_vhost_in_text():
    with pytest.raises(AMQPError) as info:
        validate_queue_arguments("my queue é", "prod/eu", {"x-max-length": ("I", -3)})
    assert info.value.explanation == (
        "invalid arg 'x-max-length' for queue 'my queue é' in vhost 'prod/eu': {value_negative,-3}")


# --------------------------------------------------------------------------- message expiration


@pytest.mark.parametrize("text,value", [("0", 0), ("1", 1), ("60000", 60000), ("+5", 5), ("007", 7),
                                        (str(MAX_EXPIRY), MAX_EXPIRY), ("-0", 0)])
def test_parse_expiration_valid(text, value):
    assert parse_expiration(text) == value


@pytest.mark.parametrize("text,reason", [
    ("abc", "no_integer"),
    ("", "no_integer"),
    (" 5", "no_integer"),
    ("+", "no_integer"),
    ("-", "no_integer"),
    ("-5", "{value_negative,-5}"),
    (str(MAX_EXPIRY + 1), "{value_too_large,315360000001}"),
    ("5 ", '{leftover_string," "}'),
    ("10s", '{leftover_string,"s"}'),
    ("1.5", '{leftover_string,".5"}'),
    ("0x10", '{leftover_string,"x10"}'),
])
def test_parse_expiration_invalid(text, reason):
    with pytest.raises(AMQPError) as info:
        parse_expiration(text)
    assert info.value.code == 406
    assert info.value.explanation == f"invalid expiration '{text}': {reason}"


@pytest.mark.parametrize("text,reason", [
    ('5"', '{leftover_string,"\\""}'),
    ("5\\", '{leftover_string,"\\\\"}'),
])
def test_parse_expiration_leftover_is_erlang_quoted(text, reason):
    """~p prints a char list the way Erlang reads it back: '"' and '\\' are escaped."""
    with pytest.raises(AMQPError) as info:
        parse_expiration(text)
    assert info.value.explanation == f"invalid expiration '{text}': {reason}"


# --------------------------------------------------------------------------- equivalence


def fake_queue(name="q", durable=False, auto_delete=False, typed=None):
    return SimpleNamespace(name=name, durable=durable, auto_delete=auto_delete, typed_arguments=typed or {})


def fake_exchange(name="x", type_name="direct", durable=False, auto_delete=False, internal=False, typed=None):
    return SimpleNamespace(name=name, type_name=type_name, durable=durable, auto_delete=auto_delete,
                           internal=internal, typed_arguments=typed or {})


def inequivalent(key, received, current, kind="queue", name="q"):
    return f"inequivalent arg '{key}' for {kind} '{name}' in vhost '/': received {received} but current is {current}"


def test_equivalent_args_lists():
    assert QUEUE_EQUIVALENT_ARGS == (
        "x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key", "x-max-length",
        "x-max-length-bytes", "x-max-priority", "x-overflow", "x-queue-mode", "x-queue-version",
        "x-single-active-consumer", "x-queue-type", "x-queue-master-locator")
    assert EXCHANGE_EQUIVALENT_ARGS == ("alternate-exchange",)


EQUIVALENT = [
    ({}, {}),
    ({"x-message-ttl": ("I", 5)}, {"x-message-ttl": ("I", 5)}),
    # integers compare by class: signedint 5 == long 5 == byte 5 ...
    *[({"x-message-ttl": (a, 5)}, {"x-message-ttl": (b, 5)}) for a in INT_LETTERS for b in INT_LETTERS],
    ({"x-max-priority": ("f", 1.5)}, {"x-max-priority": ("d", 1.5)}),  # float class
    ({"x-dead-letter-exchange": ("S", "dlx")}, {"x-dead-letter-exchange": ("S", "dlx")}),
    ({"x-single-active-consumer": ("t", True)}, {"x-single-active-consumer": ("t", True)}),
    # arguments outside the compared list are ignored entirely
    ({"x-max-in-memory-length": ("I", 1)}, {"x-max-in-memory-length": ("I", 2)}),
    ({"x-custom": ("S", "a")}, {}),
    ({}, {"x-priority": ("I", 3)}),
]


@pytest.mark.parametrize("current,received", EQUIVALENT, ids=lambda v: str(v))
def test_equivalent(current, received):
    check_args("queue", "q", "/", QUEUE_EQUIVALENT_ARGS, current, received)
    check_queue_equivalence(fake_queue(typed=current), "/", False, False, received)


NOT_EQUIVALENT = [
    # both present: plain values (rabbit_misc:val/1 of the bare values)
    ({"x-message-ttl": ("l", 1000)}, {"x-message-ttl": ("I", 2000)}, "x-message-ttl", "'2000'", "'1000'"),
    ({"x-max-length": ("I", 1)}, {"x-max-length": ("S", "1")}, "x-max-length", "'1'", "'1'"),
    ({"x-dead-letter-exchange": ("S", "a")}, {"x-dead-letter-exchange": ("S", "b")},
     "x-dead-letter-exchange", "'b'", "'a'"),
    ({"x-single-active-consumer": ("t", True)}, {"x-single-active-consumer": ("t", False)},
     "x-single-active-consumer", "'false'", "'true'"),
    ({"x-expires": ("I", 5)}, {"x-expires": ("d", 5.5)}, "x-expires", "'5.5'", "'5'"),
    ({"x-queue-type": ("S", "classic")}, {"x-queue-type": ("S", "quorum")}, "x-queue-type", "'quorum'",
     "'classic'"),
    # one side missing: typed values, and 'none'
    ({}, {"x-message-ttl": ("I", 2000)}, "x-message-ttl", "the value '2000' of type 'signedint'", "none"),
    ({"x-message-ttl": ("l", 1000)}, {}, "x-message-ttl", "none", "the value '1000' of type 'long'"),
    ({}, {"x-dead-letter-exchange": ("S", "dlx")}, "x-dead-letter-exchange",
     "the value 'dlx' of type 'longstr'", "none"),
    ({"x-single-active-consumer": ("t", True)}, {}, "x-single-active-consumer", "none",
     "the value 'true' of type 'bool'"),
    ({}, {"x-queue-type": ("S", "quorum")}, "x-queue-type", "the value 'quorum' of type 'longstr'", "none"),
    ({}, {"x-queue-version": ("b", 2)}, "x-queue-version", "the value '2' of type 'byte'", "none"),
    ({}, {"x-queue-master-locator": ("S", "min-masters")}, "x-queue-master-locator",
     "the value 'min-masters' of type 'longstr'", "none"),
]


@pytest.mark.parametrize("current,received,key,rtext,ctext", NOT_EQUIVALENT, ids=lambda v: str(v))
def test_not_equivalent(current, received, key, rtext, ctext):
    with pytest.raises(AMQPError) as info:
        check_args("queue", "q", "/", QUEUE_EQUIVALENT_ARGS, current, received)
    assert info.value.code == 406
    assert info.value.explanation == inequivalent(key, rtext, ctext)
    with pytest.raises(AMQPError) as info:
        check_queue_equivalence(fake_queue(typed=current), "/", False, False, received)
    assert info.value.explanation == inequivalent(key, rtext, ctext)


@pytest.mark.parametrize("current,received", [
    ({}, {"x-queue-type": ("S", "classic")}),
    ({"x-queue-type": ("S", "classic")}, {}),
])
def test_absent_queue_type_is_equivalent_to_classic(current, received):
    """rabbit_misc:assert_field_equivalence/4 (since rabbitmq-common#341, in 3.8-3.13):

        assert_field_equivalence(undefined, {longstr, <<"classic">>}, _Name, <<"x-queue-type">>) -> ok;
        assert_field_equivalence({longstr, <<"classic">>}, undefined, _Name, <<"x-queue-type">>) -> ok;

    A classic queue declared without x-queue-type and redeclared with x-queue-type=classic
    (or the reverse) is not an error."""
    check_args("queue", "q", "/", QUEUE_EQUIVALENT_ARGS, current, received)
    check_queue_equivalence(fake_queue(typed=current), "/", False, False, received)


def test_first_differing_argument_in_list_order_is_reported():
    current = {"x-queue-type": ("S", "classic"), "x-max-length": ("I", 1), "x-expires": ("I", 1)}
    received = {"x-queue-type": ("S", "quorum"), "x-max-length": ("I", 2), "x-expires": ("I", 2)}
    with pytest.raises(AMQPError) as info:
        check_args("queue", "q", "/", QUEUE_EQUIVALENT_ARGS, current, received)
    assert info.value.explanation.startswith("inequivalent arg 'x-expires'")


def test_queue_flags_checked_before_arguments():
    q = fake_queue(durable=True, auto_delete=False, typed={"x-max-length": ("I", 1)})
    with pytest.raises(AMQPError) as info:
        check_queue_equivalence(q, "/", False, True, {"x-max-length": ("I", 2)})
    assert info.value.explanation == inequivalent("durable", "'false'", "'true'")
    with pytest.raises(AMQPError) as info:
        check_queue_equivalence(q, "/", True, True, {"x-max-length": ("I", 2)})
    assert info.value.explanation == inequivalent("auto_delete", "'true'", "'false'")
    with pytest.raises(AMQPError) as info:
        check_queue_equivalence(q, "/", True, False, {"x-max-length": ("I", 2)})
    assert info.value.explanation == inequivalent("x-max-length", "'2'", "'1'")
    check_queue_equivalence(q, "/", True, False, {"x-max-length": ("l", 1)})


def test_exchange_equivalence():
    ex = fake_exchange(type_name="topic", durable=True, typed={"alternate-exchange": ("S", "ae")})
    same = ("topic", True, False, False, {"alternate-exchange": ("S", "ae")})
    check_exchange_equivalence(ex, "/", *same)
    check_exchange_equivalence(ex, "/", "topic", True, False, False,
                               {"alternate-exchange": ("S", "ae"), "x-other": ("I", 1)})
    cases = [
        (("direct", True, False, False, {}), "type", "'direct'", "'topic'"),
        (("topic", False, False, False, {}), "durable", "'false'", "'true'"),
        (("topic", True, True, False, {}), "auto_delete", "'true'", "'false'"),
        (("topic", True, False, True, {}), "internal", "'true'", "'false'"),
        (("topic", True, False, False, {}), "alternate-exchange", "none", "the value 'ae' of type 'longstr'"),
        (("topic", True, False, False, {"alternate-exchange": ("S", "other")}), "alternate-exchange",
         "'other'", "'ae'"),
    ]
    for args, field, rtext, ctext in cases:
        with pytest.raises(AMQPError) as info:
            check_exchange_equivalence(ex, "/", *args)
        assert info.value.code == 406
        assert info.value.explanation == inequivalent(field, rtext, ctext, kind="exchange", name="x")
    bare = make_exchange("direct", "x")  # an exchange no typed arguments were recorded for
    check_exchange_equivalence(bare, "/", "direct", False, False, False, {})


def test_describe_typed():
    assert describe_typed(None) == "none"
    assert describe_typed(("I", 2000)) == "the value '2000' of type 'signedint'"
    assert describe_typed(("l", 1000)) == "the value '1000' of type 'long'"
    assert describe_typed(("S", "dlx")) == "the value 'dlx' of type 'longstr'"
    assert describe_typed(("t", True)) == "the value 'true' of type 'bool'"
    assert describe_typed(("t", False)) == "the value 'false' of type 'bool'"
    assert describe_typed(("d", 1.5)) == "the value '1.5' of type 'double'"
    assert describe_typed(("x", b"ab")) == "the value 'ab' of type 'binary'"
    assert describe_typed(("b", -3)) == "the value '-3' of type 'byte'"
    assert describe_typed(("u", 7)) == "the value '7' of type 'unsignedshort'"


# --------------------------------------------------------------------------- errors.py

SOFT = [311, 312, 313, 403, 404, 405, 406]
HARD = [320, 402, 501, 502, 503, 504, 505, 506, 530, 540, 541]


@pytest.mark.parametrize("code", SOFT)
def test_soft_codes(code):
    exc = AMQPError(code, "x")
    assert exc.hard is False


@pytest.mark.parametrize("code", HARD)
def test_hard_codes(code):
    assert AMQPError(code, "x").hard is True


def test_soft_and_hard_cover_every_named_error():
    assert set(errors.REPLY_NAMES) - {200} == set(SOFT) | set(HARD)
    assert errors.SOFT_CODES == frozenset(SOFT)


@pytest.mark.parametrize("code,name", [
    (311, "CONTENT_TOO_LARGE"), (312, "NO_ROUTE"), (313, "NO_CONSUMERS"), (320, "CONNECTION_FORCED"),
    (402, "INVALID_PATH"), (403, "ACCESS_REFUSED"), (404, "NOT_FOUND"), (405, "RESOURCE_LOCKED"),
    (406, "PRECONDITION_FAILED"), (501, "FRAME_ERROR"), (502, "SYNTAX_ERROR"), (503, "COMMAND_INVALID"),
    (504, "CHANNEL_ERROR"), (505, "UNEXPECTED_FRAME"), (506, "RESOURCE_ERROR"), (530, "NOT_ALLOWED"),
    (540, "NOT_IMPLEMENTED"), (541, "INTERNAL_ERROR"),
])
def test_reply_names(code, name):
    assert reply_text(code, "why") == f"{name} - why"


def test_reply_text_short_is_untouched():
    assert reply_text(404, "no queue 'q' in vhost '/'") == "NOT_FOUND - no queue 'q' in vhost '/'"
    assert reply_text(406, "") == "PRECONDITION_FAILED - "


@pytest.mark.parametrize("total", [254, 255])
def test_reply_text_up_to_255_bytes_untouched(total):
    prefix = "NOT_FOUND - "
    text = reply_text(404, "x" * (total - len(prefix)))
    assert len(text.encode()) == total and not text.endswith("...")


@pytest.mark.parametrize("total", [256, 257, 300, 1000, 100_000])
def test_reply_text_cut_to_252_bytes_plus_ellipsis(total):
    prefix = "PRECONDITION_FAILED - "
    explanation = "".join(chr(ord("a") + i % 26) for i in range(total - len(prefix)))
    text = reply_text(406, explanation)
    full = prefix + explanation
    assert text == full[:252] + "..."
    assert len(text.encode()) == 255


def test_reply_text_cut_never_splits_a_utf8_character():
    prefix = "NOT_FOUND - "
    for pad in range(4):
        explanation = "a" * pad + "é名😀" * 100
        text = reply_text(404, explanation)
        raw = text.encode("utf-8")  # must be valid UTF-8 (a shortstr clients decode)
        assert len(raw) <= 255 and text.endswith("...")
        assert (prefix + explanation).startswith(text[:-3])
        assert len(raw) >= 252  # at most a 3-byte partial character dropped before the "..."


def test_amqp_error_attributes():
    exc = AMQPError(404, "no queue 'q' in vhost '/'", 50, 10)
    assert (exc.code, exc.explanation, exc.class_id, exc.method_id) == (404, "no queue 'q' in vhost '/'", 50, 10)
    assert str(exc) == "no queue 'q' in vhost '/'"
    assert exc.text == "NOT_FOUND - no queue 'q' in vhost '/'"
    assert repr(exc) == "AMQPError(404, \"NOT_FOUND - no queue 'q' in vhost '/'\", 50, 10)"
    assert AMQPError(406, "x").class_id == 0 and AMQPError(406, "x").method_id == 0


def test_error_helpers():
    assert errors.resource("queue", "q", "/") == "queue 'q' in vhost '/'"
    e = errors.not_found("exchange", "x", "/")
    assert (e.code, e.text) == (404, "NOT_FOUND - no exchange 'x' in vhost '/'")
    e = errors.precondition("p")
    assert (e.code, e.text, e.hard) == (406, "PRECONDITION_FAILED - p", False)
    e = errors.access_refused("a")
    assert (e.code, e.text) == (403, "ACCESS_REFUSED - a")
    e = errors.resource_locked("q", "/")
    assert e.code == 405
    assert e.text == (
        "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'q' in vhost '/'. It could be "
        "originally declared on another connection or the exclusive property value does not match that of "
        "the original declaration.")
    assert len(e.text.encode()) <= 255
