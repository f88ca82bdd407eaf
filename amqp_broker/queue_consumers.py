"""The consumers of one queue, and the rule that picks who gets the next message: round-robin
among the consumers with credit, unless consumer priorities (x-priority) or a single active
consumer (x-single-active-consumer) apply, as RabbitMQ 3.10 does it for a classic queue.

Picking runs on every delivery, so the rule is chosen once, when a consumer joins or leaves
(`chooser`), and the queue calls the chosen bound method directly: no per-message test of
which rule applies.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from .consumer import Consumer


class ConsumerSet:
    __slots__ = ("members", "exclusive", "single_active", "had_consumer", "_prioritized")

    def __init__(self, single_active: bool = False):
        # in round-robin order: the core rotates it as it delivers
        self.members: deque["Consumer"] = deque()
        self.exclusive: "Consumer | None" = None  # the basic.consume(exclusive) one
        self.single_active = single_active
        self.had_consumer = False  # auto-delete only applies once a consumer came and went
        self._prioritized = False  # some consumer has x-priority != 0

    def add(self, consumer: "Consumer") -> None:
        self.members.append(consumer)
        if consumer.exclusive:
            self.exclusive = consumer
        if consumer.priority:
            self._prioritized = True
        self.had_consumer = True

    def remove(self, consumer: "Consumer") -> bool:
        """False when `consumer` is not one of them."""
        try:
            self.members.remove(consumer)
        except ValueError:
            return False
        if self.exclusive is consumer:
            self.exclusive = None
        self._prioritized = any(c.priority for c in self.members)
        return True

    def chooser(self) -> "Callable[[], Consumer | None]":
        """The rule that picks the next consumer (None when nobody can take a message now).
        Ask again whenever a consumer joins or leaves."""
        if self.single_active:
            return self.active_if_free
        if self._prioritized:
            return self.highest_priority
        return self.round_robin

    def round_robin(self) -> "Consumer | None":
        """The next consumer with credit, in turn (the common case)."""
        members = self.members
        for _ in range(len(members)):
            consumer = members[0]
            members.rotate(-1)
            if consumer.can_take():
                return consumer
        return None

    def active_if_free(self) -> "Consumer | None":
        """Single active consumer: only the longest-standing consumer receives; the others
        wait, even when it has no credit."""
        members = self.members
        first = members[0] if members else None
        return first if first is not None and first.can_take() else None

    def highest_priority(self) -> "Consumer | None":
        """The highest-priority consumer with credit; round-robin among equals (the chosen
        one moves to the back). Lower priorities only get messages while every higher one
        is blocked."""
        members = self.members
        best = None
        for consumer in members:
            if consumer.can_take() and (best is None or consumer.priority > best.priority):
                best = consumer
        if best is not None:
            members.remove(best)
            members.append(best)
        return best
