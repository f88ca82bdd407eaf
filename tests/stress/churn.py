#!/usr/bin/env python3
"""Churn stress: 10,000 connections opened and closed against `amqp-broker serve` must leave
no leaked asyncio tasks, file descriptors or memory.

Not collected by pytest (tests/stress is in pyproject.toml's norecursedirs). Run it with the
venv's python from the repository root:

    python tests/stress/churn.py --connections 10000
    python tests/stress/churn.py --connections 2000 --workers 2

The connections take turns in every way a client goes away (tests/helpers/churn.py: a clean
close with channels, a consumer and an exclusive queue; a TCP reset with an unacked delivery; a
frame error; an abandoned handshake; a frame cut in half), `--workers` at a time. Before
(after a warm-up) and after, it reads the broker's /api/nodes (fd_used, proc_used = asyncio
tasks, mem_used = RSS) and /proc/<pid> (fds, RSS, threads), waiting until the connections are
gone and the counts settle. Passes when connections, tasks and descriptors are back at their
baseline and RSS grew by less than `--max-rss-growth` MiB (the allocator keeps some memory it
once used; a leak of a few KiB a connection would show as tens of MiB here). The broker's log
must hold no ERROR line or traceback.

Exit status 0 when everything held, 1 otherwise.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for helpers

from helpers.churn import KINDS, churn_one  # noqa: E402
from helpers.served import ServedBroker  # noqa: E402
from helpers.wait import wait_until  # noqa: E402


def snapshot(broker: ServedBroker) -> dict:
    node = broker.node()
    counts = broker.proc_counts()
    return {"connections": broker.connection_count(), "tasks": node["proc_used"],
            "fd_used": node["fd_used"], "mem_used": node["mem_used"], **counts}


def show(label: str, s: dict) -> str:
    return (f"{label}: {s['connections']} connections, {s['tasks']} asyncio tasks (proc_used), "
            f"{s['fd_used']} fds (fd_used; /proc {s['fds']}), mem_used {s['mem_used'] / 2**20:.1f} MiB "
            f"(/proc RSS {s['rss'] / 2**20:.1f} MiB), {s['threads']} threads")


def churn(url: str, first: int, count: int, workers: int, report_every: int) -> list[str]:
    errors: list[str] = []
    done = 0
    lock = threading.Lock()
    t0 = time.monotonic()

    def one(n: int) -> None:
        nonlocal done
        try:
            churn_one(url, n)
        except Exception as exc:  # noqa: BLE001 - reported at the end
            errors.append(f"connection {n} ({KINDS[n % len(KINDS)].__name__}): {exc!r}")
        with lock:
            done += 1
            if done % report_every == 0:
                print(f"{time.monotonic() - t0:6.0f}s {done} connections", flush=True)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(first, first + count)))
    return errors


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=10_000, help="connections (default 10,000)")
    p.add_argument("--workers", type=int, default=4, help="connections at a time (default 4)")
    p.add_argument("--warmup", type=int, default=200, help="connections before the baseline")
    p.add_argument("--max-rss-growth", type=float, default=20.0, help="MiB (default 20)")
    p.add_argument("--report-every", type=int, default=1000)
    args = p.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the broker subprocess is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="amqp-churn-"))
    failures: list[str] = []
    with ServedBroker(workdir) as broker:
        failures += churn(broker.url, 0, args.warmup, args.workers, args.report_every)
        wait_until(lambda: broker.connection_count() == 0, timeout=60)
        before = snapshot(broker)
        print(show("before", before), flush=True)
        t0 = time.monotonic()
        failures += churn(broker.url, args.warmup, args.connections, args.workers, args.report_every)
        print(f"{args.connections} connections in {time.monotonic() - t0:.0f}s", flush=True)
        settled = wait_until(lambda: (s := snapshot(broker))["connections"] == 0
                             and s["tasks"] <= before["tasks"] and s["fds"] <= before["fds"],
                             timeout=60, interval=0.5)
        after = snapshot(broker)
        print(show("after ", after), flush=True)
        growth = (after["rss"] - before["rss"]) / 2**20
        print(f"RSS growth {growth:+.1f} MiB over {args.connections} connections "
              f"({growth * 2**20 / args.connections:+.0f} bytes a connection)")
        if not settled:
            failures.append("connections, tasks or descriptors did not return to the baseline")
        if growth > args.max_rss_growth:
            failures.append(f"RSS grew {growth:.1f} MiB (limit {args.max_rss_growth} MiB)")
        if not broker.alive():
            failures.append("the broker process died")
        errors = broker.log_errors()
        print(f"broker log: {len(errors)} ERROR/traceback lines")
        failures += [f"broker log: {line}" for line in errors[:10]]
    for failure in failures[:20]:
        print("FAILED " + failure)
    print("no leaks" if not failures else f"{len(failures)} failures; work dir kept: {workdir}")
    if not failures:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
