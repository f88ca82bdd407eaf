"""--start-own: our broker as a subprocess on a free port with a temporary data dir."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from .errors import BenchError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnBroker:
    """`amqp-broker serve` as a subprocess on a free port with a temporary data dir."""

    def __init__(self, command: str | None = None):
        self.port = _free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="amqp-bench-broker-")
        self.log_path = os.path.join(self.tmp.name, "broker.log")
        if command:
            cmd = command.format(host="127.0.0.1", port=self.port, data_dir=self.tmp.name).split()
        else:
            exe = shutil.which("amqp-broker") or os.path.join(os.path.dirname(sys.executable), "amqp-broker")
            if not os.path.exists(exe):
                raise BenchError("--start-own: no `amqp-broker` executable found (pip install -e . "
                                 "in the venv, or pass --own-command)")
            # the management and Prometheus listeners run as in production, on free ports
            # (never 15672 or 15692 taken)
            cmd = [exe, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--mgmt-port", "0",
                   "--prometheus-port", "0",
                   "--data-dir", os.path.join(self.tmp.name, "data")]
        self.cmd = cmd
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout=30.0) -> "OwnBroker":
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"own broker exited with {self.proc.returncode} before listening:\n"
                                 + self.log_tail())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    print(f"own broker listening at {self.url} (pid {self.proc.pid}): "
                          f"{' '.join(self.cmd)}", file=sys.stderr)
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise BenchError(f"own broker did not accept connections on port {self.port} within "
                         f"{timeout:.0f}s:\n" + self.log_tail())

    def log_tail(self, n=30) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                print("own broker ignored SIGTERM for 15s; killing it", file=sys.stderr)
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.returncode not in (0, -signal.SIGTERM, None):
            print(f"own broker exited with {self.proc.returncode}; log tail:\n{self.log_tail()}",
                  file=sys.stderr)
        try:
            self._log.close()
        except Exception:
            pass
        self.tmp.cleanup()
