#!/usr/bin/env python3
"""kill -9 stress: many crash cycles against `amqp-broker serve` with the checks of
tests/test_crash.py (see tests/helpers/crash.py for what a cycle does and checks).

Not collected by pytest (no test_ prefix, and pyproject.toml's norecursedirs skips
tests/stress). Run it with the venv's python from the repository root:

    python tests/stress/crash_stress.py --cycles 100
    python tests/stress/crash_stress.py --cycles 300 --modes tx --seed 7 --keep

One summary line per cycle, then a final line "N cycles, L lost, R resurrected". Exit status 0
when every cycle passed, 1 otherwise (also for duplicates, disorder, too many redelivered, a
returned publish or a lost queue, which the final line's detail shows).
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for helpers.crash

import helpers.crash as ch  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=100, help="kill -9 cycles (default 100)")
    p.add_argument("--modes", default="none,tx,ack",
                   help="consumer modes, used in turn: none (publisher only), tx (consumer acks "
                        "in transactions), ack (plain acks) (default none,tx,ack)")
    p.add_argument("--seed", type=int, default=1, help="random seed for the kill moments")
    p.add_argument("--kill-min", type=float, default=0.05, help="earliest kill after the load starts (s)")
    p.add_argument("--kill-max", type=float, default=0.6, help="latest kill after the load starts (s)")
    p.add_argument("--size", type=int, default=100, help="message body bytes")
    p.add_argument("--window", type=int, default=256, help="unconfirmed publishes in flight")
    p.add_argument("--ack-window", type=float, default=1.0,
                   help="plain acks sent less than this long before the kill may come back (s)")
    p.add_argument("--workdir", default=None, help="directory for the data dir and broker log "
                                                   "(default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (always kept on failure)")
    p.add_argument("--stop-on-failure", action="store_true", help="stop at the first failed cycle")
    args = p.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in args.modes:
        if m not in ch.CONSUMER_MODES:
            p.error(f"unknown mode {m!r}; choose from {', '.join(ch.CONSUMER_MODES)}")
    if not 0 <= args.kill_min <= args.kill_max:
        p.error("need 0 <= --kill-min <= --kill-max")
    return args


async def run(args, workdir: Path) -> list[ch.CycleResult]:
    h = ch.CrashHarness(workdir, seed=args.seed, kill_window=(args.kill_min, args.kill_max),
                        size=args.size, window=args.window, ack_window=args.ack_window)
    try:
        await h.setup()
        for i in range(args.cycles):
            mode = args.modes[i % len(args.modes)]
            res = await h.cycle(mode)
            print(res.summary(args.cycles), flush=True)
            if res.failed and args.stop_on_failure:
                break
    finally:
        h.close()
    return h.results


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="amqp-crash-stress-"))
    print(f"work dir {workdir} (broker log: {workdir / 'broker.log'}), seed {args.seed}, "
          f"modes {','.join(args.modes)}", flush=True)
    t0 = time.monotonic()
    try:
        results = asyncio.run(run(args, workdir))
    except ch.BrokerStartError as exc:
        print(f"broker did not start: {exc}", flush=True)
        print(f"0 cycles completed; work dir kept: {workdir}")
        return 1
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    elapsed = time.monotonic() - t0

    lost = sum(len(r.lost) for r in results)
    resurrected = sum(len(r.resurrected) for r in results)
    failed = [r for r in results if r.failed]
    print()
    print(f"{sum(r.published for r in results)} published, {sum(r.confirmed for r in results)} "
          f"confirmed, {sum(r.nacked for r in results)} nacked, "
          f"{sum(r.recovered for r in results)} recovered after kills; "
          f"{sum(r.duplicates for r in results)} duplicated, {sum(r.disorder for r in results)} "
          f"out of order, {sum(r.redelivered_excess for r in results)} excess redelivered, "
          f"{sum(r.returned for r in results)} returned, "
          f"{sum(1 for r in results if r.queue_missing)} queue losses, "
          f"{sum(1 for r in results if r.error)} errors; "
          f"{sum(r.late_acks_back for r in results)} plain acks from the last "
          f"{args.ack_window:g}s came back (allowed; the oldest "
          f"{max((r.late_ack_age for r in results), default=0) * 1000:.0f} ms before its kill); "
          f"{elapsed:.0f}s")
    for r in failed:
        print("FAILED " + r.problems())
    print(f"{len(results)} cycles, {lost} lost, {resurrected} resurrected")
    if failed:
        print(f"work dir kept: {workdir}")
        return 1
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
