"""Error conformance: the cases that must *not* be errors (missing objects deleted or unbound,
unknown consumer tags cancelled, equivalent redeclares, mandatory returns...). Recorded against
a real RabbitMQ 3.10 (AMQP_REFERENCE_URL set), through the raw client (helpers/raw.py).

In text templates `{u}` is the test's unique suffix. Every name is unique per test because the
reference server is shared.
"""

from __future__ import annotations

import socket

import pytest
from pamqp import commands as C

from helpers.errors import ctx  # noqa: F401 - pytest fixture
from helpers.errors import Ctx, scenario_get_one

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:This command is deprecated:DeprecationWarning"),
]


# --------------------------------------------------------------------------- no-error cases
def _no_error(c: Ctx, method, reply_cls, **fields):
    reply = c.conn.rpc(method, 1)
    assert isinstance(reply, reply_cls), (
        f"{reply.name} {getattr(reply, 'reply_code', '')} {getattr(reply, 'reply_text', '')}"
    )
    for k, v in fields.items():
        assert getattr(reply, k) == v, (k, getattr(reply, k), v)
    return reply


def test_delete_missing_queue_is_ok(ctx):
    _no_error(ctx, C.Queue.Delete(queue=f"q-{ctx.u}"), C.Queue.DeleteOk, message_count=0)


def test_delete_missing_queue_with_if_flags_is_ok(ctx):
    _no_error(ctx, C.Queue.Delete(queue=f"q-{ctx.u}", if_unused=True, if_empty=True),
              C.Queue.DeleteOk, message_count=0)


def test_delete_missing_exchange_is_ok(ctx):
    _no_error(ctx, C.Exchange.Delete(exchange=f"x-{ctx.u}"), C.Exchange.DeleteOk)


def test_unbind_missing_binding_is_ok(ctx):
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    _no_error(ctx, C.Queue.Unbind(queue=q, exchange="amq.direct", routing_key="nokey"),
              C.Queue.UnbindOk)


def test_unbind_missing_queue_is_ok(ctx):
    _no_error(ctx, C.Queue.Unbind(queue=f"q-{ctx.u}", exchange="amq.direct", routing_key="k"),
              C.Queue.UnbindOk)


def test_unbind_missing_exchange_is_ok(ctx):
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    _no_error(ctx, C.Queue.Unbind(queue=q, exchange=f"x-{ctx.u}", routing_key="k"),
              C.Queue.UnbindOk)


def test_exchange_unbind_missing_is_ok(ctx):
    _no_error(ctx, C.Exchange.Unbind(destination=f"x-{ctx.u}", source="amq.direct",
                                     routing_key="k"), C.Exchange.UnbindOk)
    _no_error(ctx, C.Exchange.Unbind(destination="amq.fanout", source="amq.direct",
                                     routing_key=f"nokey-{ctx.u}"), C.Exchange.UnbindOk)


def test_cancel_unknown_consumer_tag_is_ok(ctx):
    _no_error(ctx, C.Basic.Cancel(consumer_tag=f"nope-{ctx.u}"), C.Basic.CancelOk,
              consumer_tag=f"nope-{ctx.u}")


def test_ack_multiple_tag_zero_with_nothing_outstanding_is_ok(ctx):
    ctx.send(C.Basic.Ack(delivery_tag=0, multiple=True))
    _no_error(ctx, C.Queue.Declare(queue="", exclusive=True), C.Queue.DeclareOk)


def test_ack_multiple_tag_zero_acks_everything(ctx):
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    for i in range(3):
        ctx.conn.publish(1, b"m%d" % i, routing_key=q)
    tags = [scenario_get_one(ctx, q) for _ in range(3)]
    assert tags == [1, 2, 3]
    ctx.send(C.Basic.Ack(delivery_tag=0, multiple=True))
    ok = _no_error(ctx, C.Queue.Declare(queue=q, passive=True), C.Queue.DeclareOk)
    assert ok.message_count == 0
    # all three are gone: acking one of them again is an unknown tag
    ctx.send(C.Basic.Ack(delivery_tag=2))
    assert ctx.conn.expect_channel_close(1)[:2] == (
        406, "PRECONDITION_FAILED - unknown delivery tag 2"
    )


def test_recover_requeue_true_is_ok(ctx):
    _no_error(ctx, C.Basic.Recover(requeue=True), C.Basic.RecoverOk)


def test_redeclare_amq_direct_with_same_properties_is_ok(ctx):
    _no_error(ctx, C.Exchange.Declare(exchange="amq.direct", exchange_type="direct",
                                      durable=True), C.Exchange.DeclareOk)
    _no_error(ctx, C.Exchange.Declare(exchange="amq.direct", passive=True), C.Exchange.DeclareOk)


