"""Command line: argparse, running the scenarios on every broker, printing the report."""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from urllib.parse import urlparse

from .errors import BenchError
from .own import OwnBroker
from .registry import ALL_SCENARIOS, SCENARIOS, run_scenario
from .report import _aggregate, _count_problems, _fmt, render_table

DESCRIPTION = "AMQP 0-9-1 load generator: measures any broker (ours, RabbitMQ) with the same cheap client."


async def _amain(args, urls) -> int:
    scenarios = []
    for s in args.scenario.split(","):
        s = s.strip()
        if s == "all":
            scenarios += [x for x in ALL_SCENARIOS if x not in scenarios]
        elif s in SCENARIOS:
            if s not in scenarios:
                scenarios.append(s)
        elif s:
            print(f"unknown scenario {s!r}; choose from all, {', '.join(SCENARIOS)}", file=sys.stderr)
            return 2
    if args.direct_reply_to and "rpc-direct" not in scenarios:
        scenarios.append("rpc-direct")
    names = [n for n, _ in urls]
    pids = dict(args.broker_pid)
    runs: dict[tuple[str, str], list[dict]] = {}
    errors: dict[tuple[str, str], str] = {}
    for sc in scenarios:
        for rep in range(args.repeat):
            for name, url in urls:
                count = _cli_count(sc, args)
                print(f"[{sc} #{rep + 1}] {name} ({url}) count={count} ...", file=sys.stderr, flush=True)
                try:
                    res = await run_scenario(sc, url, count, args.size, window=args.window,
                                             prefetch=args.prefetch, fanout_queues=args.fanout_queues,
                                             timeout=args.timeout, stall_timeout=args.stall_timeout,
                                             broker_pid=pids.get(name), ttl_min=args.ttl_min,
                                             ttl_max=args.ttl_max, ttl_distinct=args.ttl_distinct,
                                             ttl_seed=args.ttl_seed, ttl_margin=args.ttl_margin)
                    bad = _count_problems(res)
                    if bad:
                        res["warning"] = bad
                        print(f"    WARNING: {bad}", file=sys.stderr)
                    print("    " + ", ".join(f"{k}={_fmt(v)}" for k, v in res["metrics"].items())
                          + f"  ({res['elapsed_s']:.2f}s)", file=sys.stderr, flush=True)
                except BenchError as exc:
                    res = {"scenario": sc, "url": url, "error": str(exc)}
                    errors[(sc, name)] = str(exc)
                    print(f"    ERROR: {exc}", file=sys.stderr, flush=True)
                res["name"] = name
                res["repeat"] = rep
                runs.setdefault((sc, name), []).append(res)
    agg = {key: _aggregate(rs, args.pick) for key, rs in runs.items()}
    print()
    print(f"count={args.count} (fanout: {_cli_count('fanout', args)} x {args.fanout_queues} queues, "
          f"rpc: {_cli_count('rpc', args)}"
          + (f", backlog: {args.backlog_count}" if "backlog" in scenarios else "")
          + (f", ttl: {args.ttl_count} with TTLs {args.ttl_min}-{args.ttl_max} ms "
             f"({args.ttl_distinct} values, seed {args.ttl_seed}), queue-ttl "
             f"{(args.ttl_min + args.ttl_max) // 2} ms" if "ttl" in scenarios else "")
          + f") size={args.size}B window={args.window} "
          f"prefetch={args.prefetch} repeat={args.repeat} ({args.pick}); "
          f"↑ higher is better, ↓ lower is better")
    print()
    print(render_table(scenarios, names, agg, errors))
    if errors:
        print()
        print("Errors:")
        for (sc, n), e in errors.items():
            print(f"- {sc} on {n}: {e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k not in ("url",)},
                       "urls": dict(urls),
                       "runs": [r for rs in runs.values() for r in rs],
                       "summary": {f"{sc}|{n}": m for (sc, n), m in agg.items()}}, f, indent=2)
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 1 if errors else 0


