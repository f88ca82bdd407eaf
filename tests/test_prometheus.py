"""Prometheus metrics (rabbitmq_prometheus's names): `/metrics` and `/metrics/per-object` on
the Prometheus listener and on the management listener, without authentication.

Our broker only (the reference here runs without the rabbitmq_prometheus plugin). The output is
parsed with prometheus_client's own parser. tests/data/RabbitMQ-Overview.json holds the queries
of RabbitMQ's Grafana dashboard RabbitMQ-Overview: every metric they use is served.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pika
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from helpers.broker import BrokerThread
from helpers.process import clean_env, free_port, port_open
from helpers.wait import wait_until

DASHBOARD = Path(__file__).parent / "data" / "RabbitMQ-Overview.json"

@pytest.fixture(scope="module")
def broker():
    with BrokerThread(mgmt_port=0, prometheus_port=0) as bt:
        yield bt


def scrape(base_url: str, path: str = "/metrics") -> dict:
    """{sample name: [(labels, value), ...]} of one scrape."""
    with urllib.request.urlopen(base_url + path, timeout=15) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    samples: dict = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict, name: str, **labels) -> float:
    matching = [v for lbl, v in samples[name] if all(lbl.get(k) == want for k, want in labels.items())]
    assert len(matching) == 1, (name, labels, samples.get(name))
    return matching[0]


def dashboard_metrics() -> set[str]:
    """The metric names the dashboard's queries read (label names and functions stripped)."""
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p["targets"]] + [t["query"] for t in doc["templating"]]
    names = set()
    for expr in exprs:
        expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
        expr = re.sub(r"\b(on|by|group_left)\([^)]*\)", "", expr)  # label lists
        expr = re.sub(r",\s*\w+\)", ")", expr)  # label_values(metric, label)
        names.update(re.findall(r"\brabbitmq_[a-z_]+\b", expr))
    return names


# -- the dashboard ---------------------------------------------------------------------------------

def test_the_dashboard_queries_are_what_we_think():
    names = dashboard_metrics()
    assert len(names) >= 30
    assert "rabbitmq_identity_info" in names and "rabbitmq_channel_messages_published_total" in names
    assert not {"rabbitmq_cluster", "rabbitmq_node"} & names  # labels, not metrics
    assert "rabbitmq_resident_memory_limit_bytes" in names  # the memory alarm's limit


def test_every_metric_of_the_rabbitmq_overview_dashboard_is_served(broker):
    served = set(scrape(broker.broker.prometheus_url))
    missing = dashboard_metrics() - served
    assert not missing, sorted(missing)


# -- listeners and format ------------------------------------------------------------------------

def test_metrics_need_no_login_on_either_listener(broker):
    for base in (broker.broker.prometheus_url, broker.broker.mgmt_url):
        for path in ("/metrics", "/metrics/", "/metrics/per-object"):
            samples = scrape(base, path)
            assert value(samples, "rabbitmq_identity_info") == 1


def test_the_management_api_still_wants_a_login(broker):
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(broker.broker.mgmt_url + "/api/overview", timeout=15)
    assert err.value.code == 401


def test_only_get_on_metrics(broker):
    """The metrics listener answers other methods with 405; on the management listener only
    GET is public, so another method asks for a login first, like every other path there."""
    for base, status in ((broker.broker.prometheus_url, 405), (broker.broker.mgmt_url, 401)):
        request = urllib.request.Request(base + "/metrics", data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=15)
        assert err.value.code == status


def test_build_and_identity_info(broker):
    samples = scrape(broker.broker.prometheus_url)
    [(build, one)] = samples["rabbitmq_build_info"]
    assert one == 1 and build["rabbitmq_version"] == "3.10.8" and build["product_name"] == "amqp-broker"
    [(identity, one)] = samples["rabbitmq_identity_info"]
    assert one == 1 and identity["rabbitmq_node"] == identity["rabbitmq_cluster"]
    assert identity["rabbitmq_node"].startswith("amqp-broker@")


def test_the_default_registry_is_not_used(broker):
    scrape(broker.broker.prometheus_url)
    assert REGISTRY.get_sample_value("rabbitmq_queues") is None


# -- values --------------------------------------------------------------------------------------

