"""Error conformance: reply code, exact reply text, class_id/method_id, and scope (channel.close
vs connection.close) for every protocol error a client can trigger — plus the cases that must
*not* be errors. Recorded against a real RabbitMQ 3.10 (AMQP_REFERENCE_URL set).

The tables drive a raw frame-level client (helpers/raw.py) so class_id/method_id are visible;
a smaller table repeats key cases through pika / aio-pika to check what real clients see.

In text templates `{u}` is the test's unique suffix. Every name is unique per test because the
reference server is shared.

This file holds the error table; the cases that must not be errors are in
test_errors_conformance_ok.py, the real-client cases in test_errors_conformance_clients.py,
the shared context and scenario helpers in errors_ctx.py.
"""

from __future__ import annotations

import pytest
from pamqp import commands as C

from helpers.errors import ctx  # noqa: F401 - pytest fixture
from helpers.errors import (
    CH,
    CONN,
    Case,
    LOCKED,
    ack_on_other_channel,
    ack_twice,
    bad_queue_arg,
    consume_then,
    delete_in_use,
    delete_not_empty,
    exchange_delete_in_use,
    exchange_delete_in_use_by_queue,
    from_other_connection,
    scenario_publish,
    redeclare_exchange,
    redeclare_queue,
)

pytestmark = [
    pytest.mark.timeout(30),
    pytest.mark.filterwarnings("ignore:This command is deprecated:DeprecationWarning"),
]


