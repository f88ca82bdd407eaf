"""Smoke test of the benchmark tool (benchmarks/amqp_bench.py): every scenario, tiny counts,
against the broker under test (`amqp_url`: ours, or the reference RabbitMQ when
AMQP_REFERENCE_URL is set). Checks that every message was confirmed / delivered, not speed."""
from __future__ import annotations

import ast
import importlib.util
import os
import sys
from pathlib import Path

import pytest

BENCH_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "amqp_bench.py"


def _load_bench():
    name = "amqp_bench_under_test"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH_PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


bench = _load_bench()

COUNT = 200
SCENARIOS = list(bench.ALL_SCENARIOS)
# amq.rabbitmq.reply-to is a RabbitMQ extension: always checked against the reference, and
# against our broker only when asked for (AMQP_BENCH_DIRECT_REPLY_TO=1).
if os.environ.get("AMQP_REFERENCE_URL") or os.environ.get("AMQP_BENCH_DIRECT_REPLY_TO"):
    SCENARIOS.append("rpc-direct")


def test_bench_does_not_import_the_broker():
    """Neither the entry point nor its package (benchmarks/amqpbench/) imports amqp_broker."""
    files = [BENCH_PATH, *sorted((BENCH_PATH.parent / "amqpbench").glob("*.py"))]
    assert len(files) > 2, files
    for path in files:
        tree = ast.parse(path.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(m.split(".")[0] == "amqp_broker" for m in imported), (path, imported)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_scenario_delivers_everything(scenario, amqp_url):
    res = await bench.run_scenario(scenario, amqp_url, count=COUNT, size=100, window=50,
                                   prefetch=20, fanout_queues=3, timeout=60, stall_timeout=15)
    c = res["counts"]
    assert c["nacked"] == 0, res
    assert c["published"] == COUNT, res
    assert c["confirmed"] == COUNT, res
    if scenario.startswith("publish-confirm"):
        assert "delivered" not in c
    elif scenario == "fanout":
        assert c["delivered"] == c["expected_delivered"] == COUNT * 3, res
    else:
        assert c["delivered"] == COUNT, res
    if scenario.startswith("rpc"):
        assert c["mismatched"] == 0, res
    for metric, _higher in bench.METRICS[scenario]:
        value = res["metrics"][metric]
        assert value == value and value > 0, (metric, res)  # not NaN, positive


async def test_broker_errors_are_reported(amqp_url):
    """A channel error from the broker surfaces as BrokerClosed with the reply code/text."""
    conn = await bench.Connection.open(amqp_url)
    try:
        ch = await conn.channel()
        with pytest.raises(bench.BrokerClosed, match="404"):
            await ch.queue_declare("amqp-bench-surely-missing-queue-xyz", passive=True)
    finally:
        await conn.close()


@pytest.mark.timeout(90)
async def test_backlog_scenario_delivers_everything_in_order(amqp_url):
    """`backlog` is not part of `all` (millions of messages by default); tiny here. Without a
    broker pid there are no RSS metrics, only the rates."""
    assert "backlog" in bench.SCENARIOS and "backlog" not in bench.ALL_SCENARIOS
    res = await bench.run_scenario("backlog", amqp_url, count=500, size=100, window=50,
                                   prefetch=20, timeout=60, stall_timeout=15)
    c = res["counts"]
    assert c["published"] == c["confirmed"] == c["delivered"] == 500, res
    assert c["nacked"] == 0 and c["out_of_order"] == 0, res
    assert res["metrics"]["publish msg/s"] > 0 and res["metrics"]["consume msg/s"] > 0


async def test_backlog_scenario_samples_rss_of_the_given_pid(amqp_url):
    """With a pid (here: this process, which is good enough to check the plumbing) the RSS
    metrics are reported."""
    res = await bench.run_scenario("backlog", amqp_url, count=200, size=100, window=50,
                                   prefetch=20, timeout=60, stall_timeout=15, broker_pid=os.getpid())
    m = res["metrics"]
    for key in ("peak RSS publish MB", "RSS after publish MB", "peak RSS consume MB"):
        assert 1 < m[key] < 100_000, (key, m)



@pytest.mark.timeout(90)
async def test_ttl_scenario_dead_letters_everything_on_time(amqp_url):
    """`ttl` (not part of `all`: it mostly waits for TTLs to run out), tiny here: 200 messages
    with per-message TTLs of 100-300 ms, then 200 with a queue-level TTL of 200 ms. Every one
    is dead-lettered, none early. Lateness is only bounded loosely (RabbitMQ expires
    per-message TTLs at the queue head only, so with mixed TTLs its lateness is up to the
    spread of the TTLs)."""
    assert "ttl" in bench.SCENARIOS and "ttl" not in bench.ALL_SCENARIOS
    res = await bench.run_scenario("ttl", amqp_url, count=COUNT, size=100, window=50, prefetch=20,
                                   timeout=60, stall_timeout=15, ttl_min=100, ttl_max=300,
                                   ttl_distinct=5, ttl_margin=5)
    c, m = res["counts"], res["metrics"]
    assert c["published"] == c["confirmed"] == COUNT and c["nacked"] == 0, res
    assert c["dead_lettered"] == c["queue_ttl_dead_lettered"] == COUNT, res
    assert c["early"] == c["queue_ttl_early"] == 0, res
    assert c["left_in_queue"] == c["queue_ttl_left_in_queue"] == 0, res
    assert res["ttl_values_ms"] == [100, 150, 200, 250, 300] and res["queue_ttl_ms"] == 200
    for metric, _higher in bench.METRICS["ttl"]:
        value = m[metric]
        assert value == value, (metric, res)  # present, not NaN
    for key in ("plain publish msg/s", "ttl publish msg/s", "queue-ttl publish msg/s",
                "ttl publish / plain publish", "queue-ttl publish / plain publish"):
        assert m[key] > 0, (key, m)
    for pre in ("", "queue-ttl "):
        assert -bench.EARLY_TOLERANCE_MS <= m[pre + "lateness p50 ms"] <= m[pre + "lateness p99 ms"] \
            <= m[pre + "lateness max ms"] < 5000, (pre, m)
    assert bench._count_problems(res) == "", res


def test_ttl_values_are_spread_and_validated():
    assert bench.ttl_values(2000, 8000, 25)[:3] == [2000, 2250, 2500]
    assert bench.ttl_values(2000, 8000, 25)[-1] == 8000 and len(bench.ttl_values(2000, 8000, 25)) == 25
    assert bench.ttl_values(500, 500, 10) == [500]
    with pytest.raises(ValueError):
        bench.ttl_values(0, 100, 3)