@pytest.fixture
def traffic(broker, uid):
    """Some messages through a queue of this test: eight published with confirms, one
    unroutable dropped and one returned; three got (one acked, one without ack, one rejected
    without requeue: dead-lettered, no DLX, strategy disabled), four consumed (three acked, one
    left unacked), one left ready."""
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    ch = conn.channel()
    ch.confirm_delivery()
    queue = f"prom-q-{uid}"
    ch.queue_declare(queue)
    for _ in range(8):
        ch.basic_publish("", queue, b"m")
    ch.basic_publish("amq.direct", "nowhere", b"m")
    with pytest.raises(pika.exceptions.UnroutableError):
        ch.basic_publish("amq.direct", "nowhere", b"m", mandatory=True)
    method, _p, _b = ch.basic_get(queue)
    ch.basic_ack(method.delivery_tag)
    ch.basic_get(queue, auto_ack=True)
    method, _p, _b = ch.basic_get(queue)
    ch.basic_reject(method.delivery_tag, requeue=False)
    ch.basic_qos(prefetch_count=4)
    got = []
    for method, _p, _b in ch.consume(queue, inactivity_timeout=1):
        if method is None:
            break
        got.append(method.delivery_tag)
    ch.cancel()  # no more deliveries: the last message stays ready
    for tag in got[:3]:
        ch.basic_ack(tag)
    ch.queue_declare(queue, passive=True)  # a round trip: the acks are in
    yield queue, ch
    conn.close()


def test_per_object_queue_metrics_carry_vhost_and_queue_labels(broker, traffic):
    queue, _ch = traffic
    samples = scrape(broker.broker.prometheus_url, "/metrics/per-object")
    labels = {"vhost": "/", "queue": queue}
    assert value(samples, "rabbitmq_queue_messages_published_total", **labels) == 8
    assert value(samples, "rabbitmq_queue_messages_ready", **labels) == 1
    assert value(samples, "rabbitmq_queue_messages_unacked", **labels) == 1
    assert value(samples, "rabbitmq_queue_messages", **labels) == 2
    assert value(samples, "rabbitmq_queue_consumers", **labels) == 0
    assert value(samples, "rabbitmq_channel_get_ack_total", **labels) == 2
    assert value(samples, "rabbitmq_channel_get_total", **labels) == 1
    assert value(samples, "rabbitmq_channel_messages_delivered_ack_total", **labels) == 4
    assert value(samples, "rabbitmq_channel_messages_acked_total", **labels) == 4
    assert value(samples, "rabbitmq_channel_messages_unroutable_dropped_total", vhost="/", exchange="amq.direct") >= 1


def test_aggregated_metrics_have_no_object_labels_and_sum_the_objects(broker, traffic):
    aggregated = scrape(broker.broker.prometheus_url)
    per_object = scrape(broker.broker.prometheus_url, "/metrics/per-object")
    for name in ("rabbitmq_queue_messages_ready", "rabbitmq_queue_messages_published_total",
                 "rabbitmq_channel_messages_acked_total", "rabbitmq_channel_messages_published_total"):
        [(labels, total)] = aggregated[name]
        assert labels == {}
        assert total >= sum(v for _l, v in per_object[name])  # deleted queues count in the total only
        assert all("vhost" in lbl for lbl, _v in per_object[name])


def test_global_counters(broker, traffic):
    samples = scrape(broker.broker.prometheus_url)
    proto = {"protocol": "amqp091"}
    classic = {"protocol": "amqp091", "queue_type": "rabbit_classic_queue"}
    received = value(samples, "rabbitmq_global_messages_received_total", **proto)
    routed = value(samples, "rabbitmq_global_messages_routed_total", **proto)
    dropped = value(samples, "rabbitmq_global_messages_unroutable_dropped_total", **proto)
    returned = value(samples, "rabbitmq_global_messages_unroutable_returned_total", **proto)
    assert dropped >= 1 and returned >= 1 and received >= 10
    assert received == routed + dropped + returned
    assert value(samples, "rabbitmq_global_messages_received_confirm_total", **proto) >= 10
    assert value(samples, "rabbitmq_global_messages_confirmed_total", **proto) >= 10
    delivered = value(samples, "rabbitmq_global_messages_delivered_total", **classic)
    parts = sum(value(samples, f"rabbitmq_global_messages_delivered_{kind}_total", **classic)
                for kind in ("consume_manual_ack", "consume_auto_ack", "get_manual_ack", "get_auto_ack"))
    assert delivered == parts >= 7
    assert value(samples, "rabbitmq_global_messages_acknowledged_total", **classic) >= 4
    assert value(samples, "rabbitmq_global_messages_dead_lettered_rejected_total",
                 queue_type="rabbit_classic_queue", dead_letter_strategy="disabled") >= 1
    assert value(samples, "rabbitmq_global_messages_dead_lettered_confirmed_total",
                 queue_type="rabbit_quorum_queue", dead_letter_strategy="at_least_once") == 0


