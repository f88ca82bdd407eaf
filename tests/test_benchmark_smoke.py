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
    tree = ast.parse(BENCH_PATH.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.split(".")[0] == "amqp_broker" for m in imported), imported


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
