"""Message statistics: the counters behind the management API's `message_stats` and the
Prometheus metrics, and the once-a-second sampler their rates come from.

Counting stays off the hot path's cost: every event is one plain integer increment on the
object it happens to, in code that already touches that object. Nothing else runs per message:
totals (a vhost's, the broker's) are sums taken when someone reads them, and rates are the
per-second change between readings the `Sampler` records once a second.

Where the counters live and who increments them:

- `Queue` (queue.py): `stats_published` (enqueue), `stats_delivered` (every delivery, basic.get
  included: RabbitMQ's deliver_get), `stats_redeliver`; `stats_deliver_no_ack`
  (ChannelSession.deliver), `stats_get`, `stats_get_no_ack`, `stats_get_empty` (basic.get),
  `stats_ack` (settling.settle), `stats_dead_lettered` (Queue.dead_letter).
- `Exchange` (exchanges/base.py): `stats_in` / `stats_out` (publish.publish: messages published
  into it / copies it routed to queues), `stats_dropped` / `stats_returned` (publishing.route:
  unroutable publishes).
- `VHostCounters` (here, `VHost.stats`): what has no queue or exchange at hand (confirms sent,
  queue churn, publishes expecting a confirm on closed channels: an open channel's
  ConfirmTracker counts its own) and the counts of deleted queues and exchanges, folded in when
  they go so that totals never go down.
- `Churn` (here, `Broker.churn`): connections and channels opened and closed.
"""
from __future__ import annotations

import time
from collections import deque

# RabbitMQ's names for a queue's counters, in the order of `queue_counts`
QUEUE_KEYS = ("publish", "deliver_get", "deliver_no_ack", "get", "get_no_ack", "get_empty", "ack", "redeliver")
# an exchange's, in the order of `exchange_counts`
EXCHANGE_KEYS = ("publish_in", "publish_out", "drop_unroutable", "return_unroutable")
# a vhost's (and the broker's), in the order of `VHostCounters.totals`
VHOST_KEYS = (
    "publish", "confirm", "return_unroutable", "drop_unroutable",
    "deliver_get", "deliver", "deliver_no_ack", "get", "get_no_ack", "get_empty", "ack", "redeliver",
    "queue_publish",
)
CHURN_KEYS = (
    "connection_created", "connection_closed", "channel_created", "channel_closed",
    "queue_declared", "queue_created", "queue_deleted",
)

# dead-lettering (rabbit_global_counters): why, and what became of the message
DEAD_LETTER_REASONS = ("expired", "rejected", "maxlen")
AT_MOST_ONCE = "at_most_once"  # the queue's dead-letter exchange exists: republished there
DISABLED = "disabled"  # no dead-letter exchange (or a missing one): the message is dropped

SAMPLE_INTERVAL = 1.0  # seconds between two readings
RATE_WINDOW = 5  # rates are the change over the last this many intervals


def queue_counts(queue) -> tuple:
    """A queue's counters, in QUEUE_KEYS order."""
    return (queue.stats_published, queue.stats_delivered, queue.stats_deliver_no_ack, queue.stats_get,
            queue.stats_get_no_ack, queue.stats_get_empty, queue.stats_ack, queue.stats_redeliver)


def exchange_counts(exchange) -> tuple:
    """An exchange's counters, in EXCHANGE_KEYS order."""
    return (exchange.stats_in, exchange.stats_out, exchange.stats_dropped, exchange.stats_returned)


def consumed_with_ack(counts: tuple) -> int:
    """basic.consume deliveries in manual-ack mode (RabbitMQ's `deliver`): what is left of
    deliver_get once the others are taken out (so delivering counts once, not twice)."""
    _publish, deliver_get, deliver_no_ack, get, get_no_ack = counts[:5]
    return deliver_get - deliver_no_ack - get - get_no_ack


def count_dead_letter(counts: dict, reason: str, strategy: str) -> None:
    key = (reason, strategy)
    counts[key] = counts.get(key, 0) + 1


