"""Publisher-confirm bookkeeping for one channel, sans-IO.

Sequence numbers start at 1. A message is *pending* while some queue has not yet accepted it
(for a persistent message in a durable queue: until the commit that holds it is on disk). Once
settled, its number waits in `ready_acks`/`ready_nacks` until the connection flushes its output,
and `flush()` coalesces them exactly as RabbitMQ's rabbit_channel:coalesce_and_send does:

  cutoff = min(smallest still-pending seqno (or next seqno if none), smallest nack in the batch)
  one basic.ack(multiple=true) at the highest ready seqno below the cutoff, the rest one by one.

So a burst of transient publishes costs one basic.ack frame, not one per message.
"""
from __future__ import annotations

from bisect import bisect_left


class ConfirmTracker:
    __slots__ = ("next_seq", "_pending", "ready_acks", "ready_nacks")

    def __init__(self) -> None:
        self.next_seq = 1
        # seqno -> None; insertion order == seqno order, so the first key is the smallest
        self._pending: dict[int, None] = {}
        self.ready_acks: list[int] = []
        self.ready_nacks: list[int] = []

    def publish(self) -> int:
        """Number the next published message."""
        seq = self.next_seq
        self.next_seq = seq + 1
        return seq

    def hold(self, seq: int) -> None:
        """`seq` cannot be confirmed yet (waiting for disk or another queue)."""
        self._pending[seq] = None

    def ack(self, seq: int) -> None:
        self._pending.pop(seq, None)
        self.ready_acks.append(seq)

    def nack(self, seq: int) -> None:
        self._pending.pop(seq, None)
        self.ready_nacks.append(seq)

    @property
    def has_ready(self) -> bool:
        return bool(self.ready_acks or self.ready_nacks)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def pending(self) -> list[int]:
        return list(self._pending)

    def flush(self) -> list[tuple[bool, int, bool]]:
        """Settled confirms to send now: a list of (is_ack, seqno, multiple) in wire order."""
        acks, nacks = self.ready_acks, self.ready_nacks
        if not acks and not nacks:
            return []
        self.ready_acks = []
        self.ready_nacks = []
        pending_min = next(iter(self._pending)) if self._pending else None
        acks.sort()
        nacks.sort()
        out: list[tuple[bool, int, bool]] = []
        if len(acks) == 1:  # send_confirms([MsgSeqNo], _, State): a lone ack is not multiple
            out.append((True, acks[0], False))
        elif acks:
            out.extend(_coalesce(True, acks, pending_min, nacks[0] if nacks else None))
        if nacks:  # send_nacks has no single-seqno clause
            out.extend(_coalesce(False, nacks, pending_min, acks[0] if acks else None))
        return out


def _coalesce(is_ack: bool, seqs: list[int], pending_min, other_min):
    """coalesce_and_send: one multiple=true frame at the highest seqno below the cutoff
    (even if it is the only one), the rest one by one."""
    cutoff = pending_min if pending_min is not None else seqs[-1] + 1
    if other_min is not None and other_min < cutoff:
        cutoff = other_min
    split = bisect_left(seqs, cutoff)
    out = [(is_ack, seqs[split - 1], True)] if split else []
    out.extend((is_ack, s, False) for s in seqs[split:])
    return out
