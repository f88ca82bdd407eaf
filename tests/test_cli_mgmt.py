"""`amqp-broker serve` and the management API: --mgmt-port, --no-mgmt, a port in use."""
from __future__ import annotations

import base64
import json
import socket
import subprocess
import urllib.request

import pytest

from helpers.process import clean_env, cli_command, free_port, port_open
from helpers.wait import HANG_GUARD, wait_until


@pytest.fixture
def serve(tmp_path):
    """Start `serve` with extra args; every process is killed at the end."""
    procs = []

    def start(*args: str, env: dict | None = None) -> subprocess.Popen:
        amqp_port = free_port()
        proc = subprocess.Popen(
            cli_command() + ["serve", "--host", "127.0.0.1", "--port", str(amqp_port),
                             "--data-dir", str(tmp_path / f"data{len(procs)}"), *args],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            env=env if env is not None else clean_env(), text=True,
        )
        procs.append(proc)
        ready = wait_until(lambda: proc.poll() is not None or port_open(amqp_port), HANG_GUARD)
        assert ready and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else "not listening"
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def whoami(port: int) -> dict:
    # `serve` opens the AMQP port first, the management one once aiohttp is imported
    assert wait_until(lambda: port_open(port), HANG_GUARD), "management API not listening"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/whoami")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_mgmt_port_serves_the_api(serve):
    port = free_port()
    serve("--mgmt-port", str(port))
    assert whoami(port) == {"name": "guest", "tags": ["administrator"]}


def test_mgmt_port_from_the_environment(serve):
    port = free_port()
    serve(env=clean_env(AMQP_BROKER_MGMT_PORT=str(port), AMQP_BROKER_MGMT_HOST="127.0.0.1"))
    assert whoami(port)["name"] == "guest"


def test_no_mgmt_starts_no_listener(serve):
    port = free_port()
    serve("--no-mgmt", "--mgmt-port", str(port))
    assert not port_open(port)


@pytest.mark.parametrize(("option", "listener"), [("--mgmt-port", "management API"),
                                                ("--prometheus-port", "Prometheus metrics")])
def test_http_port_in_use_is_a_one_line_error(tmp_path, option, listener):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            cli_command() + ["serve", "--host", "127.0.0.1", "--port", str(free_port()),
                             "--data-dir", str(tmp_path / "data"), option, str(port)],
            capture_output=True, text=True, timeout=HANG_GUARD * 2, env=clean_env(), stdin=subprocess.DEVNULL,
        )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("amqp-broker: error:")]
    assert errors == [f"amqp-broker: error: cannot listen on 127.0.0.1:{port} ({listener}): address already in use"]
