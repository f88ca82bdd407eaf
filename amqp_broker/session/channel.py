"""One channel's state: consumers, unacked deliveries, prefetch limits, confirm and tx modes,
the publish being assembled, the direct reply-to consumer.

The methods of each AMQP class are handled in a module of their own (exchange_methods,
queue_methods, consuming, settling, confirm_tx; content assembly in content.py, publish checks
in publishing.py); this class keeps the state they share and the two per-message operations
that must stay cheap, deliver and ack.
"""
from __future__ import annotations

from collections import OrderedDict, deque
from functools import partial

from pamqp import commands as C

from .. import codec, errors
from ..errors import AMQPError
from ..message import Message
from . import dispatch, publishing, settling
from .content import ContentAssembler


class ChannelSession:
    def __init__(self, session, number: int):
        self.session = session
        self.out = session.outbox  # deliveries go straight to it (the per-message path)
        self.number = number
        self.vhost = session.vhost
        self.delayed = session.broker.delayed  # x-delayed-message holds, for the publish path
        self.open = True  # False once torn down (closed, or closing after our channel.close)
        self.paused = session.write_paused
        self.consumers: dict = {}  # tag -> Consumer
        # delivery tag -> (entry, queue, consumer or None); ordered by tag
        self.unacked: OrderedDict[int, tuple] = OrderedDict()
        self.next_tag = 1
        self.prefetch = 0
        self.global_prefetch = 0
        self.confirm = None  # ConfirmTracker in confirm mode
        self.tx = None  # Transaction in tx mode
        self.last_queue = ""  # AMQP's "most recently declared queue" shortcut
        self.reply_tag: str | None = None  # direct reply-to consumer tag
        self.reply_key: str | None = None
        # a complete publish goes straight to the publish checks (a partial: no extra frame)
        self.content = ContentAssembler(partial(publishing.publish_from_client, self), session.broker.max_message_size)
        # publisher confirms waiting for the store: (batch id, seqno) in publish order
        self._held: deque = deque()
        self._waiting_batch = 0
        session.broker.churn.channels_opened += 1

    # -- plumbing ----------------------------------------------------------------------------

    def send(self, cls, **kwargs) -> None:
        self.out.send(codec.encode(self.number, cls, **kwargs))

    @property
    def unacked_count(self) -> int:
        return len(self.unacked)

    def handle_method(self, obj) -> None:
        handler = dispatch.HANDLERS.get(type(obj))
        if handler is None:
            raise AMQPError(errors.COMMAND_INVALID, "unimplemented method")
        handler(self, obj)

    def queue_name(self, name: str) -> str:
        """AMQP's empty-name shortcut for the channel's most recently declared queue."""
        if name:
            return name
        if not self.last_queue:
            raise AMQPError(errors.NOT_FOUND, "no previously declared queue")
        return self.last_queue

    # -- delivering ----------------------------------------------------------------------------

    def deliver(self, consumer, entry) -> None:
        """Push one message to a consumer (called by the queue, which checked credit)."""
        tag = self.next_tag
        self.next_tag = tag + 1
        if consumer.no_ack:
            queue = consumer.queue
            queue.stats_deliver_no_ack += 1
            queue.forget(entry)
        else:
            self.unacked[tag] = (entry, consumer.queue, consumer)
            consumer.unacked += 1
        msg = entry.msg
        out = self.out
        out.send(codec.deliver_frame(self.number, consumer.ctag, tag, entry.redelivered, msg.xrk))
        out.send(msg.content(self.number, self.session.frame_max))

    def deliver_reply(self, msg: Message) -> None:
        tag = self.next_tag
        self.next_tag = tag + 1
        out = self.out
        out.send(codec.deliver_frame(self.number, codec.shortstr(self.reply_tag), tag, False, msg.xrk))
        out.send(msg.content(self.number, self.session.frame_max))

    def send_return(self, msg: Message, code: int, text: str) -> None:
        out = self.out
        out.send(codec.return_frame(self.number, code, text, msg.xrk))
        out.send(msg.content(self.number, self.session.frame_max))

    def drain_consumers(self) -> None:
        for queue in {c.queue for c in self.consumers.values()}:
            queue.drain()

    def resume(self) -> None:
        """The connection's socket drained: deliver again."""
        self.paused = False
        self.drain_consumers()

    def cancelled_by_server(self, consumer) -> None:
        """The queue went away under a consumer: tell clients that can hear it."""
        if self.consumers.pop(consumer.tag, None) is None or not self.open:
            return
        if self.session.capabilities.get("consumer_cancel_notify"):
            self.send(C.Basic.Cancel, consumer_tag=consumer.tag, nowait=True)

    # -- settling ------------------------------------------------------------------------------

    def ack(self, tag: int, multiple: bool) -> None:
        """basic.ack (the hot path: called straight from the engine's frame loop)."""
        items = settling.collect(self.unacked, tag, multiple)
        if self.tx is not None:
            self.tx.settle(items, rejected=False, requeue=False)
            return
        settling.settle(self, items, requeue=False)

    # -- publisher confirms --------------------------------------------------------------------

    def hold_until_committed(self, seq: int) -> None:
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
            if confirm is not None and self.open:
                confirm.ack(seq) if ok else confirm.nack(seq)
        if self.open:
            self.out.confirms_ready(self)

    def confirm_frames(self) -> list[bytes]:
        confirm = self.confirm
        if confirm is None:
            return []
        self.vhost.stats.confirm += len(confirm.ready_acks)  # message statistics: one per message
        number = self.number
        return [(codec.ack_frame if is_ack else codec.nack_frame)(number, seq, multiple)
                for is_ack, seq, multiple in confirm.flush()]

    # -- teardown ------------------------------------------------------------------------------

    def close_ok(self) -> None:
        """The peer's channel.close, answered."""
        self.teardown()
        self.out.send(codec.encode(self.number, C.Channel.CloseOk))
        self.session.channel_closed(self)

    def teardown(self) -> None:
        """Release everything the channel holds: consumers go, unacked messages return to their
        queues (marked redelivered, in their original positions)."""
        if not self.open:
            return
        self.open = False
        self.paused = True
        self.session.broker.churn.channels_closed += 1
        if self.confirm is not None:  # its publishes expecting a confirm, counted by the tracker
            self.vhost.stats.received_confirm += self.confirm.next_seq - 1
        for consumer in list(self.consumers.values()):
            consumer.queue.remove_consumer(consumer, drain=False)
        queues = [c.queue for c in self.consumers.values()]
        self.consumers.clear()
        self.drop_reply_consumer()
        items = list(self.unacked.items())
        self.unacked.clear()
        if self.tx is not None:
            items.extend(self.tx.pending_settlements())
        self.tx = None
        self.content.reset()
        settling.requeue_all(items)
        for queue in queues:
            self.vhost.consumer_gone(queue)
            if not queue.deleted:
                queue.drain()

    def drop_reply_consumer(self) -> None:
        if self.reply_key is not None:
            self.session.broker.reply_channels.pop(self.reply_key, None)
        self.reply_tag = None
        self.reply_key = None
