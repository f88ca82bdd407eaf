"""Prometheus metrics with rabbitmq_prometheus's names (3.10), from one custom collector per
broker over a registry of its own (never prometheus_client's global default registry).

Two views, as the plugin's two endpoints:

- aggregated (`/metrics`): every family without per-object labels, summed over the broker;
- per object (`/metrics/per-object`): the queue, exchange and channel families carry `vhost`
  and `queue` / `exchange` / `channel` labels, one sample per object.

The families come from rabbitmq_prometheus's core collector
(deps/rabbitmq_prometheus/src/collectors/prometheus_rabbitmq_core_metrics_collector.erl) and
rabbit_global_counters.erl. Our counters are kept per queue and per exchange, not per channel,
so the `rabbitmq_channel_*` counter families are labelled by queue or exchange in the per-object
view (RabbitMQ labels them by channel and queue/exchange). Not served, deliberately: the Erlang
VM's internals (erlang_*, schema_db_*, io_*, msg_store_*, queue_index_*, raft_*), and the
file descriptor alarm (this broker has none); see tests/test_prometheus.py. The memory and disk
limits and alarms are served as rabbitmq_prometheus serves them (its core collector and
prometheus_rabbitmq_alarm_metrics_collector.erl).
"""
from __future__ import annotations

import os
import shutil
import sys
from collections import Counter
from importlib.metadata import version

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, UnknownMetricFamily

from .. import __version__
from ..alarms import DISK, MEMORY, resident_memory
from ..stats import (
    AT_MOST_ONCE, DEAD_LETTER_REASONS, DISABLED, QUEUE_KEYS, VHOST_KEYS,
    churn_counts, consumed_with_ack, exchange_counts, queue_counts, received_confirm_now, sum_tuples,
)
from .connections import opened_sessions
from .overview import PRODUCT_NAME, RABBITMQ_VERSION
from .queues import unacked_by_queue

PROTOCOL = "amqp091"
CLASSIC = "rabbit_classic_queue"
QUORUM = "rabbit_quorum_queue"

# rabbit_global_counters: (name, help)
PROTOCOL_COUNTERS = (
    ("messages_received_total", "Total number of messages received from publishers"),
    ("messages_received_confirm_total", "Total number of messages received from publishers expecting confirmations"),
    ("messages_routed_total", "Total number of messages routed to queues or streams"),
    ("messages_unroutable_dropped_total",
     "Total number of messages published as non-mandatory into an exchange and dropped as unroutable"),
    ("messages_unroutable_returned_total",
     "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable"),
    ("messages_confirmed_total", "Total number of messages confirmed to publishers"),
)
QUEUE_TYPE_COUNTERS = (
    ("messages_delivered_total", "Total number of messages delivered to consumers"),
    ("messages_delivered_consume_manual_ack_total",
     "Total number of messages delivered to consumers using basic.consume with manual acknowledgment"),
    ("messages_delivered_consume_auto_ack_total",
     "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment"),
    ("messages_delivered_get_manual_ack_total",
     "Total number of messages delivered to consumers using basic.get with manual acknowledgment"),
    ("messages_delivered_get_auto_ack_total",
     "Total number of messages delivered to consumers using basic.get with automatic acknowledgment"),
    ("messages_get_empty_total", "Total number of times basic.get operations fetched no message"),
    ("messages_redelivered_total", "Total number of messages redelivered to consumers"),
    ("messages_acknowledged_total", "Total number of messages acknowledged by consumers"),
)
DEAD_LETTER_HELP = {
    "expired": "Total number of messages dead-lettered due to message TTL exceeded",
    "rejected": "Total number of messages dead-lettered due to basic.reject or basic.nack",
    "maxlen": "Total number of messages dead-lettered due to overflow drop-head or reject-publish-dlx",
}
# (queue index, name, help) of the channel_queue_metrics family, from a queue's counters
CHANNEL_QUEUE = (
    ("get", "channel_get_ack_total", "Total number of messages fetched with basic.get in manual acknowledgement mode"),
    ("get_no_ack", "channel_get_total",
     "Total number of messages fetched with basic.get in automatic acknowledgement mode"),
    ("deliver", "channel_messages_delivered_ack_total",
     "Total number of messages delivered to consumers in manual acknowledgement mode"),
    ("deliver_no_ack", "channel_messages_delivered_total",
     "Total number of messages delivered to consumers in automatic acknowledgement mode"),
    ("redeliver", "channel_messages_redelivered_total", "Total number of messages redelivered to consumers"),
    ("ack", "channel_messages_acked_total", "Total number of messages acknowledged by consumers"),
    ("get_empty", "channel_get_empty_total", "Total number of times basic.get operations fetched no message"),
)
CHURN = (
    ("connections_opened_total", "Total number of connections opened"),
    ("connections_closed_total", "Total number of connections closed or terminated"),
    ("channels_opened_total", "Total number of channels opened"),
    ("channels_closed_total", "Total number of channels closed"),
    ("queues_declared_total", "Total number of queues declared"),
    ("queues_created_total", "Total number of queues created"),
    ("queues_deleted_total", "Total number of queues deleted"),
)


