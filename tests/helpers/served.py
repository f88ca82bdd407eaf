"""`amqp-broker serve` as a subprocess for the stand-alone stress scripts (tests/stress): the
AMQP and management ports are known, the log goes to a file, and the process can be asked how
it is doing (alive, /api/nodes figures, /proc counts, errors in its log).
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from base64 import b64encode
from pathlib import Path

from helpers.process import clean_env, cli_command, free_port, port_open, stop_process

STARTUP_TIMEOUT = 60.0


class ServedBroker:
    """The broker in its own process, on 127.0.0.1, with its data and log in `workdir`."""

    def __init__(self, workdir: Path, log_level: str = "info"):
        self.workdir = Path(workdir)
        self.log_path = self.workdir / "broker.log"
        self.log_level = log_level
        self.port = free_port()
        self.mgmt_port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start(self) -> "ServedBroker":
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                cli_command() + ["serve", "--host", "127.0.0.1", "--port", str(self.port),
                                 "--mgmt-port", str(self.mgmt_port), "--data-dir", str(data_dir),
                                 "--log-level", self.log_level],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=clean_env(),
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (port_open(self.port) and port_open(self.mgmt_port)):
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"broker not listening after {STARTUP_TIMEOUT:.0f}s")
            time.sleep(0.05)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful), SIGKILL if it hangs; the exit code."""
        return stop_process(self.proc, timeout)

    def __enter__(self) -> "ServedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- looking at it -------------------------------------------------------------------------

    def api(self, path: str):
        """GET a management API path (as guest) and decode its JSON."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.mgmt_port}{path}",
            headers={"Authorization": "Basic " + b64encode(b"guest:guest").decode()})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def node(self) -> dict:
        """This node's /api/nodes entry (fd_used, proc_used = asyncio tasks, mem_used = RSS)."""
        return self.api("/api/nodes")[0]

    def connection_count(self) -> int:
        return len(self.api("/api/connections"))

    def proc_counts(self) -> dict:
        """Open file descriptors and resident memory (bytes) from /proc, and the thread count."""
        fds = len(os.listdir(f"/proc/{self.pid}/fd"))
        status = Path(f"/proc/{self.pid}/status").read_text().splitlines()
        fields = dict(line.split(":", 1) for line in status if ":" in line)
        return {"fds": fds, "rss": int(fields["VmRSS"].split()[0]) * 1024,
                "threads": int(fields["Threads"])}

    def log_errors(self) -> list[str]:
        """Lines of its log that show an error of the broker itself (an ERROR record or a
        traceback)."""
        text = self.log_path.read_bytes().decode(errors="replace")
        return [line for line in text.splitlines()
                if " ERROR " in line or "Traceback" in line or "CRITICAL" in line]

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_bytes().decode(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])
