"""What is measured: latency percentiles, process CPU/RSS sampling, and the metrics
each scenario reports (display order, higher/lower is better)."""
from __future__ import annotations

import asyncio
import os


def _percentile(sorted_vals, q):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(q * (len(sorted_vals) - 1) + 0.5))]


def _lat_metrics(lat_ns: list[int]) -> dict:
    s = sorted(lat_ns)
    return {"p50 ms": _percentile(s, 0.50) / 1e6, "p99 ms": _percentile(s, 0.99) / 1e6}


def _proc_cpu(pid: int | None) -> float | None:
    """CPU seconds (user+sys) used so far by process `pid` (Linux /proc), or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _proc_rss_mb(pid: int | None) -> float | None:
    """Resident set size of process `pid` in MB (MiB, from VmRSS in /proc/<pid>/status), or None."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, IndexError, ValueError):
        return None
    return None


class RssSampler:
    """Samples a process's RSS every `interval` seconds in the background; `peak` is the highest
    sample since the last reset()."""

    def __init__(self, pid: int | None, interval: float = 0.25):
        self.pid = pid
        self.interval = interval
        self.peak: float | None = None
        self.last: float | None = None
        self._task: asyncio.Task | None = None

    def sample(self) -> float | None:
        v = _proc_rss_mb(self.pid)
        if v is not None:
            self.last = v
            self.peak = v if self.peak is None else max(self.peak, v)
        return v

    def reset(self) -> None:
        self.peak = None
        self.sample()

    async def _loop(self):
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def start(self) -> "RssSampler":
        if self.pid and self._task is None:
            self._task = asyncio.ensure_future(self._loop())
        return self

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


#: (metric, higher is better) in display order
METRICS = {
    "publish-confirm": [("msg/s", True)],
    "publish-confirm-persistent": [("msg/s", True)],
    "consume": [("msg/s", True)],
    "e2e": [("msg/s", True), ("p50 ms", False), ("p99 ms", False)],
    "e2e-persistent": [("msg/s", True), ("p50 ms", False), ("p99 ms", False)],
    "fanout": [("publish msg/s", True), ("deliver msg/s", True)],
    "rpc": [("round trips/s", True), ("p50 ms", False), ("p99 ms", False)],
    "rpc-direct": [("round trips/s", True), ("p50 ms", False), ("p99 ms", False)],
    "backlog": [("publish msg/s", True), ("consume msg/s", True), ("peak RSS publish MB", False),
                ("RSS after publish MB", False), ("peak RSS consume MB", False)],
    "ttl": [("plain publish msg/s", True),
            ("ttl publish msg/s", True), ("ttl publish / plain publish", True),
            ("dead-lettered", True), ("dead-letter msg/s", True), ("lateness p50 ms", False), ("lateness p99 ms", False),
            ("lateness max ms", False), ("early", False),
            ("queue-ttl publish msg/s", True), ("queue-ttl publish / plain publish", True),
            ("queue-ttl dead-lettered", True), ("queue-ttl dead-letter msg/s", True),
            ("queue-ttl lateness p50 ms", False),
            ("queue-ttl lateness p99 ms", False), ("queue-ttl lateness max ms", False),
            ("queue-ttl early", False)],
}
INFO_METRICS = [("client CPU %", False), ("broker CPU %", False),
                ("RSS before MB", False)]  # shown, never ratio'd
