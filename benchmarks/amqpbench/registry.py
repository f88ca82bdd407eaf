"""Scenario registry and the function API (run_scenario)."""
from __future__ import annotations

import asyncio
import sys

from .errors import BenchError
from .run import _Run
from .scenarios import _backlog, _consume, _e2e, _fanout, _publish_confirm, _rpc
from .ttl import _ttl, ttl_values


SCENARIOS = {
    "publish-confirm": lambda r, o: _publish_confirm(r, o, False),
    "publish-confirm-persistent": lambda r, o: _publish_confirm(r, o, True),
    "consume": _consume,
    "e2e": lambda r, o: _e2e(r, o, False),
    "e2e-persistent": lambda r, o: _e2e(r, o, True),
    "fanout": _fanout,
    "rpc": lambda r, o: _rpc(r, o, False),
    "rpc-direct": lambda r, o: _rpc(r, o, True),
    "backlog": _backlog,
    "ttl": _ttl,
}
#: what `--scenario all` runs (rpc-direct uses RabbitMQ's amq.rabbitmq.reply-to extension; add it
#: explicitly or with --direct-reply-to; backlog takes minutes: --scenario backlog; ttl spends
#: most of its time waiting for TTLs to run out: --scenario ttl)
ALL_SCENARIOS = ["publish-confirm", "publish-confirm-persistent", "consume", "e2e", "fanout",
                 "rpc", "e2e-persistent"]


async def run_scenario(name: str, url: str, count: int = 200_000, size: int = 100, *,
                       window: int = 1000, prefetch: int = 1000, fanout_queues: int = 10,
                       rpc_count: int | None = None, timeout: float = 300.0,
                       stall_timeout: float = 30.0, broker_pid: int | None = None,
                       ttl_min: int = 2000, ttl_max: int = 8000, ttl_distinct: int = 25,
                       ttl_seed: int = 1, ttl_margin: float = 15.0) -> dict:
    """Run one scenario against `url`; returns {"scenario", "url", "elapsed_s", "metrics",
    "counts"}. Raises BenchError (or BrokerClosed) if the broker misbehaves; queues/exchanges
    created by the run are deleted in any case (best effort). The ttl_* options are for `ttl`:
    per-message TTLs are drawn (seeded) from `ttl_distinct` values spread over
    ttl_min..ttl_max ms, and dead-letters are awaited until max TTL + ttl_margin seconds after
    the last confirm."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    o = {"count": count, "size": size, "window": window, "prefetch": max(1, prefetch),
         "fanout_queues": fanout_queues, "rpc_count": rpc_count if rpc_count else count,
         "ttl_min": ttl_min, "ttl_max": ttl_max, "ttl_distinct": ttl_distinct,
         "ttl_seed": ttl_seed, "ttl_margin": ttl_margin}
    if name == "ttl":
        ttl_values(ttl_min, ttl_max, ttl_distinct)  # validate before connecting
    r = _Run(url, timeout, stall_timeout, broker_pid)
    try:
        res = await asyncio.wait_for(SCENARIOS[name](r, o), timeout + 60)
    except asyncio.TimeoutError:
        raise BenchError(f"{name}: timed out (setup or teardown hung)") from None
    finally:
        try:
            await asyncio.wait_for(r.cleanup(), 30)
        except Exception as exc:
            print(f"warning: cleanup after {name} failed: {exc!r}", file=sys.stderr)
    res["scenario"] = name
    return res