class Churn:
    """Connections and channels opened and closed, broker-wide (RabbitMQ's churn_rates)."""

    __slots__ = ("connections_opened", "connections_closed", "channels_opened", "channels_closed")

    def __init__(self) -> None:
        self.connections_opened = 0
        self.connections_closed = 0
        self.channels_opened = 0
        self.channels_closed = 0


class VHostCounters:
    """One vhost's counters that belong to no queue or exchange, and those of the queues and
    exchanges it no longer has."""

    __slots__ = ("received_confirm", "confirm", "queues_declared", "queues_created", "queues_deleted",
                 "gone_queues", "gone_exchanges", "gone_dead_lettered", "samples")

    def __init__(self) -> None:
        # publishes on channels in confirm mode, once the channel is closed (an open channel's
        # ConfirmTracker numbers them: next_seq - 1, see `received_confirm_now`)
        self.received_confirm = 0
        self.confirm = 0  # basic.acks sent to publishers (one per message, however coalesced)
        self.queues_declared = 0  # queue.declare and PUT, passive ones included
        self.queues_created = 0
        self.queues_deleted = 0
        self.gone_queues = [0] * len(QUEUE_KEYS)
        self.gone_exchanges = [0] * len(EXCHANGE_KEYS)
        self.gone_dead_lettered: dict = {}
        self.samples = Samples()  # readings of `totals` (for the vhost's rates)

    def queue_gone(self, queue) -> None:
        """`queue` is deleted: its counts stay in the vhost's totals."""
        gone = self.gone_queues
        for i, value in enumerate(queue_counts(queue)):
            gone[i] += value
        for key, value in queue.stats_dead_lettered.items():
            self.gone_dead_lettered[key] = self.gone_dead_lettered.get(key, 0) + value
        self.queues_deleted += 1

    def exchange_gone(self, exchange) -> None:
        gone = self.gone_exchanges
        for i, value in enumerate(exchange_counts(exchange)):
            gone[i] += value

    def totals(self, queues, exchanges) -> tuple:
        """The vhost's totals in VHOST_KEYS order, given its live queues and exchanges."""
        q = list(self.gone_queues)
        for queue in queues:
            for i, value in enumerate(queue_counts(queue)):
                q[i] += value
        x = list(self.gone_exchanges)
        for exchange in exchanges:
            for i, value in enumerate(exchange_counts(exchange)):
                x[i] += value
        publish, deliver_get, deliver_no_ack, get, get_no_ack, get_empty, ack, redeliver = q
        publish_in, _publish_out, dropped, returned = x
        return (publish_in, self.confirm, returned, dropped,
                deliver_get, consumed_with_ack(q), deliver_no_ack, get, get_no_ack, get_empty, ack, redeliver,
                publish)

    def dead_lettered(self, queues) -> dict:
        """{(reason, strategy): messages} over the live queues and the deleted ones."""
        out = dict(self.gone_dead_lettered)
        for queue in queues:
            for key, value in queue.stats_dead_lettered.items():
                out[key] = out.get(key, 0) + value
        return out


def received_confirm_now(vhosts, channels) -> int:
    """Publishes expecting a confirm: those of closed channels (folded into their vhost's
    counters at teardown) and those the open `channels` numbered so far. Counted like this,
    not per publish, to keep the publish path free of it."""
    closed = sum(vhost.stats.received_confirm for vhost in vhosts)
    # a torn-down channel (open False) has been folded in already, even if still listed
    return closed + sum(ch.confirm.next_seq - 1 for ch in channels if ch.open and ch.confirm is not None)


def sum_tuples(rows, width: int) -> tuple:
    out = [0] * width
    for row in rows:
        for i, value in enumerate(row):
            out[i] += value
    return tuple(out)


