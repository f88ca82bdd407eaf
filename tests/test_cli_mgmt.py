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


def whoami(port: int) -> dict:
    # `serve` opens the AMQP port first, the management one once aiohttp is imported
    assert wait_until(lambda: port_open(port), HANG_GUARD), "management API not listening"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/whoami")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_mgmt_port_serves_the_api(serve_cli):
    port = free_port()
    serve_cli("--mgmt-port", str(port))
    assert whoami(port) == {"name": "guest", "tags": ["administrator"]}


def test_mgmt_port_from_the_environment(serve_cli):
    port = free_port()
    serve_cli(env=clean_env(AMQP_BROKER_MGMT_PORT=str(port), AMQP_BROKER_MGMT_HOST="127.0.0.1"))
    assert whoami(port)["name"] == "guest"


def test_no_mgmt_starts_no_listener(serve_cli):
    port = free_port()
    serve_cli("--no-mgmt", "--mgmt-port", str(port))
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
