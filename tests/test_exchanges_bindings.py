"""Exchange-to-exchange bindings, alternate exchanges, CC / BCC headers and mandatory, as
RabbitMQ 3.x does them (reference doc §6, §7).

Every expectation here was checked against a real RabbitMQ (AMQP_REFERENCE_URL); names carry
the `uid` suffix because the reference server is shared. Publishing channels use publisher
confirms so that "the message was routed (or not)" is settled before we basic_get.
"""

from __future__ import annotations

import time

import pika
import pika.exceptions
import pytest

from helpers.pika_client import ch, conn  # noqa: F401 - pytest fixtures
from helpers.pika_client import drain, expect_channel_error
from helpers.pika_client import cleanup  # noqa: F401 - pytest fixture
from helpers.exchanges import declare_exchange, declare_queue, get_one
from helpers.wait import HANG_GUARD

pytestmark = pytest.mark.timeout(30)


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
    deadline = time.monotonic() + HANG_GUARD
    while not returned and time.monotonic() < deadline:
        conn.process_data_events(0.05)
    conn.process_data_events(0.1)
    assert len(returned) == 1
    method, _props, body = returned[0]
    assert (method.reply_code, method.reply_text) == (312, "NO_ROUTE")
    assert method.exchange == ""
    assert method.routing_key == f"no-such-queue-{uid}"
    assert body == b"r1"
