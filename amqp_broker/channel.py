"""A channel: turns one channel's frames into calls on the vhost and queues, and back.

Holds what AMQP scopes to a channel: consumers, unacked deliveries (delivery tags), prefetch
limits, confirm and tx modes, the publish being assembled from method + header + body frames,
and the direct reply-to consumer. Rules about exchanges and queues live in vhost.py; the
frame-level state machine (which frame may come next) is enforced here and in connection.py.
"""
from __future__ import annotations

import base64
import os
from collections import OrderedDict, deque
from typing import TYPE_CHECKING

from pamqp import commands as C

from . import codec, errors
from .confirms import ConfirmTracker
from .consumer import Consumer
from .errors import AMQPError, resource
from .exchanges.erlang_format import field_type
from .message import Message
from .properties import REPLY_TO as PROP_REPLY_TO
from .properties import Properties, PropertyError, encode_shortstr, splice
from .queue_args import parse_expiration
from .vhost import REPLY_TO

if TYPE_CHECKING:  # pragma: no cover
    from .connection import Connection

MAX_MESSAGE_SIZE = 134217728  # RabbitMQ's default max_message_size
REPLY_TO_PREFIX = REPLY_TO + "."

OPEN, CLOSING, CLOSED = "open", "closing", "closed"


def _ctag() -> str:
    return "amq.ctag-" + base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


