"""The permission rules (amqp_broker/access.py) without a connection: how a pattern matches a
name, the texts of the refusals, the compound checks of declares and bindings, and the
per-connection memory of allowed checks. Each expectation was seen on RabbitMQ 3.10 (see
tests/test_permissions_matrix.py, which runs the same rules against it)."""
from __future__ import annotations

import pytest

from amqp_broker import errors
from amqp_broker.access import (CONFIGURE, EXCHANGE, MAX_REMEMBERED, QUEUE, READ, WRITE, Access, check_vhost,
                                named_exchange)
from amqp_broker.errors import AMQPError
from amqp_broker.permissions import Permissions


def access(configure="^c", write="^w", read="^r", vhost="v", user="u") -> tuple[Access, Permissions]:
    permissions = Permissions()
    permissions.set(user, vhost, configure, write, read)
    return Access(permissions, vhost, user), permissions


def refusal(call, *args) -> AMQPError:
    with pytest.raises(AMQPError) as info:
        call(*args)
    return info.value


def test_patterns_are_searched_not_anchored():
    acc, _ = access(configure="c", write="q$", read="^r")
    assert acc.allowed(QUEUE, "abc", CONFIGURE)  # re:run finds "c" anywhere
    assert acc.allowed(QUEUE, "cq", WRITE) and not acc.allowed(QUEUE, "cqz", WRITE)
    assert acc.allowed(QUEUE, "rq", READ) and not acc.allowed(QUEUE, "qr", READ)


def test_empty_pattern_allows_nothing_named():
    acc, _ = access(configure="", write="", read="")
    for permission in (CONFIGURE, WRITE, READ):
        assert not acc.allowed(QUEUE, "q", permission)
        assert not acc.allowed(EXCHANGE, "", permission)  # the default exchange is amq.default


def test_default_exchange_is_checked_as_amq_default():
    acc, _ = access(write=r"^amq\.default$")
    assert acc.allowed(EXCHANGE, "", WRITE)
    denied, _ = access(write="^w")
    exc = refusal(denied.check_publish, "")
    assert exc.code == errors.ACCESS_REFUSED
    assert exc.explanation == "access to exchange 'amq.default' in vhost 'v' refused for user 'u'"


def test_refusal_text_names_kind_name_vhost_and_user():
    acc, _ = access(vhost="/", user="bob")
    exc = refusal(acc.check, QUEUE, "xq", CONFIGURE)
    assert (exc.code, exc.explanation) == (403, "access to queue 'xq' in vhost '/' refused for user 'bob'")
    assert errors.reply_text(exc.code, exc.explanation).startswith("ACCESS_REFUSED - access to queue")


def test_no_permission_entry_refuses_everything():
    permissions = Permissions()
    acc = Access(permissions, "v", "u")
    assert not any(acc.allowed(kind, "name", p) for kind in (QUEUE, EXCHANGE) for p in (CONFIGURE, WRITE, READ))


def test_may_enter_follows_the_permission_entry():
    acc, permissions = access()
    assert acc.may_enter
    permissions.delete("v", "u")
    assert not acc.may_enter


def test_vhost_access_needs_a_permission_entry():
    permissions = Permissions()
    permissions.set("u", "v", "", "", "")  # any entry, even one allowing nothing
    check_vhost(permissions, "v", "u")
    exc = refusal(check_vhost, permissions, "/", "u")
    assert (exc.code, exc.explanation) == (errors.NOT_ALLOWED, "access to vhost '/' refused for user 'u'")


def test_queue_declare_with_dead_letter_exchange_needs_read_and_write_too():
    acc, _ = access(configure="^c", write="^w", read="^cr")
    acc.check_queue_declare("cq", None)
    acc.check_queue_declare("crq", "wx")
    assert refusal(acc.check_queue_declare, "cq", "wx").explanation.startswith("access to queue 'cq'")
    assert refusal(acc.check_queue_declare, "crq", "xx").explanation.startswith("access to exchange 'xx'")


def test_exchange_declare_with_alternate_exchange_needs_read_and_write_too():
    acc, _ = access(configure="^c", write="^w", read="^cr")
    acc.check_exchange_declare("cx", None)
    acc.check_exchange_declare("crx", "wx")
    assert refusal(acc.check_exchange_declare, "cx", "wx").explanation.startswith("access to exchange 'cx'")
    assert refusal(acc.check_exchange_declare, "crx", "xx").explanation.startswith("access to exchange 'xx'")


def test_binding_checks_write_on_destination_first_then_read_on_source():
    acc, _ = access()
    acc.check_binding("rx", "wq", True)
    acc.check_binding("rx", "wx", False)
    assert refusal(acc.check_binding, "xx", "xq", True).explanation.startswith("access to queue 'xq'")
    assert refusal(acc.check_binding, "xx", "wq", True).explanation.startswith("access to exchange 'xx'")
    assert refusal(acc.check_binding, "rx", "xx", False).explanation.startswith("access to exchange 'xx'")


def test_binding_to_or_from_the_default_exchange_leaves_the_refusal_to_the_binding():
    acc, _ = access()
    acc.check_binding("", "wq", True)  # RabbitMQ: "operation not permitted on the default exchange"
    exc = refusal(acc.check_binding, "", "xq", True)  # but the write check comes first
    assert exc.explanation.startswith("access to queue 'xq'")
    exc = refusal(acc.check_binding, "rx", "", False)
    assert exc.explanation.startswith("access to exchange 'amq.default'")


def test_allowed_checks_are_remembered_and_publish_marks_the_exchange():
    acc, _ = access()
    assert "wx" not in acc.publishable
    acc.check_publish("wx")
    assert "wx" in acc.publishable
    with pytest.raises(AMQPError):
        acc.check_publish("xx")
    assert "xx" not in acc.publishable


def test_a_changed_permission_applies_to_new_checks():
    acc, permissions = access()
    assert not acc.allowed(QUEUE, "zq", READ)
    permissions.set("u", "v", ".*", ".*", ".*")
    assert acc.allowed(QUEUE, "zq", READ)
    acc.check_publish("zx")
    permissions.delete("v", "u")
    assert not acc.allowed(QUEUE, "other", READ)
    assert "zx" not in acc.publishable  # the re-read dropped what was remembered


def test_memory_is_bounded():
    acc, _ = access(configure=".*")
    for n in range(MAX_REMEMBERED + 10):
        acc.check(QUEUE, f"q{n}", CONFIGURE)
    assert acc.allowed(QUEUE, "q0", CONFIGURE)


@pytest.mark.parametrize("value, expected", [("dlx", "dlx"), (b"dlx", "dlx"), (5, None), (None, None)])
def test_named_exchange_takes_only_strings(value, expected):
    arguments = {} if value is None else {"x-dead-letter-exchange": value}
    assert named_exchange(arguments, "x-dead-letter-exchange") == expected
