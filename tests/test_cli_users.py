"""`serve --default-user/--default-pass` (RABBITMQ_DEFAULT_USER/PASS's counterpart) and
`--loopback-users`, with the broker as a real subprocess and pika as the client."""
from __future__ import annotations

import subprocess

import pika
import pytest

from helpers.process import clean_env, cli_command
from helpers.wait import HANG_GUARD


def login(port: int, user: str, password: str, host: str = "127.0.0.1") -> bool:
    params = pika.ConnectionParameters(host, port, credentials=pika.PlainCredentials(user, password),
                                       connection_attempts=1, socket_timeout=5)
    try:
        pika.BlockingConnection(params).close()
    except pika.exceptions.ProbableAuthenticationError:
        return False
    return True


def test_default_user_replaces_guest_on_the_first_start(serve_cli):
    port = serve_cli("--default-user", "admin", "--default-pass", "s3cret").port
    assert login(port, "admin", "s3cret")  # with full permissions on "/" (connection.open passed)
    assert not login(port, "guest", "guest")


def test_default_user_from_the_environment(serve_cli):
    env = clean_env(AMQP_BROKER_DEFAULT_USER="ops", AMQP_BROKER_DEFAULT_PASS="pw")
    port = serve_cli(env=env).port
    assert login(port, "ops", "pw")


@pytest.mark.parametrize("args", [["--default-user", "admin"], ["--default-pass", "x"],
                                  ["--default-user", " ", "--default-pass", "x"]])
def test_default_user_needs_both_options(tmp_path, args):
    proc = subprocess.run(cli_command() + ["serve", "--port", "0", "--data-dir", str(tmp_path / "d"), *args],
                          capture_output=True, text=True, timeout=HANG_GUARD, env=clean_env(),
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("amqp-broker: error: --default-"), proc.stderr


def test_loopback_users_none_lets_guest_in_from_another_address(serve_cli):
    """guest may log in from a non-loopback address only when loopback_users is emptied. The
    test reaches the broker through this machine's own non-loopback address when it has one."""
    import socket

    address = None
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: only picks the outgoing address
            address = probe.getsockname()[0]
    except OSError:
        pass
    assert address and not address.startswith("127."), "this machine has no non-loopback IPv4 address"
    refused = serve_cli(host="0.0.0.0").port
    assert not login(refused, "guest", "guest", host=address)
    allowed = serve_cli("--loopback-users", "none", host="0.0.0.0").port
    assert login(allowed, "guest", "guest", host=address)