class Channel:
    def __init__(self, conn: "Connection", number: int):
        self.conn = conn
        self.number = number
        self.vhost = conn.vhost
        self.state = OPEN
        self.paused = conn.write_paused
        self.consumers: dict[str, Consumer] = {}
        # delivery tag -> (entry, queue, consumer or None); ordered by tag
        self.unacked: OrderedDict[int, tuple] = OrderedDict()
        self.next_tag = 1
        self.prefetch = 0
        self.global_prefetch = 0
        self.confirm: ConfirmTracker | None = None
        self.tx: list | None = None  # buffered publishes and settlements while in tx mode
        self.last_queue = ""  # AMQP's "most recently declared queue" shortcut
        self.reply_tag: str | None = None  # direct reply-to consumer tag
        self.reply_key: str | None = None
        # publisher confirms waiting for the store: (batch id, seqno) in publish order
        self._held: deque = deque()
        self._waiting_batch = 0
        # publish being assembled
        self._publish = None
        self._header = None
        self._body: list[bytes] = []
        self._remaining = 0
        self._handlers = {
            C.Channel.Close: self._channel_close,
            C.Channel.Flow: self._channel_flow,
            C.Channel.FlowOk: _ignore,
            C.Channel.Open: self._channel_open_again,
            C.Exchange.Declare: self._exchange_declare,
            C.Exchange.Delete: self._exchange_delete,
            C.Exchange.Bind: self._exchange_bind,
            C.Exchange.Unbind: self._exchange_unbind,
            C.Queue.Declare: self._queue_declare,
            C.Queue.Bind: self._queue_bind,
            C.Queue.Unbind: self._queue_unbind,
            C.Queue.Purge: self._queue_purge,
            C.Queue.Delete: self._queue_delete,
            C.Basic.Qos: self._basic_qos,
            C.Basic.Consume: self._basic_consume,
            C.Basic.Cancel: self._basic_cancel,
            C.Basic.Get: self._basic_get,
            C.Basic.Reject: self._basic_reject,
            C.Basic.Nack: self._basic_nack,
            C.Basic.Recover: self._basic_recover,
            C.Basic.RecoverAsync: self._basic_recover_async,
            C.Confirm.Select: self._confirm_select,
            C.Tx.Select: self._tx_select,
            C.Tx.Commit: self._tx_commit,
            C.Tx.Rollback: self._tx_rollback,
        }

    # -- plumbing ----------------------------------------------------------------------------------

    def send(self, cls, **kwargs) -> None:
        self.conn.send(codec.encode(self.number, cls, **kwargs))

    @property
    def unacked_count(self) -> int:
        return len(self.unacked)

    @property
    def expecting_content(self) -> bool:
        return self._publish is not None

    def handle_method(self, obj, payload: bytes) -> None:
        handler = self._handlers.get(type(obj))
        if handler is None:
            raise AMQPError(errors.COMMAND_INVALID, "unimplemented method")
        handler(obj, payload)

    # -- channel class -----------------------------------------------------------------------------

    def _channel_close(self, obj, _payload) -> None:
        self.teardown()
        self.conn.send(codec.encode(self.number, C.Channel.CloseOk))
        self.conn.channel_closed(self)

    def _channel_open_again(self, obj, _payload) -> None:
        raise AMQPError(errors.CHANNEL_ERROR, "second 'channel.open' seen")

    def _channel_flow(self, obj, _payload) -> None:
        if not obj.active:
            raise AMQPError(errors.NOT_IMPLEMENTED, "active=false")
        self.send(C.Channel.FlowOk, active=True)

    # -- exchange class ----------------------------------------------------------------------------

    def _exchange_declare(self, obj, payload) -> None:
        typed = _typed_args(payload)
        self.vhost.declare_exchange(
            obj.exchange, obj.exchange_type, obj.passive, obj.durable, obj.auto_delete,
            obj.internal, obj.arguments or {}, typed,
        )
        if not obj.nowait:
            self.send(C.Exchange.DeclareOk)

    def _exchange_delete(self, obj, _payload) -> None:
        self.vhost.delete_exchange(obj.exchange, obj.if_unused)
        if not obj.nowait:
            self.send(C.Exchange.DeleteOk)

    def _exchange_bind(self, obj, _payload) -> None:
        self.vhost.bind(obj.source, obj.destination, False, obj.routing_key, obj.arguments, self.conn)
        if not obj.nowait:
            self.send(C.Exchange.BindOk)

    def _exchange_unbind(self, obj, _payload) -> None:
        self.vhost.unbind(obj.source, obj.destination, False, obj.routing_key, obj.arguments, self.conn)
        if not obj.nowait:
            self.send(C.Exchange.UnbindOk)

    # -- queue class -------------------------------------------------------------------------------

    def _queue_name(self, name: str) -> str:
        """AMQP's empty-name shortcut for the channel's most recently declared queue."""
        if name:
            return name
        if not self.last_queue:
            raise AMQPError(errors.NOT_FOUND, "no previously declared queue")
        return self.last_queue

    def _queue_declare(self, obj, payload) -> None:
        typed = _typed_args(payload)
        name = obj.queue
        if name == REPLY_TO:
            if not obj.nowait:
                self.send(C.Queue.DeclareOk, queue=name, message_count=0, consumer_count=1)
            return
        if obj.passive and name.startswith(REPLY_TO_PREFIX):
            if name[len(REPLY_TO_PREFIX):] in self.conn.broker.reply_channels:
                if not obj.nowait:
                    self.send(C.Queue.DeclareOk, queue=name, message_count=0, consumer_count=1)
                return
            raise errors.not_found("queue", name, self.vhost.name)
        queue, messages, consumers = self.vhost.declare_queue(
            name, obj.passive, obj.durable, obj.exclusive, obj.auto_delete,
            obj.arguments or {}, typed, self.conn,
        )
        self.last_queue = queue.name
        if not obj.nowait:
            self.send(C.Queue.DeclareOk, queue=queue.name, message_count=messages, consumer_count=consumers)

    def _queue_bind(self, obj, _payload) -> None:
        queue = self._queue_name(obj.queue)
        routing_key = obj.routing_key if (obj.routing_key or obj.queue) else queue
        self.vhost.bind(obj.exchange, queue, True, routing_key, obj.arguments, self.conn)
        if not obj.nowait:
            self.send(C.Queue.BindOk)

    def _queue_unbind(self, obj, _payload) -> None:
        queue = self._queue_name(obj.queue)
        routing_key = obj.routing_key if (obj.routing_key or obj.queue) else queue
        self.vhost.unbind(obj.exchange, queue, True, routing_key, obj.arguments, self.conn)
        self.send(C.Queue.UnbindOk)

    def _queue_purge(self, obj, _payload) -> None:
        count = self.vhost.purge_queue(self._queue_name(obj.queue), self.conn)
        if not obj.nowait:
            self.send(C.Queue.PurgeOk, message_count=count)

    def _queue_delete(self, obj, _payload) -> None:
        count = self.vhost.delete_queue(self._queue_name(obj.queue), obj.if_unused, obj.if_empty, self.conn)
        if not obj.nowait:
            self.send(C.Queue.DeleteOk, message_count=count)

    # -- basic: consuming --------------------------------------------------------------------------

    def _basic_qos(self, obj, _payload) -> None:
        if obj.prefetch_size:
            raise AMQPError(errors.NOT_IMPLEMENTED, f"prefetch_size!=0 ({obj.prefetch_size})")
        if obj.global_:
            self.global_prefetch = obj.prefetch_count
        else:
            # RabbitMQ's rabbit_limiter:unlimit_prefetch: a per-consumer qos also lifts a
            # channel-wide limit set before it
            self.prefetch = obj.prefetch_count
            self.global_prefetch = 0
        self.send(C.Basic.QosOk)
        self._drain_consumers()

    def _basic_consume(self, obj, _payload) -> None:
        tag = obj.consumer_tag or _ctag()
        if tag in self.consumers or tag == self.reply_tag:
            raise AMQPError(errors.NOT_ALLOWED, f"attempt to reuse consumer tag '{tag}'")
        if obj.queue == REPLY_TO:
            self._consume_reply_to(obj, tag)
            return
        queue = self.vhost.get_queue(self._queue_name(obj.queue), self.conn)
        if queue.exclusive_consumer is not None or (obj.exclusive and (queue.consumers or queue.single_active)):
            raise errors.access_refused(f"{resource('queue', queue.name, self.vhost.name)} in exclusive use")
        consumer = Consumer(self, queue, tag, obj.no_ack, obj.exclusive, self.prefetch, obj.arguments)
        priority = (obj.arguments or {}).get("x-priority")
        if priority is not None:
            if isinstance(priority, bool) or not isinstance(priority, int):
                kind = field_type(priority)
                raise errors.precondition(
                    f"invalid arg 'x-priority' for {resource('queue', queue.name, self.vhost.name)}: "
                    f'"expected integer, got {kind}"'
                )
            consumer.priority = priority
        self.consumers[tag] = consumer
        if not obj.nowait:
            self.send(C.Basic.ConsumeOk, consumer_tag=tag)
        queue.add_consumer(consumer)

    def _consume_reply_to(self, obj, tag: str) -> None:
        if not obj.no_ack:
            raise errors.precondition("reply consumer cannot acknowledge")
        if self.reply_tag is not None:
            raise errors.precondition("reply consumer already set")
        self.reply_tag = tag
        self.reply_key = base64.urlsafe_b64encode(os.urandom(18)).decode()
        self.conn.broker.reply_channels[self.reply_key] = self
        if not obj.nowait:
            self.send(C.Basic.ConsumeOk, consumer_tag=tag)

    def _basic_cancel(self, obj, _payload) -> None:
        tag = obj.consumer_tag
        consumer = self.consumers.pop(tag, None)
        if consumer is not None:
            consumer.queue.remove_consumer(consumer)
            self.vhost.consumer_gone(consumer.queue)
        elif tag is not None and tag == self.reply_tag:
            self._drop_reply_consumer()
        if not obj.nowait:
            self.send(C.Basic.CancelOk, consumer_tag=tag)

    def cancelled_by_server(self, consumer: Consumer) -> None:
        """The queue went away under a consumer: tell clients that can hear it."""
        if self.consumers.pop(consumer.tag, None) is None or self.state != OPEN:
            return
        if self.conn.capabilities.get("consumer_cancel_notify"):
            self.send(C.Basic.Cancel, consumer_tag=consumer.tag, nowait=True)

    def _drop_reply_consumer(self) -> None:
        if self.reply_key is not None:
            self.conn.broker.reply_channels.pop(self.reply_key, None)
        self.reply_tag = None
        self.reply_key = None

    def _drain_consumers(self) -> None:
        for queue in {c.queue for c in self.consumers.values()}:
            queue.drain()

    def deliver(self, consumer: Consumer, entry) -> None:
        """Push one message to a consumer (called by the queue, which checked credit)."""
        tag = self.next_tag
        self.next_tag = tag + 1
        if consumer.no_ack:
            consumer.queue.forget(entry)
        else:
            self.unacked[tag] = (entry, consumer.queue, consumer)
            consumer.unacked += 1
        msg = entry.msg
        conn = self.conn
        conn.send(codec.deliver_frame(self.number, consumer.ctag, tag, entry.redelivered, msg.xrk))
        conn.send(msg.content(self.number, conn.frame_max))

    def resume(self) -> None:
        """The connection's socket drained: deliver again."""
        self.paused = False
        self._drain_consumers()

    def _basic_get(self, obj, _payload) -> None:
        queue = self.vhost.get_queue(self._queue_name(obj.queue), self.conn)
        entry = queue.take()
        if entry is None:
            if queue.needs_page_in:  # the head is on disk: answer once it is read back
                self.conn.suspend(self, queue.wait_paged_in(), lambda: self._basic_get(obj, _payload))
                return
            self.send(C.Basic.GetEmpty)
            return
        tag = self.next_tag
        self.next_tag = tag + 1
        if obj.no_ack:
            queue.forget(entry)
        else:
            self.unacked[tag] = (entry, queue, None)
        msg = entry.msg
        self.conn.send(codec.get_ok_frame(self.number, tag, entry.redelivered, msg.xrk, queue.message_count))
        self.conn.send(msg.content(self.number, self.conn.frame_max))

    # -- basic: settling ---------------------------------------------------------------------------

    def _collect(self, tag: int, multiple: bool) -> list[tuple]:
        """The unacked (tag, record) pairs an ack/nack/reject covers (RabbitMQ's
        collect_acks: tag 0 with multiple means all; an unknown tag is an error)."""
        unacked = self.unacked
        if multiple and tag == 0:
            items = list(unacked.items())
            unacked.clear()
            return items
        if tag not in unacked:
            raise errors.precondition(f"unknown delivery tag {tag}")
        if not multiple:
            return [(tag, unacked.pop(tag))]
        items = []
        while True:
            item = unacked.popitem(last=False)
            items.append(item)
            if item[0] == tag:
                return items

    def ack(self, tag: int, multiple: bool) -> None:
        """basic.ack (the hot path: called straight from the connection's frame loop)."""
        items = self._collect(tag, multiple)
        if self.tx is not None:
            self.tx.append(("settle", items, False, False))
            return
        self._settle(items, requeue=False)

    def _basic_reject(self, obj, _payload) -> None:
        self._reject(self._collect(obj.delivery_tag, False), obj.requeue)

    def _basic_nack(self, obj, _payload) -> None:
        self._reject(self._collect(obj.delivery_tag, obj.multiple), obj.requeue)

    def _reject(self, items, requeue: bool) -> None:
        if self.tx is not None:
            self.tx.append(("settle", items, True, requeue))
            return
        self._settle(items, requeue=requeue, rejected=True)

    def _settle(self, items, requeue: bool, rejected: bool = False) -> None:
        """Apply acks or rejects. A reject without requeue discards the message (dead-letter
        exchanges, which would take it instead, are configured per queue)."""
        touched = set()
        by_queue: dict = {}
        for _tag, (entry, queue, consumer) in items:
            if consumer is not None:
                consumer.unacked -= 1
                touched.add(consumer.queue)
            if requeue:
                by_queue.setdefault(queue, []).append(entry)
            elif rejected:
                queue.reject(entry)  # dead-lettered if the queue has a DLX
            else:
                queue.forget(entry)
        for queue, entries in by_queue.items():
            queue.requeue(entries)  # drains too
        if self.global_prefetch:
            self._drain_consumers()
        else:
            for queue in touched:
                if queue not in by_queue:
                    queue.drain()

    def _basic_recover(self, obj, _payload) -> None:
        self._recover(obj.requeue)
        self.send(C.Basic.RecoverOk)

    def _basic_recover_async(self, obj, _payload) -> None:
        self._recover(obj.requeue)

    def _recover(self, requeue: bool) -> None:
        if not requeue:
            raise AMQPError(errors.NOT_IMPLEMENTED, "requeue=false")
        items = list(self.unacked.items())
        self.unacked.clear()
        self._settle(items, requeue=True)

    # -- basic: publishing -------------------------------------------------------------------------

    def start_publish(self, exchange: str, routing_key: str, mandatory: bool, immediate: bool) -> None:
        if immediate:
            raise AMQPError(errors.NOT_IMPLEMENTED, "immediate=true", 60, 40)
        self._publish = (exchange, routing_key, mandatory)

    def content_header(self, payload: bytes) -> None:
        """A content header while a publish waits for one (checked by the connection). The
        connection made sure it holds class-id, weight and body-size (12 bytes); the property
        list is checked when the message is complete (RabbitMQ's order)."""
        if self._header is not None:
            raise AMQPError(
                errors.UNEXPECTED_FRAME, "expected content body, got non content body frame instead"
            )
        class_id, weight, body_size = codec.content_header_fields(payload, 0)
        if class_id != 60:
            raise AMQPError(
                errors.UNEXPECTED_FRAME,
                f"expected content header for class 60, got one for class {class_id} instead",
            )
        if weight:
            raise AMQPError(
                errors.UNEXPECTED_FRAME,
                "expected content header for class 60, got non content header frame instead",
            )
        if body_size > MAX_MESSAGE_SIZE:
            self._publish = None
            raise errors.precondition(
                f"message size {body_size} is larger than configured max size {MAX_MESSAGE_SIZE}"
            )
        if body_size == 0:
            self._finish(payload, b"")
            return
        self._header = payload
        self._remaining = body_size

    def content_body(self, payload: bytes) -> None:
        remaining = self._remaining - len(payload)
        if remaining == 0 and not self._body:
            self._finish(self._header, payload)
            return
        if remaining < 0:  # rabbit_command_assembler: more body than announced
            raise AMQPError(
                errors.UNEXPECTED_FRAME, "expected content body, got non content body frame instead"
            )
        self._body.append(payload)
        self._remaining = remaining
        if remaining == 0:
            body = b"".join(self._body)
            self._body = []
            self._finish(self._header, body)

    def _finish(self, header: bytes, body: bytes) -> None:
        exchange, routing_key, mandatory = self._publish
        self._publish = None
        self._header = None
        self.publish(Message(exchange, routing_key, header, body), mandatory)

    def publish(self, msg: Message, mandatory: bool) -> None:
        """A complete publish, checked in rabbit_channel's order: exchange (404, 403), the
        property list (undecodable: 541), fast reply-to, user-id, expiration, delivery-mode."""
        conn = self.conn
        vhost = self.vhost
        exchange = vhost.exchanges.get(msg.exchange)
        if exchange is None:
            raise errors.not_found("exchange", msg.exchange, vhost.name)
        if exchange.internal:
            raise errors.access_refused(
                f"cannot publish to internal {resource('exchange', msg.exchange, vhost.name)}"
            )
        header = msg.header
        size = len(header)
        if size == 15 and header[12] == 0x10 and not header[13]:
            # the common case, delivery-mode alone: checked in full right here
            mode = header[14]
            if mode == 2:
                msg.persistent = True
            elif mode != 1:
                raise errors.precondition(f"invalid message: {{delivery_mode_unknown,{mode}}}")
        elif (
            size > 16 and header[13] == 0 and (header[12] == 0x11 or header[12] == 0x01)
            and size == (16 if header[12] == 0x11 else 15) + header[15 if header[12] == 0x11 else 14]
            and (header[12] == 0x01 or header[14] in (1, 2))
        ):
            # the TTL case, [delivery-mode and] expiration alone: the list is well-formed
            # when the expiration shortstr ends exactly at the end of the header
            if header[12] == 0x11:
                msg.persistent = header[14] == 2
                text = header[16:]
            else:
                text = header[15:]
            msg.ttl = parse_expiration(text.decode("utf-8", "surrogateescape"))
        elif size != 14 or header[12] or header[13]:  # properties, or a malformed list
            try:
                props = msg._props = Properties.checked(header)
            except PropertyError as exc:
                raise errors.InternalError(f"undecodable property list: {exc}") from None
            if props.reply_to == REPLY_TO:
                if self.reply_key is None:
                    raise errors.precondition("fast reply consumer does not exist")
                new = encode_shortstr(REPLY_TO_PREFIX + self.reply_key)
                msg.replace_header(splice(header, props, PROP_REPLY_TO, new))
            if props.user_id is not None and props.user_id != conn.user.name:
                raise errors.precondition(
                    f"user_id property set to '{props.user_id}' but authenticated user was "
                    f"'{conn.user.name}'"
                )
            if props.expiration is not None:
                msg.ttl = parse_expiration(props.expiration)
            mode = props.delivery_mode
            if mode is not None:
                if mode == 2:
                    msg.persistent = True
                elif mode != 1:
                    raise errors.precondition(f"invalid message: {{delivery_mode_unknown,{mode}}}")
        if self.tx is not None:
            self.tx.append(("publish", msg, exchange, mandatory))
            return
        self._route(msg, exchange, mandatory)

    def _route(self, msg: Message, exchange, mandatory: bool) -> None:
        confirm = self.confirm
        seq = confirm.publish() if confirm is not None else 0
        if not msg.exchange and msg.routing_key.startswith(REPLY_TO_PREFIX):
            self._publish_reply(msg, mandatory, seq)
            return
        held = False  # kept by an x-delayed-message exchange and written to the store
        delay = None
        if exchange.delayed:
            delayed = self.conn.broker.delayed
            delay = delayed.delay_of(msg)
        if delay is None:
            queues = self.vhost.route(exchange, msg)
        else:
            # held until due (amqp_broker/delayed.py). As with the plugin, the publish counts
            # as unroutable now: basic.return if mandatory, confirm at once (once the store has
            # it, for a durable exchange). Unlike the plugin (its issue #36) the alternate
            # exchange does not get a second copy now: the message is delivered once, when due.
            held = delayed.hold(self.vhost, exchange, msg, delay)
            queues = []
        if queues:
            if msg.persistent or msg.header.find(b"\x03BCC") != -1:
                msg = _prepare_for_queues(msg)
            rejected = False
            for queue in queues:
                if not queue.enqueue(msg):
                    rejected = True
            stored = msg.store_id is not None or held  # written to disk (a queue, or held)
            if stored:
                if self.vhost.store.backlogged:
                    self.conn.pause_for_store()
            if confirm is not None:
                if rejected:
                    confirm.nack(seq)
                elif stored:
                    self._hold_until_committed(seq)
                    return
                else:
                    confirm.ack(seq)
                self.conn.confirms_ready(self)
            return
        if mandatory:
            self._return(msg, errors.NO_ROUTE, "NO_ROUTE")
        if confirm is not None:
            if held:
                self._hold_until_committed(seq)
                return
            confirm.ack(seq)
            self.conn.confirms_ready(self)

    def _hold_until_committed(self, seq: int) -> None:
        """Confirm `seq` once the store's current batch is durable (group commit: one
        callback per channel per batch, not one per message)."""
        store = self.vhost.store
        self.confirm.hold(seq)
        batch_id = store.batch_id
        self._held.append((batch_id, seq))
        if self._waiting_batch != batch_id:
            self._waiting_batch = batch_id
            store.on_commit(self._committed)

    def _committed(self, batch_id: int, ok: bool) -> None:
        held = self._held
        confirm = self.confirm
        while held and held[0][0] <= batch_id:
            seq = held.popleft()[1]
            if confirm is not None and self.state == OPEN:
                confirm.ack(seq) if ok else confirm.nack(seq)
        if self.state == OPEN:
            self.conn.confirms_ready(self)

    def _publish_reply(self, msg: Message, mandatory: bool, seq: int) -> None:
        target = self.conn.broker.reply_channels.get(msg.routing_key[len(REPLY_TO_PREFIX):])
        if target is not None and target.state == OPEN:
            target.deliver_reply(msg)
        if mandatory or target is None:
            # RabbitMQ treats a reply as unroutable: a mandatory one is returned
            if mandatory:
                self._return(msg, errors.NO_ROUTE, "NO_ROUTE")
        if self.confirm is not None:
            self.confirm.ack(seq)
            self.conn.confirms_ready(self)

    def deliver_reply(self, msg: Message) -> None:
        tag = self.next_tag
        self.next_tag = tag + 1
        self.conn.send(codec.deliver_frame(self.number, codec.shortstr(self.reply_tag), tag, False, msg.xrk))
        self.conn.send(msg.content(self.number, self.conn.frame_max))

    def _return(self, msg: Message, code: int, text: str) -> None:
        self.conn.send(codec.return_frame(self.number, code, text, msg.xrk))
        self.conn.send(msg.content(self.number, self.conn.frame_max))

    # -- confirms and transactions -----------------------------------------------------------------

    def _confirm_select(self, obj, _payload) -> None:
        if self.tx is not None:
            raise errors.precondition("cannot switch from tx to confirm mode")
        if self.confirm is None:
            self.confirm = ConfirmTracker()
        if not obj.nowait:
            self.send(C.Confirm.SelectOk)

    def confirm_frames(self) -> list[bytes]:
        out = []
        for is_ack, seq, multiple in self.confirm.flush():
            out.append((codec.ack_frame if is_ack else codec.nack_frame)(self.number, seq, multiple))
        return out

    def _tx_select(self, obj, _payload) -> None:
        if self.confirm is not None:
            raise errors.precondition("cannot switch from confirm to tx mode")
        if self.tx is None:
            self.tx = []
        self.send(C.Tx.SelectOk)

    def _tx_commit(self, obj, _payload) -> None:
        if self.tx is None:
            raise errors.precondition("channel is not transactional")
        work, self.tx = self.tx, []
        for item in work:
            if item[0] == "publish":
                _, msg, exchange, mandatory = item
                self._route(msg, exchange, mandatory)
        for item in work:
            if item[0] == "settle":
                _, items, rejected, requeue = item
                self._settle(items, requeue=requeue, rejected=rejected)
        store = self.vhost.store
        if work and store is not None and store.persists_messages:
            # commit-ok means durable: publishes and acks of this tx are on disk
            self.conn.suspend(self, store.flush(), lambda: self.send(C.Tx.CommitOk))
            return
        self.send(C.Tx.CommitOk)

    def _tx_rollback(self, obj, _payload) -> None:
        if self.tx is None:
            raise errors.precondition("channel is not transactional")
        work, self.tx = self.tx, []
        # settlements are undone: those deliveries are unacked again (not requeued), in tag
        # order, as RabbitMQ's rollback does
        restored = [pair for item in work if item[0] == "settle" for pair in item[1]]
        if restored:
            merged = list(self.unacked.items()) + restored
            merged.sort(key=_tag_of)
            self.unacked = OrderedDict(merged)
        self.send(C.Tx.RollbackOk)

    # -- teardown ----------------------------------------------------------------------------------

    def teardown(self) -> None:
        """Release everything the channel holds: consumers go, unacked messages return to their
        queues (marked redelivered, in their original positions)."""
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.paused = True
        for consumer in list(self.consumers.values()):
            consumer.queue.remove_consumer(consumer, drain=False)
        queues = [c.queue for c in self.consumers.values()]
        self.consumers.clear()
        self._drop_reply_consumer()
        items = list(self.unacked.items())
        self.unacked.clear()
        if self.tx:
            for item in self.tx:
                if item[0] == "settle":
                    items.extend(item[1])
        self.tx = None
        self._publish = None
        self._header = None
        self._body = []
        by_queue: dict = {}
        for _tag, (entry, queue, _consumer) in items:
            by_queue.setdefault(queue, []).append(entry)
        for queue, entries in by_queue.items():
            queue.requeue(entries)
        for queue in queues:
            self.vhost.consumer_gone(queue)
            if not queue.deleted:
                queue.drain()


def _typed_args(payload: bytes) -> dict:
    try:
        return codec.declare_arguments(payload)
    except Exception:
        return {}


def _tag_of(item) -> int:
    return item[0]


def _ignore(obj, payload) -> None:
    return None


def _prepare_for_queues(msg: Message) -> Message:
    """BCC is routing information only: strip it before any queue sees the message (its
    entry is cut out of the raw headers table; every other byte stays as published)."""
    if msg.header.find(b"\x03BCC") == -1:
        return msg
    from .properties import strip_header

    header = strip_header(msg.header, msg.props, b"BCC")
    if header is None:
        return msg
    clone = msg.copy()
    clone.replace_header(header)
    return clone
