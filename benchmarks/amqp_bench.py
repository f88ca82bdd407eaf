#!/usr/bin/env python3
"""AMQP 0-9-1 load generator: measures any broker (ours, RabbitMQ) with the same cheap client.

The client is independent of the broker's code (it never imports amqp_broker). It is a small
hand-written asyncio client over raw sockets (uvloop when available):

* the handshake and rare methods (queue.declare, basic.consume, ...) are encoded and decoded
  with pamqp;
* the hot paths never touch pamqp: a publish (method + header + body frames) is built once and
  written in big batches (``frame * k`` in one ``transport.write``); incoming frames are split with
  one ``struct.unpack_from`` each and only basic.ack/nack (confirms) and basic.deliver + content
  header + body (consumers) are looked at, by offset; consumers ack with multiple=true.

Usage (see benchmarks/README.md)::

    python benchmarks/amqp_bench.py --url rabbitmq=amqp://guest:guest@127.0.0.1:5673/
    python benchmarks/amqp_bench.py --start-own --url rabbitmq=amqp://guest:guest@127.0.0.1:5673/
    python benchmarks/amqp_bench.py --start-own --scenario ttl   # TTL cost, expiry lateness

The code lives in the ``amqpbench`` package next to this file (see benchmarks/README.md); this
module is its entry point and re-exports the function API.

Function API (used by tests/test_benchmark_smoke.py)::

    result = await run_scenario("e2e", url, count=200, size=100)
    result["counts"]   # {"published": 200, "confirmed": 200, "nacked": 0, "delivered": 200}
    result["metrics"]  # {"msg/s": ..., "p50 ms": ..., "p99 ms": ..., "client CPU %": ...}
"""
from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# everything below is re-exported (the tests and interactive use reach it as amqp_bench.X)
from amqpbench.actors import (ConfirmPublisher, CountingConsumer,  # noqa: E402,F401
                              LatenessConsumer, MessageConsumer, RpcClient, RpcResponder,
                              TtlPublisher)
from amqpbench.cli import main  # noqa: E402
from amqpbench.client import Channel, Connection  # noqa: E402,F401
from amqpbench.errors import BenchError, BrokerClosed  # noqa: E402
from amqpbench.metrics import INFO_METRICS, METRICS, RssSampler  # noqa: E402,F401
from amqpbench.own import OwnBroker  # noqa: E402,F401
from amqpbench.registry import ALL_SCENARIOS, SCENARIOS, run_scenario  # noqa: E402
from amqpbench.report import (_aggregate, _count_problems, _fmt,  # noqa: E402,F401
                              render_table)
from amqpbench.ttl import EARLY_TOLERANCE_MS, ttl_values  # noqa: E402,F401

__all__ = ["SCENARIOS", "ALL_SCENARIOS", "run_scenario", "BenchError", "BrokerClosed", "main"]

if __name__ == "__main__":
    sys.exit(main())
