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
        out: list[tuple[bool, int, bool]] = []
        pending_min = next(iter(self._pending)) if self._pending else self.next_seq
        # Acks go first (as in RabbitMQ); a multiple ack must not reach over a nack that is
        # still unsent, nor over a message that is still pending.
        if nacks:
            nacks.sort()
        if acks:
            acks.sort()
            cutoff = min(pending_min, nacks[0]) if nacks else pending_min
            out.extend(self._coalesce(True, acks, cutoff))
        if nacks:
            out.extend(self._coalesce(False, nacks, pending_min))
        return out

    @staticmethod
    def _coalesce(is_ack: bool, seqs: list[int], cutoff: int):
        below = [s for s in seqs if s < cutoff] if seqs[-1] >= cutoff else seqs
        out = []
        if below:
            if len(below) == 1:
                out.append((is_ack, below[0], False))
            else:
                out.append((is_ack, below[-1], True))
        if len(below) != len(seqs):
            out.extend((is_ack, s, False) for s in seqs if s >= cutoff)
        return out
