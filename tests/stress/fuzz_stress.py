#!/usr/bin/env python3
"""Fuzz stress: random and mutated frame streams over many connections against
`amqp-broker serve`, while a well-behaved client keeps publishing and consuming.

Not collected by pytest (tests/stress is in pyproject.toml's norecursedirs). Run it with the
venv's python from the repository root:

    python tests/stress/fuzz_stress.py --frames 1000000
    python tests/stress/fuzz_stress.py --frames 50000 --workers 4 --seed 7 --keep

Each case is a stream of 1-16 pieces of the seeded fuzzer (tests/helpers/fuzz.py: random bytes,
random frames, every method with random or mutated fields, scrambled content, huge declared
sizes), sent on its own connection after a correct handshake + channel.open and followed by a
probe; helpers.robust.drive judges the answer (the probe answered, or a close with a legal code
in RabbitMQ's "NAME - explanation" form, or a dropped socket; never a hang or a malformed frame).
`--workers` threads run cases side by side. A pika client (helpers.robust.Bystander) publishes
and consumes round trips all along and must see every message intact; a canary queue's
messages must come through untouched.

At the end: the broker process still runs, its log holds no ERROR line or traceback, no
connection is left open (the management API lists none once the clients are gone), and a new
client is served. The frame count is what the broker's framer had to read (helpers.fuzz
.count_frames): whole frames plus one for each trailing incomplete piece. A failing case is
printed with its seed and number: `case_bytes(seed, n)` rebuilds it.

Exit status 0 when everything held, 1 otherwise.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/, for helpers

import pika  # noqa: E402

from helpers.fuzz import CATEGORIES, count_frames  # noqa: E402
from helpers.fuzz_world import check_canary, fuzz_setup  # noqa: E402
from helpers.pika_client import connect  # noqa: E402
from helpers.robust import Bystander, Verdict, drive  # noqa: E402
from helpers.served import ServedBroker  # noqa: E402
from helpers.wait import wait_until  # noqa: E402

_MAKERS = [make for make, _count in CATEGORIES]
_WEIGHTS = [count for _make, count in CATEGORIES]


def case_bytes(seed: int, n: int) -> bytes:
    """Case `n` of a run with `seed`: 1-16 seeded fuzz pieces, one after the other."""
    rng = random.Random(f"stress-{seed}-{n}")
    pieces = rng.choice((1, 1, 2, 4, 8, 16))
    return b"".join(rng.choices(_MAKERS, _WEIGHTS)[0](rng)[1] for _ in range(pieces))


class Tally:
    """What the workers did, shared between their threads."""

    def __init__(self, target: int):
        self.target = target
        self.lock = threading.Lock()
        self.frames = 0
        self.cases = 0
        self.outcomes: collections.Counter = collections.Counter()
        self.problems: dict[str, list[int]] = collections.defaultdict(list)

    def done(self) -> bool:
        return self.frames >= self.target

    def add(self, n: int, frames: int, verdict: Verdict) -> None:
        with self.lock:
            self.frames += frames
            self.cases += 1
            self.outcomes[verdict.outcome.split(" after")[0]] += 1
            for problem in verdict.problems:
                self.problems[problem].append(n)


def worker(url: str, seed: int, numbers, tally: Tally) -> None:
    while not tally.done():
        n = next(numbers)
        data = case_bytes(seed, n)
        try:
            verdict = drive(url, data)
        except Exception as exc:  # noqa: BLE001 - handshake or channel.open failed: a problem too
            verdict = Verdict()
            verdict.outcome = "setup failed"
            verdict.problems.append(f"handshake or channel.open failed: {exc!r}")
        tally.add(n, count_frames(data), verdict)


def served_ok(url: str) -> bool:
    """A brand-new client declares, publishes and gets a message back."""
    conn = connect(url)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"still alive", pika.BasicProperties(content_type="text/plain"))
        method_frame, _props, body = ch.basic_get(q, auto_ack=True)
        return method_frame is not None and body == b"still alive"
    finally:
        conn.close()


def run(args, broker: ServedBroker) -> list[str]:
    failures: list[str] = []
    bodies = fuzz_setup(broker.url, "stress")
    before = broker.proc_counts()
    tally = Tally(args.frames)
    numbers = itertools.count()
    t0 = time.monotonic()
    with Bystander(broker.url, "fuzz-stress") as bystander:
        with ThreadPoolExecutor(args.workers) as pool:
            futures = [pool.submit(worker, broker.url, args.seed, numbers, tally)
                       for _ in range(args.workers)]
            next_report = 0
            while not all(f.done() for f in futures):
                time.sleep(0.5)
                if tally.frames >= next_report:
                    elapsed = time.monotonic() - t0
                    print(f"{elapsed:7.0f}s {tally.frames:9d} frames {tally.cases:8d} connections, "
                          f"bystander {bystander.received} round trips, "
                          f"{sum(len(v) for v in tally.problems.values())} problems", flush=True)
                    next_report = tally.frames + args.report_every
                if not broker.alive():
                    failures.append("the broker process died")
                    tally.target = 0
            for f in futures:
                f.result()
        bystander.wait_round_trips(bystander.received + 5)
    elapsed = time.monotonic() - t0
    print(f"{elapsed:7.0f}s {tally.frames:9d} frames {tally.cases:8d} connections: done", flush=True)
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in tally.outcomes.most_common()))
    for problem, cases in tally.problems.items():
        failures.append(f"{problem} x{len(cases)} (first: case_bytes({args.seed}, {cases[0]}))")
    if bystander.errors or bystander.received != bystander.sent or bystander.is_alive():
        failures.append(f"the bystander was disturbed: {bystander.errors} "
                        f"(sent {bystander.sent}, received {bystander.received})")
    print(f"bystander: {bystander.sent} published, {bystander.received} consumed intact, "
          f"{len(bystander.errors)} errors")
    failures += check_canary(broker.url, "stress", bodies)
    if not broker.alive():
        failures.append("the broker process is not running")
        return failures
    leaked = not wait_until(lambda: broker.connection_count() == 0, timeout=60)
    after = broker.proc_counts()
    print(f"connections left open: {broker.connection_count()}; broker fds {before['fds']} -> "
          f"{after['fds']}, RSS {before['rss'] / 2**20:.1f} -> {after['rss'] / 2**20:.1f} MiB")
    if leaked:
        failures.append(f"{broker.connection_count()} connections leaked")
    if not served_ok(broker.url):
        failures.append("a new client is not served after the fuzz")
    errors = broker.log_errors()
    print(f"broker log: {len(errors)} ERROR/traceback lines")
    failures += [f"broker log: {line}" for line in errors[:10]]
    return failures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=1_000_000, help="fuzzed frames to send (default 1,000,000)")
    p.add_argument("--workers", type=int, default=8, help="connections fuzzing side by side (default 8)")
    p.add_argument("--seed", type=int, default=1, help="seed of the fuzz cases (default 1)")
    p.add_argument("--report-every", type=int, default=50_000, help="a progress line every N frames")
    p.add_argument("--keep", action="store_true", help="keep the work dir (always kept on failure)")
    args = p.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the broker subprocess is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="amqp-fuzz-stress-"))
    print(f"work dir {workdir}, seed {args.seed}, {args.workers} workers, "
          f"target {args.frames} frames", flush=True)
    with ServedBroker(workdir) as broker:
        failures = run(args, broker)
        code = broker.stop()
    if code not in (0, None):
        failures.append(f"the broker exited with {code} on SIGTERM")
    for failure in failures:
        print("FAILED " + failure)
    print("0 broker crashes, 0 leaked connections, bystander undisturbed" if not failures
          else f"{len(failures)} failures; work dir kept: {workdir}")
    if not failures and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
