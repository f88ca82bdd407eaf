"""Resources of one scenario run: connections, cleanup, timing, progress/stall watch."""
from __future__ import annotations

import asyncio
import sys
import time
import uuid

from .client import Channel, Connection
from .errors import BenchError
from .metrics import _proc_cpu


class _Run:
    """Resources of one scenario run: connections, names to delete, timing/CPU sampling."""

    def __init__(self, url, timeout, stall_timeout, broker_pid=None):
        self.url = url
        self.timeout = timeout
        self.stall_timeout = stall_timeout
        self.broker_pid = broker_pid
        self.conns: list[Connection] = []
        self.queues: list[str] = []
        self.exchanges: list[str] = []
        self.admin: Channel | None = None
        self.uid = uuid.uuid4().hex[:8]
        self._cpu0 = self._wall0 = self._bcpu0 = None

    def name(self, what: str) -> str:
        return f"amqp-bench-{what}-{self.uid}"

    async def connect(self, label="bench") -> Connection:
        c = await Connection.open(self.url, name=f"amqp-bench {label}")
        self.conns.append(c)
        return c

    async def setup(self) -> Channel:
        conn = await self.connect("admin")
        self.admin = await conn.channel()
        return self.admin

    async def declare_queue(self, q, durable=False, arguments=None):
        await self.admin.queue_declare(q, durable=durable, arguments=arguments)
        self.queues.append(q)

    async def delete_queue(self, q):
        await self.admin.queue_delete(q)
        self.queues.remove(q)

    async def delete_exchange(self, x):
        await self.admin.exchange_delete(x)
        self.exchanges.remove(x)

    async def declare_exchange(self, x, typ, durable=False):
        await self.admin.exchange_declare(x, typ, durable=durable)
        self.exchanges.append(x)

    def start_clock(self):
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()
        self._bcpu0 = _proc_cpu(self.broker_pid)

    def stop_clock(self, metrics: dict):
        wall = time.perf_counter() - self._wall0
        metrics["client CPU %"] = 100.0 * (time.process_time() - self._cpu0) / wall if wall > 0 else 0.0
        b1 = _proc_cpu(self.broker_pid)
        if b1 is not None and self._bcpu0 is not None and wall > 0:
            metrics["broker CPU %"] = 100.0 * (b1 - self._bcpu0) / wall

    async def wait(self, futs, progress, describe):
        """Wait for `futs`; fail on connection error, overall timeout, or no progress for
        stall_timeout seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        last, last_change = progress(), loop.time()
        while True:
            for c in self.conns:
                if c.error is not None:
                    raise BenchError(f"{c.error} [progress: {describe()}]") from c.error
            pending = [f for f in futs if not f.done()]
            if not pending:
                for f in futs:
                    f.result()
                return
            await asyncio.wait(pending + [c.closed for c in self.conns if not c.closed.done()], timeout=1.0,
                               return_when=asyncio.FIRST_COMPLETED)
            now = loop.time()
            p = progress()
            if p != last:
                last, last_change = p, now
            elif now - last_change > self.stall_timeout:
                raise BenchError(f"stalled: no progress for {self.stall_timeout:.0f}s "
                                 f"[progress: {describe()}]")
            if now > deadline:
                raise BenchError(f"timed out after {self.timeout:.0f}s [progress: {describe()}]")

    async def cleanup(self):
        admin_conn = self.admin.conn if self.admin is not None else None
        for c in self.conns:
            if c is not admin_conn:
                await c.close(timeout=3)
        if not (self.queues or self.exchanges):
            if admin_conn is not None:
                await admin_conn.close(timeout=3)
            return
        ch = self.admin
        try:
            if admin_conn is None or admin_conn.error is not None:
                conn = await Connection.open(self.url, name="amqp-bench cleanup")
                self.conns.append(conn)
                admin_conn, ch = conn, await conn.channel()
            for q in self.queues:
                await ch.queue_delete(q)
            for x in self.exchanges:
                await ch.exchange_delete(x)
        except BenchError as exc:
            print(f"warning: cleanup failed ({self.url}): {exc}", file=sys.stderr)
        finally:
            if admin_conn is not None:
                await admin_conn.close(timeout=3)


def _result(name, url, elapsed, metrics, counts, **extra) -> dict:
    return {"scenario": name, "url": url, "elapsed_s": elapsed, "metrics": metrics,
            "counts": counts, **extra}
