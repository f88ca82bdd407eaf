"""kill -9 harness: run load against `amqp-broker serve`, SIGKILL it at a random moment, restart
it on the same data dir, drain the queue and check what survived.

Shared by tests/test_crash.py (a few cycles, bounded time) and tests/stress/crash_stress.py
(hundreds of cycles). It never imports amqp_broker: the broker is a subprocess and the clients
are aiormq (a real RabbitMQ client).

One cycle:

1. the broker is running (started fresh, or restarted by the previous cycle); the durable
   topology (a direct exchange bound to a durable queue) was declared once, at setup, and is
   never declared again: every later cycle relies on its recovery;
2. optionally a consumer starts on the queue: ``tx`` (basic.ack + tx.commit per small batch; a
   message counts as acked only once commit-ok arrived) or ``ack`` (plain basic.ack, no reply);
3. a publisher with confirms sends numbered persistent messages (body = the number, zero-padded,
   then padding) through the exchange, mandatory, with a window of unconfirmed publishes;
4. after a seeded random delay (default 0.05-0.6 s after the first publish) the broker gets
   SIGKILL while the load is still running; the clients see their sockets die. The first
   ``progress_cycles`` cycles of a run start that delay only once a publish was confirmed
   (and, with a consumer, an ack was sent or committed): on a slow machine a kill this early
   could come before any, and a run that never got that far would have tested nothing;
5. the broker is restarted on the same data dir, and the queue is drained completely (in a
   transaction: the drained numbers count as acked-and-committed from then on).

Checks per cycle (``CycleResult``):

* lost: a number whose publish was confirmed (basic.ack) and whose ack was never even sent by
  the consumer, but is not in the queue after the restart;
* resurrected: a number whose ack was committed (tx.commit-ok received, or drained in an earlier
  cycle) that is in the queue again; with a plain-ack consumer also a number whose basic.ack was
  sent more than ``ack_window`` seconds before the kill (acks sent later may legitimately come
  back: a plain ack has no reply, see the issue; those are counted as ``late_acks_back``);
* duplicates: a number twice in the queue;
* disorder: the drained numbers are not strictly increasing (the queue order is the publish
  order; unacked messages return to their original place);
* redelivered_excess: more messages came back with redelivered=true than the broker can have
  delivered (prefetch + one transaction batch + lost plain acks; none at all without a
  consumer): messages never delivered must come back with redelivered=false;
* returned / nacked: the broker returned a publish as unroutable (the binding was lost) or nacked
  one (for persistent messages into a durable queue it should never need to);
* queue_missing: the durable queue is gone after the restart (404 on a passive declare).

Informational only (not failures): ``redelivered_missing`` (the consumer had received the
message before the kill but it came back with redelivered=false: the broker's record of the
delivery may not have reached the disk before SIGKILL) and ``redelivered_spurious`` (came back
redelivered=true though the consumer never received it: the broker may have sent it into the
socket just before the kill). Nacks are counted but not failures (only confirmed numbers must
survive).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiormq
import aiormq.exceptions
from pamqp import commands as spec

from helpers.process import clean_env, cli_command, free_port, port_open, stop_process
from helpers.wait import HANG_GUARD

for _name in ("aiormq", "aiormq.connection", "aiormq.channel", "asyncio"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)

EXCHANGE = "crash-x"
QUEUE = "crash-q"
ROUTING_KEY = "crash-rk"
NUMBER_WIDTH = 12
STARTUP_TIMEOUT = 30.0
CONSUMER_MODES = ("none", "tx", "ack")


# --------------------------------------------------------------------------------------------
# The broker process


class BrokerStartError(RuntimeError):
    pass


class BrokerProcess:
    """`amqp-broker serve --host 127.0.0.1 --port <free> --data-dir <data_dir>`; every start
    appends its stdout/stderr to `log_path` (one file across restarts)."""

    def __init__(self, data_dir: Path, log_path: Path | None = None, log_level: str = "info"):
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path) if log_path else self.data_dir.parent / "broker.log"
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None
        self.starts = 0
        self.kills = 0

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = STARTUP_TIMEOUT) -> float:
        """Start and wait until the port accepts connections; returns the seconds it took."""
        if self.running():
            raise RuntimeError("broker already running")
        t0 = time.monotonic()
        self.port = free_port()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"---- start #{self.starts} on port {self.port}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cli_command() + ["serve", "--host", "127.0.0.1", "--port", str(self.port),
                                 "--data-dir", str(self.data_dir), "--log-level", self.log_level],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=clean_env(),
            )
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerStartError(f"broker exited with {self.proc.returncode} before listening "
                                       f"(start #{self.starts}):\n{self.log_tail()}")
            if port_open(self.port):
                return time.monotonic() - t0
            time.sleep(0.02)
        self.kill9()
        raise BrokerStartError(f"broker not listening after {timeout:.0f}s (start #{self.starts}):\n"
                               f"{self.log_tail()}")

    def kill9(self) -> None:
        if self.running():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.kills += 1
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful), SIGKILL if it hangs; returns the exit code."""
        return stop_process(self.proc, timeout)

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_bytes().decode(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])


