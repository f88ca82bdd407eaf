"""The `amqp-broker` command line as a subprocess: how to run it, a clean environment, a free
port for it and whether that port accepts connections yet."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path


def cli_command() -> list[str]:
    """The venv's `amqp-broker` script (next to sys.executable), else `python -m`."""
    script = Path(sys.executable).parent / "amqp-broker"
    if script.exists():
        return [str(script)]
    found = shutil.which("amqp-broker")
    if found:
        return [found]
    return [sys.executable, "-m", "amqp_broker.cli.main"]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without AMQP_BROKER_* settings (so only the test's count),
    but with the management API and the Prometheus listener on free ports: parallel brokers
    must not all want 15672 and 15692."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMQP_BROKER_")}
    env["AMQP_BROKER_MGMT_PORT"] = "0"
    env["AMQP_BROKER_PROMETHEUS_PORT"] = "0"
    env.update(extra)
    return env


def free_port() -> int:
    """A port free on both 0.0.0.0 and [::] (the CLI's default binds both).

    The port is released before the broker binds it: another process could take it in between,
    but the OS picks bound-to-0 ports across the whole ephemeral range, so parallel test
    workers practically never get the same one."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s4:
            s4.bind(("0.0.0.0", 0))
            port = s4.getsockname()[1]
            if not socket.has_ipv6:
                return port
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s6.bind(("::", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def stop_process(proc: subprocess.Popen | None, timeout: float = 15.0) -> int | None:
    """SIGTERM (a broker's graceful stop), SIGKILL if it hangs; the exit code (None: no process)."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode
