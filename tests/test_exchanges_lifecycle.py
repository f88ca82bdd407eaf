"""Exchange declare / delete, auto-delete and internal exchanges, as RabbitMQ 3.x does them
(reference doc §6, §7).

Every expectation here was checked against a real RabbitMQ (AMQP_REFERENCE_URL); names carry
the `uid` suffix because the reference server is shared. Publishing channels use publisher
confirms so that "the message was routed (or not)" is settled before we basic_get.
"""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from helpers.pika_client import ch, conn  # noqa: F401 - pytest fixtures
from helpers.pika_client import cleanup  # noqa: F401 - pytest fixture
from helpers.pika_client import connect, drain, exchange_exists, expect_channel_error
from helpers.exchanges import declare_exchange, declare_queue
from helpers.wait import wait_until

pytestmark = pytest.mark.timeout(30)


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
    c = connect(amqp_url)
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