# --------------------------------------------------------------------------------------------
# Results


@dataclass
class CycleResult:
    cycle: int
    mode: str
    kill_after: float = 0.0
    published: int = 0
    confirmed: int = 0
    nacked: int = 0
    returned: int = 0
    consumed: int = 0           # deliveries the load consumer received before the kill
    acked: int = 0              # ack committed (tx) / ack sent (plain)
    recovered: int = 0          # messages drained after the restart
    restart_s: float = 0.0
    lost: list[int] = field(default_factory=list)
    resurrected: list[int] = field(default_factory=list)
    late_acks_back: int = 0     # plain acks sent within ack_window of the kill that came back
    late_ack_age: float = 0.0   # the oldest of those: seconds between its ack and the kill
    duplicates: int = 0
    disorder: int = 0
    queue_missing: bool = False
    leftover: int = -1          # messages still in the queue after the drain committed
    redelivered_missing: int = 0
    redelivered_spurious: int = 0
    redelivered_excess: int = 0  # more redelivered=true than could ever have been delivered
    error: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.lost or self.resurrected or self.duplicates or self.disorder
                    or self.redelivered_excess or self.queue_missing or self.returned or self.leftover > 0 or self.error)

    def summary(self, total: int | None = None) -> str:
        n = f"{self.cycle}/{total}" if total else str(self.cycle)
        s = (f"cycle {n} [{self.mode}] kill@{self.kill_after:.2f}s: published {self.published} "
             f"confirmed {self.confirmed} nacked {self.nacked} returned {self.returned}")
        if self.mode != "none":
            s += f" | consumed {self.consumed} acked {self.acked}"
        s += (f" | restart {self.restart_s:.2f}s, recovered {self.recovered}"
              f" | lost {len(self.lost)} resurrected {len(self.resurrected)}"
              f" dup {self.duplicates} disorder {self.disorder}")
        if self.mode == "ack":
            s += f" late-acks-back {self.late_acks_back}"
            if self.late_acks_back:
                s += f" (oldest {self.late_ack_age * 1000:.0f} ms before the kill)"
        if self.mode != "none":
            s += f" | redelivered missing {self.redelivered_missing} spurious {self.redelivered_spurious}"
        if self.redelivered_excess:
            s += f" | {self.redelivered_excess} TOO MANY REDELIVERED"
        if self.queue_missing:
            s += " | QUEUE MISSING AFTER RESTART"
        if self.leftover > 0:
            s += f" | {self.leftover} LEFT IN QUEUE AFTER DRAIN"
        if self.error:
            s += f" | ERROR: {self.error}"
        if self.failed:
            s += " | FAIL"
        return s

    def problems(self) -> str:
        out = []
        if self.lost:
            out.append(f"lost {len(self.lost)} confirmed: {_sample(self.lost)}")
        if self.resurrected:
            out.append(f"resurrected {len(self.resurrected)} acked: {_sample(self.resurrected)}")
        if self.duplicates:
            out.append(f"{self.duplicates} duplicates")
        if self.disorder:
            out.append(f"{self.disorder} out-of-order")
        if self.redelivered_excess:
            out.append(f"{self.redelivered_excess} more messages came back redelivered=true than "
                       "were ever delivered")
        if self.returned:
            out.append(f"{self.returned} publishes returned unroutable (binding lost?)")
        if self.queue_missing:
            out.append("queue missing after restart")
        if self.leftover > 0:
            out.append(f"{self.leftover} messages left after drain")
        if self.error:
            out.append(self.error)
        return f"cycle {self.cycle} [{self.mode}]: " + "; ".join(out)