def _cli_count(sc: str, args) -> int:
    """Messages (publishes / round trips) for one scenario run from the CLI."""
    if sc.startswith("rpc"):
        return args.rpc_count or min(args.count, 20_000)
    if sc == "fanout":
        return args.fanout_count or max(1, args.count // max(1, args.fanout_queues))
    if sc == "backlog":
        return args.backlog_count
    if sc == "ttl":
        return args.ttl_count
    return args.count


def _parse_kv(s: str) -> tuple[str, str]:
    if "=" in s and not s.startswith("amqp"):
        k, v = s.split("=", 1)
        return k, v
    return urlparse(s).netloc.rsplit("@", 1)[-1], s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", action="append", default=[], type=_parse_kv, metavar="NAME=URL",
                   help="broker to measure (repeatable; the first is the numerator of the ratios)")
    p.add_argument("--start-own", action="store_true",
                   help="start `amqp-broker serve` on a free port and measure it first, as 'amqp-broker'")
    p.add_argument("--own-command", default=None,
                   help="command for --start-own, with {host} {port} {data_dir} placeholders")
    p.add_argument("--scenario", default="all",
                   help=f"comma list of: all, {', '.join(SCENARIOS)} (default all = "
                        f"{', '.join(ALL_SCENARIOS)})")
    p.add_argument("--direct-reply-to", action="store_true", help="also run rpc-direct")
    p.add_argument("--count", type=int, default=200_000, help="messages per scenario (default 200000)")
    p.add_argument("--rpc-count", type=int, default=None,
                   help="round trips for rpc scenarios (default min(count, 20000))")
    p.add_argument("--size", type=int, default=100, help="body bytes (default 100)")
    p.add_argument("--window", type=int, default=1000, help="unconfirmed publishes in flight")
    p.add_argument("--prefetch", type=int, default=1000, help="consumer prefetch (acks every prefetch/2)")
    p.add_argument("--backlog-count", type=int, default=2_000_000,
                   help="messages in the backlog scenario (default 2000000)")
    p.add_argument("--ttl-count", type=int, default=100_000,
                   help="messages per run in the ttl scenario (default 100000)")
    p.add_argument("--ttl-min", type=int, default=2000, help="ttl: shortest per-message TTL, ms")
    p.add_argument("--ttl-max", type=int, default=8000, help="ttl: longest per-message TTL, ms")
    p.add_argument("--ttl-distinct", type=int, default=25,
                   help="ttl: distinct TTL values, evenly spread over min..max (default 25)")
    p.add_argument("--ttl-seed", type=int, default=1, help="ttl: seed of the TTL draw")
    p.add_argument("--ttl-margin", type=float, default=15.0,
                   help="ttl: wait for dead-letters until max TTL + this many seconds after the "
                        "last confirm (default 15)")
    p.add_argument("--fanout-queues", type=int, default=10)
    p.add_argument("--fanout-count", type=int, default=None,
                   help="publishes for fanout (default count / fanout-queues, so that about "
                        "`count` messages are delivered)")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--pick", choices=["median", "best"], default="median",
                   help="how to combine --repeat runs")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="overall limit per scenario run, seconds (hangs are caught sooner by "
                        "--stall-timeout)")
    p.add_argument("--stall-timeout", type=float, default=30.0,
                   help="fail a run when nothing progresses for this long")
    p.add_argument("--broker-pid", action="append", default=[], type=_parse_kv, metavar="NAME=PID",
                   help="also report that process's CPU use (e.g. rabbitmq=$(pgrep -f beam.smp))")
    p.add_argument("--json", default=None, help="write all runs and the summary to this file")
    p.add_argument("--no-uvloop", action="store_true")
    args = p.parse_args(argv)
    args.broker_pid = [(k, int(v)) for k, v in args.broker_pid]
    urls = list(args.url)
    own = None
    if args.start_own:
        try:
            own = OwnBroker(args.own_command).start()
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        urls.insert(0, ("amqp-broker", own.url))
        args.broker_pid.append(("amqp-broker", own.proc.pid))
    if not urls:
        p.error("give at least one --url NAME=URL or --start-own")
    if len({n for n, _ in urls}) != len(urls):
        p.error("--url names must be distinct")
    loop_factory = None
    if not args.no_uvloop:
        try:
            import uvloop
            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(_amain(args, urls))
    except KeyboardInterrupt:
        return 130
    finally:
        if own is not None:
            own.stop()