# --------------------------------------------------------------------------- the error table
CASES: list[Case] = [
    # ---- 404 NOT_FOUND
    Case("queue.declare passive missing",
         lambda c: c.send(C.Queue.Declare(queue=f"q-{c.u}", passive=True)),
         CH, 404, "NOT_FOUND - no queue 'q-{u}' in vhost '/'", 50, 10),
    Case("exchange.declare passive missing",
         lambda c: c.send(C.Exchange.Declare(exchange=f"x-{c.u}", passive=True)),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 40, 10),
    Case("queue.declare passive missing amq. name",
         lambda c: c.send(C.Queue.Declare(queue=f"amq.q-{c.u}", passive=True)),
         CH, 404, "NOT_FOUND - no queue 'amq.q-{u}' in vhost '/'", 50, 10),
    Case("exchange.declare passive missing amq. name",
         lambda c: c.send(C.Exchange.Declare(exchange=f"amq.x-{c.u}", passive=True)),
         CH, 404, "NOT_FOUND - no exchange 'amq.x-{u}' in vhost '/'", 40, 10),
    Case("exchange.declare passive amq.default",
         lambda c: c.send(C.Exchange.Declare(exchange="amq.default", passive=True)),
         CH, 404, "NOT_FOUND - no exchange 'amq.default' in vhost '/'", 40, 10),
    Case("queue.declare passive empty name",
         lambda c: c.send(C.Queue.Declare(queue="", passive=True)),
         CH, 404, "NOT_FOUND - no queue '' in vhost '/'", 50, 10),
    Case("queue.bind missing queue",
         lambda c: c.send(C.Queue.Bind(queue=f"q-{c.u}", exchange="amq.direct", routing_key="k")),
         CH, 404, "NOT_FOUND - no queue 'q-{u}' in vhost '/'", 50, 20),
    Case("queue.bind missing exchange",
         lambda c: (c.queue(f"q-{c.u}", auto_delete=True),
                    c.send(C.Queue.Bind(queue=f"q-{c.u}", exchange=f"x-{c.u}")))[-1],
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 50, 20),
    Case("queue.bind both missing reports the exchange",
         lambda c: c.send(C.Queue.Bind(queue=f"q-{c.u}", exchange=f"x-{c.u}")),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 50, 20),
    Case("basic.consume missing queue",
         lambda c: c.send(C.Basic.Consume(queue=f"q-{c.u}")),
         CH, 404, "NOT_FOUND - no queue 'q-{u}' in vhost '/'", 60, 20),
    Case("basic.get missing queue",
         lambda c: c.send(C.Basic.Get(queue=f"q-{c.u}")),
         CH, 404, "NOT_FOUND - no queue 'q-{u}' in vhost '/'", 60, 70),
    Case("queue.purge missing queue",
         lambda c: c.send(C.Queue.Purge(queue=f"q-{c.u}")),
         CH, 404, "NOT_FOUND - no queue 'q-{u}' in vhost '/'", 50, 30),
    Case("basic.publish missing exchange",
         lambda c: scenario_publish(c, exchange=f"x-{c.u}", routing_key="k"),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 60, 40),
    Case("basic.publish mandatory missing exchange",
         lambda c: scenario_publish(c, exchange=f"x-{c.u}", routing_key="k", mandatory=True),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 60, 40),
    Case("exchange.bind missing destination",
         lambda c: c.send(C.Exchange.Bind(destination=f"x-{c.u}", source="amq.direct",
                                          routing_key="k")),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 40, 30),
    Case("exchange.bind missing source",
         lambda c: c.send(C.Exchange.Bind(destination="amq.fanout", source=f"x-{c.u}",
                                          routing_key="k")),
         CH, 404, "NOT_FOUND - no exchange 'x-{u}' in vhost '/'", 40, 30),
    Case("basic.get empty name without previous declare",
         lambda c: c.send(C.Basic.Get(queue="")),
         CH, 404, "NOT_FOUND - no previously declared queue", 60, 70),
    Case("basic.consume empty name without previous declare",
         lambda c: c.send(C.Basic.Consume(queue="")),
         CH, 404, "NOT_FOUND - no previously declared queue", 60, 20),
    Case("queue.bind empty name without previous declare",
         lambda c: c.send(C.Queue.Bind(queue="", exchange="amq.direct")),
         CH, 404, "NOT_FOUND - no previously declared queue", 50, 20),
    Case("queue.purge empty name without previous declare",
         lambda c: c.send(C.Queue.Purge(queue="")),
         CH, 404, "NOT_FOUND - no previously declared queue", 50, 30),
    Case("queue.delete empty name without previous declare",
         lambda c: c.send(C.Queue.Delete(queue="")),
         CH, 404, "NOT_FOUND - no previously declared queue", 50, 40),
    # ---- 405 RESOURCE_LOCKED: exclusive queue of another connection
    Case("405 exclusive redeclare from other connection",
         from_other_connection(lambda c: C.Queue.Declare(queue=f"q-{c.u}", exclusive=True)),
         CH, 405, LOCKED, 50, 10),
    Case("405 plain redeclare from other connection",
         from_other_connection(lambda c: C.Queue.Declare(queue=f"q-{c.u}")),
         CH, 405, LOCKED, 50, 10),
    Case("405 passive declare from other connection",
         from_other_connection(lambda c: C.Queue.Declare(queue=f"q-{c.u}", passive=True)),
         CH, 405, LOCKED, 50, 10),
    Case("405 consume from other connection",
         from_other_connection(lambda c: C.Basic.Consume(queue=f"q-{c.u}")),
         CH, 405, LOCKED, 60, 20),
    Case("405 get from other connection",
         from_other_connection(lambda c: C.Basic.Get(queue=f"q-{c.u}")),
         CH, 405, LOCKED, 60, 70),
    Case("405 bind from other connection",
         from_other_connection(lambda c: C.Queue.Bind(queue=f"q-{c.u}", exchange="amq.direct")),
         CH, 405, LOCKED, 50, 20),
    Case("405 purge from other connection",
         from_other_connection(lambda c: C.Queue.Purge(queue=f"q-{c.u}")),
         CH, 405, LOCKED, 50, 30),
    Case("405 delete from other connection",
         from_other_connection(lambda c: C.Queue.Delete(queue=f"q-{c.u}")),
         CH, 405, LOCKED, 50, 40),
    Case("405 exclusive flag mismatch exclusive->plain (same connection)",
         redeclare_queue({"exclusive": True}, {"exclusive": False}),
         CH, 405, LOCKED, 50, 10),
    Case("405 exclusive flag mismatch plain->exclusive (same connection)",
         redeclare_queue({"auto_delete": True}, {"auto_delete": True, "exclusive": True}),
         CH, 405, LOCKED, 50, 10),
    # ---- 406 inequivalent queue redeclare
    Case("queue durable false->true", redeclare_queue({}, {"durable": True}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q-{u}' in vhost "
         "'/': received 'true' but current is 'false'", 50, 10),
    Case("queue durable true->false", redeclare_queue({"durable": True}, {}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'q-{u}' in vhost "
         "'/': received 'false' but current is 'true'", 50, 10),
    Case("queue auto_delete true->false",
         redeclare_queue({"auto_delete": True}, {"auto_delete": False}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q-{u}' in vhost "
         "'/': received 'false' but current is 'true'", 50, 10),
    Case("queue auto_delete false->true", redeclare_queue({}, {"auto_delete": True}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue 'q-{u}' in vhost "
         "'/': received 'true' but current is 'false'", 50, 10),
    # pamqp encodes 1000 as a 16-bit 's' field: the broker must keep and report the wire type
    Case("queue x-message-ttl missing on redeclare",
         redeclare_queue({"arguments": {"x-message-ttl": 1000}}, {}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q-{u}' in "
         "vhost '/': received none but current is the value '1000' of type 'short'", 50, 10),
    Case("queue x-message-ttl added on redeclare",
         redeclare_queue({}, {"arguments": {"x-message-ttl": 1000}}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q-{u}' in "
         "vhost '/': received the value '1000' of type 'short' but current is none", 50, 10),
    Case("queue x-message-ttl different value",
         redeclare_queue({"arguments": {"x-message-ttl": 1000}},
                          {"arguments": {"x-message-ttl": 2000}}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue 'q-{u}' in "
         "vhost '/': received '2000' but current is '1000'", 50, 10),
    Case("queue x-max-priority missing (byte type)",
         redeclare_queue({"arguments": {"x-max-priority": 5}}, {}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-max-priority' for queue 'q-{u}' in "
         "vhost '/': received none but current is the value '5' of type 'byte'", 50, 10),
    Case("queue x-dead-letter-exchange different",
         redeclare_queue({"arguments": {"x-dead-letter-exchange": "a"}},
                          {"arguments": {"x-dead-letter-exchange": "b"}}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue "
         "'q-{u}' in vhost '/': received 'b' but current is 'a'", 50, 10),
    Case("queue x-dead-letter-exchange missing",
         redeclare_queue({"arguments": {"x-dead-letter-exchange": "a"}}, {}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-dead-letter-exchange' for queue "
         "'q-{u}' in vhost '/': received none but current is the value 'a' of type 'longstr'",
         50, 10),
    Case("queue x-max-length int vs string",
         redeclare_queue({"arguments": {"x-max-length": 10}},
                          {"arguments": {"x-max-length": "10"}}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'x-max-length' for queue 'q-{u}' in "
         "vhost '/': received '10' but current is '10'", 50, 10),
    # ---- 406 inequivalent exchange redeclare
    Case("exchange type", redeclare_exchange({}, {"exchange_type": "topic"}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'x-{u}' in vhost "
         "'/': received 'topic' but current is 'direct'", 40, 10),
    Case("exchange durable", redeclare_exchange({}, {"durable": True}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'durable' for exchange 'x-{u}' in vhost "
         "'/': received 'true' but current is 'false'", 40, 10),
    Case("exchange auto_delete", redeclare_exchange({}, {"auto_delete": True}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'auto_delete' for exchange 'x-{u}' in "
         "vhost '/': received 'true' but current is 'false'", 40, 10),
    Case("exchange internal", redeclare_exchange({}, {"internal": True}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'internal' for exchange 'x-{u}' in "
         "vhost '/': received 'true' but current is 'false'", 40, 10),
    Case("exchange alternate-exchange different",
         redeclare_exchange({"arguments": {"alternate-exchange": "a"}},
                             {"arguments": {"alternate-exchange": "b"}}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange "
         "'x-{u}' in vhost '/': received 'b' but current is 'a'", 40, 10),
    Case("exchange alternate-exchange missing",
         redeclare_exchange({"arguments": {"alternate-exchange": "a"}}, {}),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange "
         "'x-{u}' in vhost '/': received none but current is the value 'a' of type 'longstr'",
         40, 10),
    Case("amq.direct redeclared as fanout",
         lambda c: c.send(C.Exchange.Declare(exchange="amq.direct", exchange_type="fanout",
                                             durable=True)),
         CH, 406, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.direct' in "
         "vhost '/': received 'fanout' but current is 'direct'", 40, 10),
    # ---- 406 delivery tags
    Case("ack unknown tag", lambda c: c.send(C.Basic.Ack(delivery_tag=100)),
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 100", 60, 80),
    Case("ack tag 0 single", lambda c: c.send(C.Basic.Ack(delivery_tag=0, multiple=False)),
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 0", 60, 80),
    Case("ack unknown tag multiple", lambda c: c.send(C.Basic.Ack(delivery_tag=5, multiple=True)),
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 5", 60, 80),
    Case("nack unknown tag", lambda c: c.send(C.Basic.Nack(delivery_tag=7)),
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 7", 60, 120),
    Case("reject unknown tag", lambda c: c.send(C.Basic.Reject(delivery_tag=8)),
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 8", 60, 90),
    Case("ack twice", ack_twice,
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 1", 60, 80),
    Case("ack another channel's tag", ack_on_other_channel,
         CH, 406, "PRECONDITION_FAILED - unknown delivery tag 1", 60, 80),
    # ---- 406 in use / not empty
    Case("queue.delete if_unused with consumer", delete_in_use,
         CH, 406, "PRECONDITION_FAILED - queue 'q-{u}' in vhost '/' in use", 50, 40),
    Case("queue.delete if_empty with message", delete_not_empty,
         CH, 406, "PRECONDITION_FAILED - queue 'q-{u}' in vhost '/' not empty", 50, 40),
    Case("exchange.delete if_unused with e2e binding", exchange_delete_in_use,
         CH, 406, "PRECONDITION_FAILED - exchange 'x-{u}' in vhost '/' in use", 40, 20),
    Case("exchange.delete if_unused with queue binding", exchange_delete_in_use_by_queue,
         CH, 406, "PRECONDITION_FAILED - exchange 'x-{u}' in vhost '/' in use", 40, 20),
    # ---- 406 tx / confirm
    Case("tx.commit without tx.select", lambda c: c.send(C.Tx.Commit()),
         CH, 406, "PRECONDITION_FAILED - channel is not transactional", 90, 20),
    Case("tx.rollback without tx.select", lambda c: c.send(C.Tx.Rollback()),
         CH, 406, "PRECONDITION_FAILED - channel is not transactional", 90, 30),
    Case("confirm.select after tx.select",
         lambda c: (c.ok(C.Tx.Select()), c.send(C.Confirm.Select()))[-1],
         CH, 406, "PRECONDITION_FAILED - cannot switch from tx to confirm mode", 85, 10),
    Case("tx.select after confirm.select",
         lambda c: (c.ok(C.Confirm.Select()), c.send(C.Tx.Select()))[-1],
         CH, 406, "PRECONDITION_FAILED - cannot switch from confirm to tx mode", 90, 10),
    # ---- 406 argument validation
    Case("x-message-ttl negative", bad_queue_arg({"x-message-ttl": -1}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q-{u}' in vhost "
         "'/': {value_negative,-1}", 50, 10),
    Case("x-message-ttl string", bad_queue_arg({"x-message-ttl": "abc"}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-message-ttl' for queue 'q-{u}' in vhost "
         "'/': \"expected integer, got longstr\"", 50, 10),
    Case("x-expires zero", bad_queue_arg({"x-expires": 0}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-expires' for queue 'q-{u}' in vhost "
         "'/': {value_zero,0}", 50, 10),
    Case("x-overflow invalid", bad_queue_arg({"x-overflow": "foo"}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-overflow' for queue 'q-{u}' in vhost "
         "'/': invalid_overflow", 50, 10),
    Case("x-dead-letter-routing-key without dlx",
         bad_queue_arg({"x-dead-letter-routing-key": "k"}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-dead-letter-routing-key' for queue "
         "'q-{u}' in vhost '/': routing_key_but_no_dlx_defined", 50, 10),
    Case("x-max-length negative", bad_queue_arg({"x-max-length": -1}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-max-length' for queue 'q-{u}' in vhost "
         "'/': {value_negative,-1}", 50, 10),
    Case("x-max-priority too large", bad_queue_arg({"x-max-priority": 256}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-max-priority' for queue 'q-{u}' in vhost "
         "'/': {max_value_exceeded,256}", 50, 10),
    Case("x-queue-type unknown", bad_queue_arg({"x-queue-type": "foo"}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-queue-type' for queue 'q-{u}' in vhost "
         "'/': \"unsupported queue type 'foo'\"", 50, 10),
    Case("x-single-active-consumer not a bool", bad_queue_arg({"x-single-active-consumer": 1}),
         CH, 406, "PRECONDITION_FAILED - invalid arg 'x-single-active-consumer' for queue "
         "'q-{u}' in vhost '/': {unacceptable_type,byte}", 50, 10),
    Case("publish with non-integer expiration",
         lambda c: scenario_publish(c, routing_key="k", properties=C.Basic.Properties(expiration="abc")),
         CH, 406, "PRECONDITION_FAILED - invalid expiration 'abc': no_integer", 60, 40),
    Case("publish with negative expiration",
         lambda c: scenario_publish(c, routing_key="k", properties=C.Basic.Properties(expiration="-5")),
         CH, 406, "PRECONDITION_FAILED - invalid expiration '-5': {value_negative,-5}", 60, 40),
    Case("headers bind with invalid x-match",
         lambda c: (c.exchange(f"x-{c.u}", "headers"), c.queue(f"q-{c.u}", auto_delete=True),
                    c.send(C.Queue.Bind(queue=f"q-{c.u}", exchange=f"x-{c.u}",
                                        arguments={"x-match": "foo"})))[-1],
         CH, 406, "PRECONDITION_FAILED - Invalid x-match field value <<\"foo\">>; expected all, "
         "any, all-with-x, or any-with-x", 50, 20),
    # ---- 406 direct reply-to
    Case("reply-to consume with acks",
         lambda c: c.send(C.Basic.Consume(queue="amq.rabbitmq.reply-to", no_ack=False)),
         CH, 406, "PRECONDITION_FAILED - reply consumer cannot acknowledge", 60, 20),
    Case("reply-to second consumer",
         lambda c: (c.ok(C.Basic.Consume(queue="amq.rabbitmq.reply-to", no_ack=True)),
                    c.send(C.Basic.Consume(queue="amq.rabbitmq.reply-to", no_ack=True)))[-1],
         CH, 406, "PRECONDITION_FAILED - reply consumer already set", 60, 20),
    Case("reply-to publish without reply consumer",
         lambda c: scenario_publish(c, routing_key="k",
                            properties=C.Basic.Properties(reply_to="amq.rabbitmq.reply-to")),
         CH, 406, "PRECONDITION_FAILED - fast reply consumer does not exist", 60, 40),
    # ---- 403 ACCESS_REFUSED
    Case("queue.declare reserved amq. prefix",
         lambda c: c.send(C.Queue.Declare(queue=f"amq.q-{c.u}")),
         CH, 403, "ACCESS_REFUSED - queue name 'amq.q-{u}' contains reserved prefix 'amq.*'",
         50, 10),
    Case("exchange.declare reserved amq. prefix",
         lambda c: c.send(C.Exchange.Declare(exchange=f"amq.x-{c.u}", exchange_type="direct")),
         CH, 403, "ACCESS_REFUSED - exchange name 'amq.x-{u}' contains reserved prefix 'amq.*'",
         40, 10),
    Case("exchange.declare default exchange",
         lambda c: c.send(C.Exchange.Declare(exchange="", exchange_type="direct", durable=True)),
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 10),
    Case("exchange.declare passive default exchange",
         lambda c: c.send(C.Exchange.Declare(exchange="", passive=True)),
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 10),
    Case("exchange.delete default exchange",
         lambda c: c.send(C.Exchange.Delete(exchange="")),
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 20),
    Case("exchange.delete amq.direct",
         lambda c: c.send(C.Exchange.Delete(exchange="amq.direct")),
         CH, 403, "ACCESS_REFUSED - deletion of system exchange 'amq.direct' in vhost '/' not "
         "allowed", 40, 20),
    Case("exchange.delete amq.default",
         lambda c: c.send(C.Exchange.Delete(exchange="amq.default")),
         CH, 403, "ACCESS_REFUSED - deletion of system exchange 'amq.default' in vhost '/' not "
         "allowed", 40, 20),
    Case("queue.bind to default exchange",
         lambda c: (c.queue(f"q-{c.u}", auto_delete=True),
                    c.send(C.Queue.Bind(queue=f"q-{c.u}", exchange="", routing_key="k")))[-1],
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 50, 20),
    Case("queue.unbind from default exchange",
         lambda c: (c.queue(f"q-{c.u}", auto_delete=True),
                    c.send(C.Queue.Unbind(queue=f"q-{c.u}", exchange="",
                                          routing_key=f"q-{c.u}")))[-1],
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 50, 50),
    Case("exchange.bind with default exchange as source",
         lambda c: c.send(C.Exchange.Bind(destination="amq.fanout", source="", routing_key="k")),
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 30),
    Case("exchange.bind with default exchange as destination",
         lambda c: c.send(C.Exchange.Bind(destination="", source="amq.direct", routing_key="k")),
         CH, 403, "ACCESS_REFUSED - operation not permitted on the default exchange", 40, 30),
    Case("publish to internal exchange",
         lambda c: (c.exchange(f"x-{c.u}", "fanout", internal=True),
                    scenario_publish(c, exchange=f"x-{c.u}"))[-1],
         CH, 403, "ACCESS_REFUSED - cannot publish to internal exchange 'x-{u}' in vhost '/'",
         60, 40),
    Case("exclusive consume on queue with consumers",
         lambda c: consume_then(c, {"exclusive": True}),
         CH, 403, "ACCESS_REFUSED - queue 'q-{u}' in vhost '/' in exclusive use", 60, 20),
    Case("consume on queue with exclusive consumer",
         lambda c: consume_then(c, {}, first={"exclusive": True}),
         CH, 403, "ACCESS_REFUSED - queue 'q-{u}' in vhost '/' in exclusive use", 60, 20),
    # ---- hard errors: connection.close
    Case("consumer tag reuse",
         lambda c: consume_then(c, {"consumer_tag": f"ct-{c.u}"}),
         CONN, 530, "NOT_ALLOWED - attempt to reuse consumer tag 'ct-{u}'", 60, 20),
    Case("publish immediate=true",
         lambda c: scenario_publish(c, routing_key="k", immediate=True),
         CONN, 540, "NOT_IMPLEMENTED - immediate=true", 60, 40),
    Case("basic.qos prefetch_size != 0",
         lambda c: c.send(C.Basic.Qos(prefetch_size=10)),
         CONN, 540, "NOT_IMPLEMENTED - prefetch_size!=0 (10)", 60, 10),
    Case("basic.recover requeue=false",
         lambda c: c.send(C.Basic.Recover(requeue=False)),
         CONN, 540, "NOT_IMPLEMENTED - requeue=false", 60, 110),
    Case("basic.recover-async requeue=false",
         lambda c: c.send(C.Basic.RecoverAsync(requeue=False)),
         CONN, 540, "NOT_IMPLEMENTED - requeue=false", 60, 100),
    Case("channel.flow active=false",
         lambda c: c.send(C.Channel.Flow(active=False)),
         CONN, 540, "NOT_IMPLEMENTED - active=false", 20, 20),
    # RabbitMQ says "unknown exchange type" for a name that is not an Erlang atom; for names that
    # happen to be existing atoms ('foo', 'queue', 'error', ...) it says "invalid exchange type".
    # Only the general case is pinned here.
    Case("exchange.declare unknown type",
         lambda c: c.send(C.Exchange.Declare(exchange=f"x-{c.u}", exchange_type=f"no-type-{c.u}")),
         CONN, 503, "COMMAND_INVALID - unknown exchange type 'no-type-{u}'", 40, 10),
    Case("exchange.declare unknown type, plugin name not installed",
         lambda c: c.send(C.Exchange.Declare(exchange=f"x-{c.u}",
                                             exchange_type="x-consistent-hash")),
         CONN, 503, "COMMAND_INVALID - unknown exchange type 'x-consistent-hash'", 40, 10),
    Case("exchange.declare type is case-sensitive",
         lambda c: c.send(C.Exchange.Declare(exchange=f"x-{c.u}", exchange_type="DIRECT")),
         CONN, 503, "COMMAND_INVALID - unknown exchange type 'DIRECT'", 40, 10),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_error(ctx, case: Case):
    where = case.run(ctx)
    conn, channel = where if where else (ctx.conn, 1)
    if case.scope == CH:
        code, text, class_id, method_id = conn.expect_channel_close(channel)
    else:
        code, text, class_id, method_id = conn.expect_close()
    assert (code, text, class_id, method_id) == (
        case.code, case.text.replace("{u}", ctx.u), case.class_id, case.method_id
    )
    if case.scope == CH:
        # only the channel died: the connection (and a fresh channel) still work
        conn.open_channel(channel + 100)
        conn.rpc(C.Queue.Declare(queue="", exclusive=True), channel + 100, C.Queue.DeclareOk)
    else:
        assert conn.wait_closed(5), "server must close the socket after connection.close-ok"