def _sample(nums: list[int], k: int = 10) -> str:
    nums = sorted(nums)
    return ", ".join(map(str, nums[:k])) + (f", ... ({len(nums)})" if len(nums) > k else "")


# --------------------------------------------------------------------------------------------
# Load


def make_body(n: int, size: int) -> bytes:
    head = b"%0*d" % (NUMBER_WIDTH, n)
    return head + b"." * max(0, size - len(head))


def body_number(body: bytes) -> int:
    return int(body[:NUMBER_WIDTH])


class Publisher:
    """Numbered persistent publishes with confirms, at most `window` unconfirmed."""

    def __init__(self, url: str, first: int, size: int, window: int):
        self.url = url
        self.next = first
        self.size = size
        self.window = window
        self.sent: list[int] = []
        self.confirmed: set[int] = set()
        self.nacked: set[int] = set()
        self.returned: set[int] = set()
        self.started = asyncio.Event()
        self.progressed = asyncio.Event()  # a publish was confirmed
        self.stop = asyncio.Event()
        self.conn = None
        self._inflight: set[asyncio.Task] = set()

    async def _one(self, ch, n: int, sem: asyncio.Semaphore) -> None:
        try:
            res = await ch.basic_publish(
                make_body(n, self.size), exchange=EXCHANGE, routing_key=ROUTING_KEY, mandatory=True,
                properties=spec.Basic.Properties(delivery_mode=2, message_id=str(n)), wait=False)
            if isinstance(res, spec.Basic.Ack):
                self.confirmed.add(n)
                self.progressed.set()
            elif isinstance(res, spec.Basic.Nack):
                self.nacked.add(n)
        except aiormq.exceptions.PublishError:
            self.returned.add(n)
        except (Exception, asyncio.CancelledError):
            pass  # the broker died: unconfirmed
        finally:
            sem.release()

    async def run(self) -> None:
        try:
            self.conn = await aiormq.connect(self.url)
            ch = await self.conn.channel(publisher_confirms=True)
        except Exception:
            self.started.set()
            raise
        sem = asyncio.Semaphore(self.window)
        self.started.set()
        try:
            while not self.stop.is_set() and not self.conn.is_closed and not ch.is_closed:
                await sem.acquire()
                if self.stop.is_set() or self.conn.is_closed or ch.is_closed:
                    break
                n = self.next
                self.next += 1
                self.sent.append(n)
                t = asyncio.ensure_future(self._one(ch, n, sem))
                self._inflight.add(t)
                t.add_done_callback(self._inflight.discard)
                await asyncio.sleep(0)
        except Exception:
            pass

    async def finish(self, timeout: float) -> None:
        """Wait for outstanding confirms (they fail once the dead socket is noticed)."""
        self.stop.set()
        if self._inflight:
            await asyncio.wait(list(self._inflight), timeout=timeout)
        for t in list(self._inflight):
            t.cancel()
        await _close(self.conn)