def test_passive_declare_ignores_other_fields(ctx):
    q = ctx.queue(f"q-{ctx.u}", auto_delete=True)
    _no_error(ctx, C.Queue.Declare(queue=q, passive=True, durable=True, exclusive=False,
                                   auto_delete=False, arguments={"x-message-ttl": 5}),
              C.Queue.DeclareOk, queue=q)
    x = ctx.exchange(f"x-{ctx.u}", "direct")
    _no_error(ctx, C.Exchange.Declare(exchange=x, passive=True, exchange_type="foo",
                                      durable=True), C.Exchange.DeclareOk)


def test_redeclare_with_uncompared_arguments_is_ok(ctx):
    q = ctx.queue(f"q-{ctx.u}", arguments={"x-foo": "a", "x-max-length": 10})
    _no_error(ctx, C.Queue.Declare(queue=q, arguments={"x-foo": "b", "x-max-length": 10,
                                                       "x-bar": 1}), C.Queue.DeclareOk)
    x = ctx.exchange(f"x-{ctx.u}", arguments={"x-foo": "a"})
    _no_error(ctx, C.Exchange.Declare(exchange=x, exchange_type="direct",
                                      arguments={"x-foo": "b"}), C.Exchange.DeclareOk)


def test_exchange_delete_if_unused_counts_only_source_bindings(ctx):
    src = ctx.exchange(f"x-{ctx.u}")
    dst = ctx.exchange(f"x2-{ctx.u}")
    ctx.ok(C.Exchange.Bind(destination=dst, source=src, routing_key="k"))
    _no_error(ctx, C.Exchange.Delete(exchange=dst, if_unused=True), C.Exchange.DeleteOk)


def test_unbind_on_other_connections_exclusive_queue_is_ok(ctx):
    q = ctx.queue(f"q-{ctx.u}", exclusive=True)
    other = ctx.new_conn()
    other.open_channel(1)
    reply = other.rpc(C.Queue.Unbind(queue=q, exchange="amq.direct", routing_key="k"), 1)
    assert isinstance(reply, C.Queue.UnbindOk), reply.name


def test_passive_declare_with_unknown_type_on_existing_exchange_is_ok(ctx):
    _no_error(ctx, C.Exchange.Declare(exchange="amq.direct", exchange_type=f"no-type-{ctx.u}",
                                      passive=True),
              C.Exchange.DeclareOk)


def test_x_max_priority_zero_is_accepted(ctx):
    q = f"q-{ctx.u}"
    ctx.queues.append(q)
    _no_error(ctx, C.Queue.Declare(queue=q, arguments={"x-max-priority": 0}), C.Queue.DeclareOk)


def test_reply_to_pseudo_queue_declare(ctx):
    _no_error(ctx, C.Queue.Declare(queue="amq.rabbitmq.reply-to", passive=True),
              C.Queue.DeclareOk, queue="amq.rabbitmq.reply-to", message_count=0,
              consumer_count=1)


def test_mandatory_unroutable_gets_return_312(ctx):
    ctx.conn.publish(1, b"lost", exchange="amq.direct", routing_key=f"nokey-{ctx.u}",
                     mandatory=True)
    ret = ctx.conn.expect(C.Basic.Return, 1)
    assert (ret.reply_code, ret.reply_text) == (312, "NO_ROUTE")
    assert (ret.exchange, ret.routing_key) == ("amq.direct", f"nokey-{ctx.u}")
    _ch, hdr = ctx.conn.recv_frame()
    assert hdr.body_size == 4
    _ch, body = ctx.conn.recv_frame()
    assert body.value == b"lost"


def test_mandatory_to_default_exchange_missing_queue_gets_return(ctx):
    ctx.conn.publish(1, b"x", exchange="", routing_key=f"q-{ctx.u}", mandatory=True)
    ret = ctx.conn.expect(C.Basic.Return, 1)
    assert (ret.reply_code, ret.reply_text, ret.exchange, ret.routing_key) == (
        312, "NO_ROUTE", "", f"q-{ctx.u}"
    )


def test_publish_to_missing_queue_via_default_exchange_is_silent(ctx):
    ctx.conn.publish(1, b"x", exchange="", routing_key=f"q-{ctx.u}")
    with pytest.raises((socket.timeout, TimeoutError)):
        ctx.conn.recv_method(timeout=0.5)
    _no_error(ctx, C.Queue.Declare(queue="", exclusive=True), C.Queue.DeclareOk)
