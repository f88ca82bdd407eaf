"""The `serve_cli` fixture: `amqp-broker serve` as real subprocesses on loopback, each with its
own free AMQP port and data dir, waited for until it listens and stopped at the end."""
from __future__ import annotations

import subprocess

import pytest

from helpers.process import clean_env, cli_command, free_port, port_open, stop_process
from helpers.wait import HANG_GUARD, wait_until


class Served:
    """One started `serve`: its process and AMQP port."""

    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc = proc
        self.port = port


@pytest.fixture
def serve_cli(tmp_path):
    """`serve_cli(*args, env=None, host="127.0.0.1", data=None, ready_port=None) -> Served`.

    The listeners start in turn, so a test of another listener passes it as `ready_port`."""
    started: list[Served] = []

    def start(*args: str, env: dict | None = None, host: str = "127.0.0.1", data: str | None = None,
              ready_port: int | None = None) -> Served:
        port = free_port()
        proc = subprocess.Popen(
            cli_command() + ["serve", "--host", host, "--port", str(port),
                             "--data-dir", str(tmp_path / (data or f"data{len(started)}")), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=env if env is not None else clean_env(), text=True,
        )
        served = Served(proc, port)
        started.append(served)
        wait_for = ready_port or port
        ready = wait_until(lambda: proc.poll() is not None or port_open(wait_for), HANG_GUARD)
        assert ready and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else "not listening"
        return served

    yield start
    for served in started:
        stop_process(served.proc)