class Consumer:
    """Consumes from the queue and acks: in a transaction per batch (`tx`), or plainly (`ack`)."""

    def __init__(self, url: str, mode: str, prefetch: int = 200, batch: int = 20):
        assert mode in ("tx", "ack")
        self.url = url
        self.mode = mode
        self.prefetch = prefetch
        self.batch = batch
        self.received: set[int] = set()        # delivered to us before the kill
        self.ack_sent: dict[int, float] = {}   # number -> monotonic time the ack was written
        self.committed: set[int] = set()       # tx mode: commit-ok received
        self.conn = None
        self.ready = asyncio.Event()
        self.progressed = asyncio.Event()  # tx: a commit-ok came; ack: an ack was sent
        self._q: asyncio.Queue = asyncio.Queue()

    async def run(self) -> None:
        try:
            self.conn = await aiormq.connect(self.url)
            ch = await self.conn.channel(publisher_confirms=False)
            await ch.basic_qos(prefetch_count=self.prefetch)
            if self.mode == "tx":
                await ch.tx_select()

            async def on_message(msg) -> None:
                self._q.put_nowait(msg)

            await ch.basic_consume(QUEUE, on_message, no_ack=False)
        finally:
            self.ready.set()
        closing = self.conn.closing
        try:
            while not self.conn.is_closed:
                if self._q.empty():
                    getter = asyncio.ensure_future(self._q.get())
                    await asyncio.wait([getter, closing], return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        break  # the connection died
                    msg = getter.result()
                else:
                    msg = self._q.get_nowait()
                msgs = [msg]
                while not self._q.empty() and len(msgs) < self.batch:
                    msgs.append(self._q.get_nowait())
                nums = [body_number(m.body) for m in msgs]
                self.received.update(nums)
                if self.mode == "tx":
                    now = time.monotonic()
                    for n in nums:
                        self.ack_sent[n] = now
                    await ch.basic_ack(msgs[-1].delivery.delivery_tag, multiple=True)
                    await ch.tx_commit()
                    self.committed.update(nums)
                else:
                    for m, n in zip(msgs, nums):
                        self.ack_sent[n] = time.monotonic()
                        await ch.basic_ack(m.delivery.delivery_tag, wait=False)
                self.progressed.set()
        except (Exception, asyncio.CancelledError):
            pass  # the broker died

    async def finish(self) -> None:
        await _close(self.conn)


async def _close(conn) -> None:
    if conn is None:
        return
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(conn.close(), 2)


class QueueMissing(Exception):
    pass


async def drain(url: str, timeout: float = 60.0) -> tuple[list[tuple[int, bool]], int]:
    """Consume everything in the queue, ack it all in one transaction, and return
    ([(number, redelivered)] in delivery order, messages left afterwards)."""
    conn = await aiormq.connect(url)
    try:
        ch = await conn.channel(publisher_confirms=False)
        try:
            ok = await ch.queue_declare(QUEUE, passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity as exc:
            raise QueueMissing(str(exc)) from None
        expected = ok.message_count
        got: list[tuple[int, bool, int]] = []
        done = asyncio.Event()
        if expected == 0:
            done.set()

        async def on_message(msg) -> None:
            got.append((body_number(msg.body), bool(msg.delivery.redelivered), msg.delivery.delivery_tag))
            if len(got) >= expected:
                done.set()

        await ch.tx_select()
        if expected:
            await ch.basic_consume(QUEUE, on_message, no_ack=False)
            await asyncio.wait_for(done.wait(), timeout)
            await ch.basic_ack(got[-1][2], multiple=True)
        await ch.tx_commit()
        left = (await ch.queue_declare(QUEUE, passive=True)).message_count
        return [(n, r) for n, r, _ in got], left
    finally:
        await _close(conn)


# --------------------------------------------------------------------------------------------
# The harness


class CrashHarness:
    """Kill -9 cycles against one broker data dir. Numbers are unique across all cycles."""

    def __init__(self, workdir: Path, seed: int = 1, kill_window: tuple[float, float] = (0.05, 0.6),
                 size: int = 100, window: int = 256, ack_window: float = 1.0, log=None,
                 progress_cycles: int = 0):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker = BrokerProcess(self.workdir / "data", self.workdir / "broker.log")
        self.rng = random.Random(seed)
        self.seed = seed
        self.kill_window = kill_window
        self.size = size
        self.window = window
        self.ack_window = ack_window
        self.progress_cycles = progress_cycles
        self.log = log or (lambda s: None)
        self.next_number = 1
        self.committed_ever: set[int] = set()   # acked inside a committed transaction
        self.results: list[CycleResult] = []

    # -- lifecycle
    async def setup(self) -> None:
        """Start the broker and declare the durable topology (once)."""
        self.broker.start()
        await self.declare_topology()

    async def declare_topology(self) -> None:
        conn = await aiormq.connect(self.broker.url)
        try:
            ch = await conn.channel()
            await ch.exchange_declare(EXCHANGE, exchange_type="direct", durable=True)
            await ch.queue_declare(QUEUE, durable=True)
            await ch.queue_bind(QUEUE, EXCHANGE, routing_key=ROUTING_KEY)
        finally:
            await _close(conn)

    def close(self) -> None:
        if self.broker.running():
            self.broker.stop()

    # -- one cycle
    async def cycle(self, mode: str = "none") -> CycleResult:
        if mode not in CONSUMER_MODES:
            raise ValueError(f"mode must be one of {CONSUMER_MODES}")
        res = CycleResult(cycle=len(self.results) + 1, mode=mode)
        self.results.append(res)
        res.kill_after = self.rng.uniform(*self.kill_window)
        try:
            await self._cycle(res, mode)
        except BrokerStartError:
            raise  # nothing sensible to continue with
        except Exception as exc:
            res.error = f"{type(exc).__name__}: {exc}"
            self.log(res.summary())
            with contextlib.suppress(Exception):
                if not self.broker.running():
                    self.broker.start()
                await self.declare_topology()
        return res

    async def _cycle(self, res: CycleResult, mode: str) -> None:
        delay = res.kill_after
        if not self.broker.running():
            self.broker.start()
        url = self.broker.url

        consumer = None
        if mode != "none":  # vary how far behind the consumer runs and how much one commit holds
            consumer = Consumer(url, mode, prefetch=self.rng.choice([10, 100, 500]),
                                batch=self.rng.choice([1, 5, 20, 50]))
        tasks = []
        if consumer is not None:
            tasks.append(asyncio.ensure_future(consumer.run()))
            await asyncio.wait_for(consumer.ready.wait(), 10)
            if tasks[0].done() and tasks[0].exception():
                raise RuntimeError(f"consumer could not start: {tasks[0].exception()!r}")
        pub = Publisher(url, self.next_number, self.size, self.window)
        ptask = asyncio.ensure_future(pub.run())
        tasks.append(ptask)
        await asyncio.wait_for(pub.started.wait(), 10)
        if ptask.done() and ptask.exception():
            for t in tasks:
                t.cancel()
            raise RuntimeError(f"publisher could not start: {ptask.exception()!r}")
        if res.cycle <= self.progress_cycles:  # a hang guard, not a time bound
            progress = [pub.progressed.wait()] + ([consumer.progressed.wait()] if consumer else [])
            await asyncio.wait_for(asyncio.gather(*progress), HANG_GUARD)

        await asyncio.sleep(delay)
        t_kill = time.monotonic()
        self.broker.kill9()

        # let the clients notice the dead socket and settle what they had received
        await pub.finish(timeout=5)
        if consumer is not None:
            await asyncio.wait(tasks, timeout=3)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if consumer is not None:
            await consumer.finish()
        self.next_number = pub.next

        res.published = len(pub.sent)
        res.confirmed = len(pub.confirmed)
        res.nacked = len(pub.nacked)
        res.returned = len(pub.returned)

        res.restart_s = await asyncio.get_running_loop().run_in_executor(None, self.broker.start)
        try:
            drained, res.leftover = await drain(self.broker.url)
        except QueueMissing:
            res.queue_missing = True
            drained = []
            await self.declare_topology()  # so that later cycles still test something
        except Exception as exc:
            res.error = f"drain failed: {exc!r}"
            drained = []
        self._check(res, pub, consumer, drained, t_kill)
        self.log(res.summary())

    def _check(self, res: CycleResult, pub: Publisher, consumer: Consumer | None,
               drained: list[tuple[int, bool]], t_kill: float) -> None:
        nums = [n for n, _ in drained]
        present = set(nums)
        res.recovered = len(nums)
        res.duplicates = len(nums) - len(present)
        res.disorder = sum(1 for a, b in zip(nums, nums[1:]) if b <= a)

        ack_sent = consumer.ack_sent if consumer is not None else {}
        if consumer is not None:
            res.consumed = len(consumer.received)
            res.acked = len(consumer.committed) if consumer.mode == "tx" else len(ack_sent)

        # every confirmed number is in the queue, or the consumer (at least) sent its ack
        res.lost = sorted(pub.confirmed - present - ack_sent.keys())

        # nothing whose ack was committed comes back (this cycle's tx consumer, earlier drains)
        committed_now = consumer.committed if consumer is not None else set()
        resurrected = present & (self.committed_ever | committed_now)
        if consumer is not None and consumer.mode == "ack":
            back = present & ack_sent.keys()
            stale = {n for n in back if ack_sent[n] < t_kill - self.ack_window}
            res.late_acks_back = len(back - stale)
            res.late_ack_age = max((t_kill - ack_sent[n] for n in back - stale), default=0.0)
            resurrected |= stale
        res.resurrected = sorted(resurrected)

        if consumer is not None:
            for n, redelivered in drained:
                if n in consumer.received and not redelivered:
                    res.redelivered_missing += 1
                elif n not in consumer.received and redelivered:
                    res.redelivered_spurious += 1
        # redelivered=true is legitimate only for messages the broker may have delivered: at most
        # `prefetch` unacked at a time (plus one tx batch whose commit was in flight, plus plain
        # acks lost in the kill). Without a consumer nothing was ever delivered.
        allowance = 0
        if consumer is not None:
            allowance = consumer.prefetch + consumer.batch
            if consumer.mode == "ack":
                allowance += len(present & ack_sent.keys())
        res.redelivered_excess = max(0, sum(1 for _, r in drained if r) - allowance)

        self.committed_ever |= committed_now
        self.committed_ever |= present  # the drain acked them in a committed transaction
        if res.leftover > 0:
            self.committed_ever -= present  # drain did not work; do not blame later cycles


def run_cycles(workdir: Path, modes: list[str], seed: int = 1, log=None, **kw) -> list[CycleResult]:
    """Set up, run one cycle per entry of `modes`, stop the broker; returns the results."""
    async def main():
        h = CrashHarness(workdir, seed=seed, log=log, **kw)
        try:
            await h.setup()
            for mode in modes:
                await h.cycle(mode)
        finally:
            h.close()
        return h

    h = asyncio.run(main())
    return h.results


def failure_report(results: list[CycleResult], broker_log: Path | None = None) -> str:
    bad = [r for r in results if r.failed]
    lines = [r.problems() for r in bad]
    lines.append("all cycles:")
    lines += ["  " + r.summary() for r in results]
    if broker_log is not None:
        try:
            tail = broker_log.read_text(errors="replace").splitlines()[-30:]
            lines.append("broker log tail:")
            lines += ["  " + t for t in tail]
        except OSError:
            pass
    return "\n".join(lines)