def test_totals_and_channel_gauges(broker, traffic):
    _queue, _ch = traffic
    samples = scrape(broker.broker.prometheus_url)
    assert value(samples, "rabbitmq_connections") >= 1
    assert value(samples, "rabbitmq_channels") >= 1
    assert value(samples, "rabbitmq_channel_messages_unacked") >= 1
    assert value(samples, "rabbitmq_consumer_prefetch") >= 4
    assert value(samples, "rabbitmq_connections_opened_total") >= 1
    assert value(samples, "rabbitmq_queues_created_total") >= 1
    per_object = scrape(broker.broker.prometheus_url, "/metrics/per-object")
    assert any(v == 1 for lbl, v in per_object["rabbitmq_channel_messages_unacked"] if "channel" in lbl)


def test_process_metrics(broker):
    samples = scrape(broker.broker.prometheus_url)
    assert value(samples, "rabbitmq_process_open_fds") > 0
    assert value(samples, "rabbitmq_process_max_fds") >= value(samples, "rabbitmq_process_open_fds")
    assert value(samples, "rabbitmq_process_resident_memory_bytes") > 1 << 20
    assert value(samples, "rabbitmq_disk_space_available_bytes") > 0


def test_two_brokers_have_their_own_metrics(broker, uid):
    with BrokerThread(prometheus_port=0) as other:
        conn = pika.BlockingConnection(pika.URLParameters(other.url))
        conn.channel().queue_declare(f"prom-other-{uid}")
        mine = scrape(broker.broker.prometheus_url, "/metrics/per-object")
        theirs = scrape(other.broker.prometheus_url, "/metrics/per-object")
        conn.close()
    assert {lbl["queue"] for lbl, _v in theirs["rabbitmq_queue_messages"]} == {f"prom-other-{uid}"}
    # our broker may have no queue at all yet (then it has no queue series)
    assert f"prom-other-{uid}" not in {lbl["queue"] for lbl, _v in mine.get("rabbitmq_queue_messages", [])}


# -- serve options ------------------------------------------------------------------------------

def test_serve_prometheus_port_option(serve_cli):
    port = free_port()
    serve_cli("--prometheus-port", str(port), ready_port=port)
    assert "rabbitmq_queues" in scrape(f"http://127.0.0.1:{port}")


def test_serve_prometheus_port_from_the_environment(serve_cli):
    port = free_port()
    serve_cli(env=clean_env(AMQP_BROKER_PROMETHEUS_PORT=str(port)), ready_port=port)
    assert "rabbitmq_queues" in scrape(f"http://127.0.0.1:{port}")


def test_serve_no_prometheus(serve_cli):
    port = free_port()
    serve_cli("--no-prometheus", "--prometheus-port", str(port))
    assert not port_open(port)


def test_connection_and_channel_churn(broker):
    def churn() -> tuple:
        samples = scrape(broker.broker.prometheus_url)
        return tuple(value(samples, f"rabbitmq_{name}_total") for name in
                     ("connections_opened", "connections_closed", "channels_opened", "channels_closed"))

    before = churn()
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    conn.channel().close()
    conn.channel()
    conn.close()
    expected = (before[0] + 1, before[1] + 1, before[2] + 2, before[3] + 2)
    assert wait_until(lambda: churn() == expected), (churn(), expected)


def test_publishes_expecting_confirms_stay_counted_after_their_channel_closes(broker, uid):
    def received_confirm() -> float:
        return value(scrape(broker.broker.prometheus_url), "rabbitmq_global_messages_received_confirm_total",
                     protocol="amqp091")

    before = received_confirm()
    conn = pika.BlockingConnection(pika.URLParameters(broker.url))
    ch = conn.channel()
    ch.confirm_delivery()
    ch.queue_declare(f"prom-confirm-{uid}", auto_delete=True)
    for _ in range(3):
        ch.basic_publish("", f"prom-confirm-{uid}", b"m")
    assert received_confirm() == before + 3  # counted by the open channel
    conn.close()
    assert wait_until(lambda: received_confirm() == before + 3)  # and by its vhost once closed