class Samples:
    """The last few once-a-second readings of one object's counters."""

    __slots__ = ("ring",)

    def __init__(self) -> None:
        self.ring: deque = deque(maxlen=RATE_WINDOW + 1)

    def add(self, now: float, values: tuple) -> None:
        self.ring.append((now, values))

    def rates(self) -> tuple | None:
        """Per-second change of each counter between the oldest and the newest reading kept;
        None before there are two readings."""
        ring = self.ring
        if len(ring) < 2:
            return None
        t0, old = ring[0]
        t1, new = ring[-1]
        elapsed = t1 - t0
        if elapsed <= 0:
            return None
        return tuple(round(max(0, b - a) / elapsed, 2) for a, b in zip(old, new))


class QueueSamples(Samples):
    """A queue's readings, plus what the management API derives from them at no cost to the
    hot path: since when nothing happened in the queue (RabbitMQ's `idle_since`) and the
    share of recent readings in which it could hand a message to a consumer at once
    (`consumer_utilisation`: consumers present and nothing left waiting for them; messages
    waiting next to consumers mean every consumer is at its prefetch limit)."""

    __slots__ = ("idle_since", "last_active", "could_deliver")

    def __init__(self) -> None:
        super().__init__()
        self.idle_since: float | None = None  # wall-clock seconds, None while active
        self.last_active: float | None = None
        self.could_deliver: deque = deque(maxlen=RATE_WINDOW)

    def observe(self, now: float, wall: float, values: tuple, consumers: int, ready: int) -> None:
        if self.ring and self.ring[-1][1] == values:
            if self.idle_since is None:
                self.idle_since = self.last_active if self.last_active is not None else wall
        else:
            self.idle_since = None
            self.last_active = wall
        self.add(now, values)
        self.could_deliver.append(consumers > 0 and ready == 0)

    def utilisation(self) -> float:
        readings = self.could_deliver
        return round(sum(readings) / len(readings), 2) if readings else 0.0


class Sampler:
    """Records, once a second, the counters of every queue, exchange and vhost of a broker
    (and the broker's totals), so that reading a rate is a subtraction.

    `sample()` is the whole job (tests call it with a fake clock); `start(loop)` repeats it
    every SAMPLE_INTERVAL on the broker's loop until `stop()`."""

    def __init__(self, vhosts: dict, churn: Churn, clock=time.monotonic, wall=time.time):
        self.vhosts = vhosts  # the broker's name -> VHost dict, read at every sample
        self.churn = churn
        self.clock = clock
        self.wall = wall
        self.overview = Samples()  # broker totals: VHOST_KEYS
        self.churn_samples = Samples()  # CHURN_KEYS
        self._timer = None

    def sample(self) -> None:
        now, wall = self.clock(), self.wall()
        totals = []
        for vhost in self.vhosts.values():
            queues = list(vhost.queues.values())
            exchanges = list(vhost.exchanges.values())
            for queue in queues:
                if queue.stats_samples is None:
                    queue.stats_samples = QueueSamples()
                queue.stats_samples.observe(now, wall, queue_counts(queue), queue.consumer_count, queue.message_count)
            for exchange in exchanges:
                if exchange.stats_samples is None:
                    exchange.stats_samples = Samples()
                exchange.stats_samples.add(now, exchange_counts(exchange))
            vhost_totals = vhost.stats.totals(queues, exchanges)
            vhost.stats.samples.add(now, vhost_totals)
            totals.append(vhost_totals)
        self.overview.add(now, sum_tuples(totals, len(VHOST_KEYS)))
        self.churn_samples.add(now, churn_counts(self.churn, self.vhosts))

    def start(self, loop) -> None:
        self.sample()
        self._timer = loop.call_later(SAMPLE_INTERVAL, self._tick, loop)

    def _tick(self, loop) -> None:
        self.sample()
        self._timer = loop.call_later(SAMPLE_INTERVAL, self._tick, loop)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def churn_counts(churn: Churn, vhosts: dict) -> tuple:
    """Broker-wide churn in CHURN_KEYS order."""
    declared = created = deleted = 0
    for vhost in vhosts.values():
        counters = vhost.stats
        declared += counters.queues_declared
        created += counters.queues_created
        deleted += counters.queues_deleted
    return (churn.connections_opened, churn.connections_closed, churn.channels_opened, churn.channels_closed,
            declared, created, deleted)