def _name(short: str) -> str:
    return "rabbitmq_" + short


class BrokerCollector:
    """A prometheus_client custom collector: everything is read from the broker at scrape time."""

    def __init__(self, broker, node: str, per_object: bool):
        self.broker = broker
        self.node = node  # the node name the management API shows
        self.per_object = per_object

    def describe(self):
        return []  # no fixed set up front: the families depend on what exists at scrape time

    def collect(self):
        broker = self.broker
        vhosts = list(broker.vhosts.values())
        sessions = opened_sessions(broker)
        channels = [ch for session in sessions for ch in session.channels.values()]
        unacked = unacked_by_queue(broker)
        queues = [(v, q) for v in vhosts for q in v.queues.values()]
        yield from self._totals(sessions, channels, queues)
        yield from self._churn()
        yield from self._queues(queues, unacked)
        yield from self._channels(channels)
        yield from self._channel_exchange(vhosts)
        yield from self._channel_queue(vhosts, queues)
        yield from self._global(vhosts, channels)
        yield from self._process()
        yield from self._alarms()
        yield from self._identity()

    # -- families ----------------------------------------------------------------------------

    def _totals(self, sessions, channels, queues):
        yield _gauge("connections", "Connections currently open", len(sessions))
        yield _gauge("channels", "Channels currently open", len(channels))
        yield _gauge("consumers", "Consumers currently connected", sum(q.consumer_count for _v, q in queues))
        yield _gauge("queues", "Queues available", len(queues))

    def _churn(self):
        values = churn_counts(self.broker.churn, self.broker.vhosts)
        for (name, help_text), value in zip(CHURN, values):
            family = CounterMetricFamily(_name(name), help_text)
            family.add_metric([], value)
            yield family

    def _queues(self, queues, unacked: Counter):
        rows = [(v, q, q.message_count, unacked.get(q, 0)) for v, q in queues]
        gauges = (
            ("queue_messages_ready", "Messages ready to be delivered to consumers", lambda r: r[2]),
            ("queue_messages_unacked", "Messages delivered to consumers but not yet acknowledged", lambda r: r[3]),
            ("queue_messages", "Sum of ready and unacknowledged messages - total queue depth",
             lambda r: r[2] + r[3]),
            ("queue_messages_ready_bytes", "Size in bytes of ready messages", lambda r: r[1].message_bytes),
            ("queue_consumers", "Consumers on a queue", lambda r: r[1].consumer_count),
        )
        for name, help_text, value_of in gauges:
            yield self._per_queue(GaugeMetricFamily, name, help_text, rows, value_of)
        yield self._per_queue(CounterMetricFamily, "queue_messages_published_total",
                              "Total number of messages published to queues", rows,
                              lambda r: r[1].stats_published, gone=self._gone_queue_counts()[0])

    def _gone_queue_counts(self) -> tuple:
        return sum_tuples((v.stats.gone_queues for v in self.broker.vhosts.values()), len(QUEUE_KEYS))

    def _per_queue(self, family_type, name, help_text, rows, value_of, gone: int = 0):
        if self.per_object:
            family = family_type(_name(name), help_text, labels=["vhost", "queue"])
            for row in rows:
                family.add_metric([row[0].name, row[1].name], value_of(row))
        else:
            family = family_type(_name(name), help_text)
            family.add_metric([], sum(value_of(row) for row in rows) + gone)
        return family

    def _channels(self, channels):
        gauges = (
            ("channel_consumers", "Consumers on a channel", lambda ch: len(ch.consumers)),
            ("channel_messages_unacked", "Delivered but not yet acknowledged messages", lambda ch: len(ch.unacked)),
            ("channel_messages_unconfirmed", "Published but not yet confirmed messages",
             lambda ch: ch.confirm.pending_count if ch.confirm is not None else 0),
            ("channel_messages_uncommitted", "Messages received in a transaction but not yet committed",
             lambda ch: len(ch.tx.publishes) if ch.tx is not None else 0),
            ("channel_acks_uncommitted", "Message acknowledgements in a transaction not yet committed",
             lambda ch: len(ch.tx.pending_settlements()) if ch.tx is not None else 0),
            ("consumer_prefetch", "Limit of unacknowledged messages for each consumer", lambda ch: ch.prefetch),
            ("channel_prefetch", "Total limit of unacknowledged messages for all consumers on a channel",
             lambda ch: ch.global_prefetch),
        )
        for name, help_text, value_of in gauges:
            if self.per_object:
                family = GaugeMetricFamily(_name(name), help_text, labels=["channel"])
                for ch in channels:
                    family.add_metric([f"{ch.session.name} ({ch.number})"], value_of(ch))
            else:
                family = GaugeMetricFamily(_name(name), help_text)
                family.add_metric([], sum(value_of(ch) for ch in channels))
            yield family

    def _channel_exchange(self, vhosts):
        counters = (
            (0, "channel_messages_published_total", "Total number of messages published into an exchange on a channel"),
            (3, "channel_messages_unroutable_returned_total",
             "Total number of messages published as mandatory into an exchange and returned to the publisher as "
             "unroutable"),
            (2, "channel_messages_unroutable_dropped_total",
             "Total number of messages published as non-mandatory into an exchange and dropped as unroutable"),
        )
        exchanges = [(v, x, exchange_counts(x)) for v in vhosts for x in v.exchanges.values()]
        for index, name, help_text in counters:
            if self.per_object:
                family = CounterMetricFamily(_name(name), help_text, labels=["vhost", "exchange"])
                for v, x, counts in exchanges:
                    family.add_metric([v.name, x.name], counts[index])
            else:
                family = CounterMetricFamily(_name(name), help_text)
                gone = sum(v.stats.gone_exchanges[index] for v in vhosts)
                family.add_metric([], sum(counts[index] for _v, _x, counts in exchanges) + gone)
            yield family
        help_text = "Total number of messages published into an exchange and confirmed on the channel"
        if self.per_object:  # confirms are counted per vhost: no exchange to name
            family = CounterMetricFamily(_name("channel_messages_confirmed_total"), help_text, labels=["vhost"])
            for v in vhosts:
                family.add_metric([v.name], v.stats.confirm)
        else:
            family = CounterMetricFamily(_name("channel_messages_confirmed_total"), help_text)
            family.add_metric([], sum(v.stats.confirm for v in vhosts))
        yield family

    def _channel_queue(self, vhosts, queues):
        rows = [(v, q, queue_counts(q)) for v, q in queues]
        gone = self._gone_queue_counts()
        for key, name, help_text in CHANNEL_QUEUE:
            value_of = _queue_value(key)
            if self.per_object:
                family = CounterMetricFamily(_name(name), help_text, labels=["vhost", "queue"])
                for v, q, counts in rows:
                    family.add_metric([v.name, q.name], value_of(counts))
            else:
                family = CounterMetricFamily(_name(name), help_text)
                family.add_metric([], sum(value_of(counts) for _v, _q, counts in rows) + value_of(gone))
            yield family

    def _global(self, vhosts, channels):
        totals = dict(zip(VHOST_KEYS, sum_tuples(
            (v.stats.totals(v.queues.values(), v.exchanges.values()) for v in vhosts), len(VHOST_KEYS))))
        unroutable = totals["drop_unroutable"] + totals["return_unroutable"]
        protocol_values = (totals["publish"], received_confirm_now(vhosts, channels), totals["publish"] - unroutable,
                           totals["drop_unroutable"], totals["return_unroutable"], totals["confirm"])
        for (name, help_text), value in zip(PROTOCOL_COUNTERS, protocol_values):
            family = CounterMetricFamily(_name("global_" + name), help_text, labels=["protocol"])
            family.add_metric([PROTOCOL], value)
            yield family
        queue_type_values = (totals["deliver_get"], totals["deliver"], totals["deliver_no_ack"], totals["get"],
                             totals["get_no_ack"], totals["get_empty"], totals["redeliver"], totals["ack"])
        for (name, help_text), value in zip(QUEUE_TYPE_COUNTERS, queue_type_values):
            family = CounterMetricFamily(_name("global_" + name), help_text, labels=["protocol", "queue_type"])
            family.add_metric([PROTOCOL, CLASSIC], value)
            yield family
        dead: Counter = Counter()
        for v in vhosts:
            dead.update(v.stats.dead_lettered(v.queues.values()))
        labels = ["queue_type", "dead_letter_strategy"]
        # the label sets RabbitMQ 3.10 starts with; quorum queues do not exist here (always 0)
        family = CounterMetricFamily(_name("global_messages_dead_lettered_confirmed_total"),
                                     "Total number of messages dead-lettered and confirmed by target queues", labels=labels)
        family.add_metric([QUORUM, "at_least_once"], 0)
        yield family
        family = CounterMetricFamily(_name("global_messages_dead_lettered_delivery_limit_total"),
                                     "Total number of messages dead-lettered due to delivery-limit exceeded", labels=labels)
        for strategy in ("at_least_once", AT_MOST_ONCE, DISABLED):
            family.add_metric([QUORUM, strategy], 0)
        yield family
        for reason in DEAD_LETTER_REASONS:
            family = CounterMetricFamily(_name(f"global_messages_dead_lettered_{reason}_total"),
                                         DEAD_LETTER_HELP[reason], labels=labels)
            for strategy in (AT_MOST_ONCE, DISABLED):
                family.add_metric([CLASSIC, strategy], dead.get((reason, strategy), 0))
            yield family

    def _process(self):
        fds = _open_fds()
        if fds is not None:
            yield _gauge("process_open_fds", "Open file descriptors", fds)
        limit = _fd_limit()
        if limit is not None:
            yield _gauge("process_max_fds", "Open file descriptors limit", limit)
            # no separate socket limit here: every socket is a file descriptor
            yield _gauge("process_max_tcp_sockets", "Open TCP sockets limit", limit)
        yield _gauge("process_open_tcp_sockets", "Open TCP sockets", len(self.broker.connections))
        rss = resident_memory()
        if rss is not None:
            yield _gauge("process_resident_memory_bytes", "Memory used in bytes", rss)
        data_dir = self.broker.data_dir if self.broker.data_dir is not None else os.getcwd()
        try:
            free = shutil.disk_usage(data_dir).free
        except OSError:
            free = None
        if free is not None:
            yield _gauge("disk_space_available_bytes", "Disk space available in bytes", free)

    def _alarms(self):
        alarms = self.broker.alarms
        yield _gauge("resident_memory_limit_bytes", "Memory high watermark in bytes", alarms.memory_limit)
        yield _gauge("disk_space_available_limit_bytes", "Free disk space low watermark in bytes",
                     alarms.disk_free_limit)
        yield _gauge("alarms_memory_used_watermark", "is 1 if VM memory watermark threshold has been reached",
                     int(MEMORY in alarms.active))
        yield _gauge("alarms_free_disk_space_watermark",
                     "is 1 if free disk space watermark threshold has been reached", int(DISK in alarms.active))

    def _identity(self):
        family = UnknownMetricFamily(
            _name("build_info"), "RabbitMQ & Erlang/OTP version info",
            labels=["product_name", "product_version", "rabbitmq_version", "prometheus_plugin_version",
                    "prometheus_client_version", "python_version"])
        family.add_metric([PRODUCT_NAME, __version__, RABBITMQ_VERSION, __version__,
                           version("prometheus-client"), sys.version.split()[0]], 1)
        yield family
        family = UnknownMetricFamily(_name("identity_info"), "RabbitMQ node & cluster identity info",
                                     labels=["rabbitmq_node", "rabbitmq_cluster"])
        family.add_metric([self.node, self.node], 1)  # one node, its own cluster (as the overview)
        yield family


def _gauge(name: str, help_text: str, value) -> GaugeMetricFamily:
    return GaugeMetricFamily(_name(name), help_text, value=value)


def _queue_value(key: str):
    """The function reading RabbitMQ's `key` out of a queue_counts tuple."""
    if key == "deliver":
        return consumed_with_ack
    index = QUEUE_KEYS.index(key)
    return lambda counts: counts[index]


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None  # not Linux


def _fd_limit() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else None


class BrokerMetrics:
    """The two registries of one broker (aggregated and per object) and their text output."""

    def __init__(self, broker, node: str):
        self.aggregated = CollectorRegistry(auto_describe=False)
        self.aggregated.register(BrokerCollector(broker, node, per_object=False))
        self.per_object = CollectorRegistry(auto_describe=False)
        self.per_object.register(BrokerCollector(broker, node, per_object=True))

    def render(self, per_object: bool = False) -> bytes:
        """The Prometheus text exposition format (version 0.0.4)."""
        return generate_latest(self.per_object if per_object else self.aggregated)

