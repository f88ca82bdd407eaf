"""confirm.select and the tx class: publisher confirms and transactions on a channel.

A transaction buffers publishes and settlements as typed records; commit applies publishes
first, then settlements (as RabbitMQ does), and commit-ok waits for the disk when the store
persists messages, so commit-ok means durable.
"""
from __future__ import annotations

from collections import OrderedDict

from pamqp import commands as C

from .. import errors
from ..confirms import ConfirmTracker
from . import publishing, settling


class _Publish:
    __slots__ = ("msg", "exchange", "mandatory")

    def __init__(self, msg, exchange, mandatory: bool):
        self.msg = msg
        self.exchange = exchange
        self.mandatory = mandatory


class _Settle:
    __slots__ = ("items", "rejected", "requeue")

    def __init__(self, items: list, rejected: bool, requeue: bool):
        self.items = items  # (delivery tag, unacked record) pairs
        self.rejected = rejected
        self.requeue = requeue


class Transaction:
    """What a tx-mode channel has done since its last commit or rollback."""

    __slots__ = ("publishes", "settlements")

    def __init__(self) -> None:
        self.publishes: list[_Publish] = []
        self.settlements: list[_Settle] = []

    def publish(self, msg, exchange, mandatory: bool) -> None:
        self.publishes.append(_Publish(msg, exchange, mandatory))

    def settle(self, items: list, rejected: bool, requeue: bool) -> None:
        self.settlements.append(_Settle(items, rejected, requeue))

    def pending_settlements(self) -> list:
        """The deliveries settled in this transaction (unacked again if it never commits)."""
        return [pair for record in self.settlements for pair in record.items]

    def __bool__(self) -> bool:
        return bool(self.publishes or self.settlements)


def confirm_select(ch, obj) -> None:
    if ch.tx is not None:
        raise errors.precondition("cannot switch from tx to confirm mode")
    if ch.confirm is None:
        ch.confirm = ConfirmTracker()
    if not obj.nowait:
        ch.send(C.Confirm.SelectOk)


def tx_select(ch, obj) -> None:
    if ch.confirm is not None:
        raise errors.precondition("cannot switch from confirm to tx mode")
    if ch.tx is None:
        ch.tx = Transaction()
    ch.send(C.Tx.SelectOk)


def tx_commit(ch, obj) -> None:
    if ch.tx is None:
        raise errors.precondition("channel is not transactional")
    work, ch.tx = ch.tx, Transaction()
    for record in work.publishes:
        publishing.route(ch, record.msg, record.exchange, record.mandatory)
    for record in work.settlements:
        settling.settle(ch, record.items, requeue=record.requeue, rejected=record.rejected)
    store = ch.vhost.store
    if work and store is not None and store.persists_messages:
        # commit-ok means durable: publishes and acks of this tx are on disk
        ch.session.suspend(ch, store.flush(), lambda: ch.send(C.Tx.CommitOk))
        return
    ch.send(C.Tx.CommitOk)


def tx_rollback(ch, obj) -> None:
    if ch.tx is None:
        raise errors.precondition("channel is not transactional")
    work, ch.tx = ch.tx, Transaction()
    # settlements are undone: those deliveries are unacked again (not requeued), in tag
    # order, as RabbitMQ's rollback does
    restored = work.pending_settlements()
    if restored:
        merged = list(ch.unacked.items()) + restored
        merged.sort(key=_tag_of)
        ch.unacked = OrderedDict(merged)
    ch.send(C.Tx.RollbackOk)


def _tag_of(item) -> int:
    return item[0]


HANDLERS = {
    C.Confirm.Select: confirm_select,
    C.Tx.Select: tx_select,
    C.Tx.Commit: tx_commit,
    C.Tx.Rollback: tx_rollback,
}
