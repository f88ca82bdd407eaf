"""`amqp-broker serve` as a real process: options, env vars, IPv4/IPv6, signals, errors.

These always exercise our broker (the CLI is ours), even when AMQP_REFERENCE_URL is set.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pika
import pytest
from pika.exceptions import ConnectionClosedByBroker

from helpers.pika_client import roundtrip
from helpers.process import clean_env, cli_command, free_port, port_open
from helpers.wait import wait_until

STARTUP_TIMEOUT = 20.0


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Server:
    """One `amqp-broker serve` subprocess; stdout/stderr go to files in tmp_path."""

    def __init__(self, tmp_path: Path, args: list[str], env: dict[str, str] | None = None, name: str = "serve"):
        self.stdout_path = tmp_path / f"{name}.out"
        self.stderr_path = tmp_path / f"{name}.err"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            cli_command() + ["serve", *args],
            stdout=self._out,
            stderr=self._err,
            stdin=subprocess.DEVNULL,
            env=env if env is not None else clean_env(),
        )

    @property
    def stderr(self) -> str:
        self._err.flush()
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self, port: int, host: str = "127.0.0.1") -> None:
        def listening() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"amqp-broker serve exited {self.proc.returncode} before listening:\n{self.stderr}")
            return port_open(port, host)

        if not wait_until(listening, STARTUP_TIMEOUT):
            pytest.fail(f"amqp-broker serve not listening on {host}:{port} after {STARTUP_TIMEOUT}s:\n{self.stderr}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()
        self._err.close()


@pytest.fixture
def servers():
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def params(host: str, port: int) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=host,
        port=port,
        credentials=pika.PlainCredentials("guest", "guest"),
        connection_attempts=1,
        socket_timeout=5,
        blocked_connection_timeout=5,
    )


def test_serve_ipv4_and_ipv6(tmp_path, servers):
    port = free_port()
    server = Server(tmp_path, ["--port", str(port), "--data-dir", str(tmp_path / "data")])
    servers.append(server)
    server.wait_ready(port)
    assert roundtrip(params("127.0.0.1", port), b"over ipv4") == b"over ipv4"
    # the issue requires [::1] to work with the default host (dual stack)
    assert ipv6_loopback_available(), "this machine has no IPv6 loopback"
    assert roundtrip(params("::1", port), b"over ipv6") == b"over ipv6"
    assert "listening on" in server.stderr


def test_serve_explicit_ipv6_host(tmp_path, servers):
    assert ipv6_loopback_available(), "this machine has no IPv6 loopback"
    port = free_port()
    server = Server(tmp_path, ["--host", "::1", "--port", str(port), "--data-dir", str(tmp_path / "data")])
    servers.append(server)
    server.wait_ready(port, host="::1")
    assert roundtrip(params("::1", port), b"v6 only") == b"v6 only"


def test_sigterm_closes_clients_with_320_and_exits_0(tmp_path, servers):
    port = free_port()
    server = Server(tmp_path, ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data")])
    servers.append(server)
    server.wait_ready(port)

    connection = pika.BlockingConnection(params("127.0.0.1", port))
    try:
        connection.channel()
        server.proc.send_signal(signal.SIGTERM)
        closed = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                connection.process_data_events(time_limit=0.2)
            except ConnectionClosedByBroker as exc:
                closed = exc
                break
        assert closed is not None, "client never saw connection.close from the broker"
        assert closed.reply_code == 320, closed
        assert server.proc.wait(timeout=10) == 0, server.stderr
    finally:
        with contextlib.suppress(Exception):
            if connection.is_open:
                connection.close()
    assert "Traceback" not in server.stderr


def test_sigint_exits_0(tmp_path, servers):
    port = free_port()
    server = Server(tmp_path, ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(tmp_path / "data")])
    servers.append(server)
    server.wait_ready(port)
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=10) == 0, server.stderr
    assert "Traceback" not in server.stderr


def test_env_vars(tmp_path, servers):
    port = free_port()
    data_dir = tmp_path / "nested" / "data"  # created by serve
    env = clean_env(
        AMQP_BROKER_HOST="127.0.0.1",
        AMQP_BROKER_PORT=str(port),
        AMQP_BROKER_DATA_DIR=str(data_dir),
        AMQP_BROKER_LOG_LEVEL="DEBUG",
    )
    server = Server(tmp_path, [], env=env)
    servers.append(server)
    server.wait_ready(port)
    assert data_dir.is_dir()
    assert roundtrip(params("127.0.0.1", port), b"env") == b"env"
    assert str(port) in server.stderr


def test_default_data_dir_follows_xdg_data_home(tmp_path, servers):
    port = free_port()
    env = clean_env(XDG_DATA_HOME=str(tmp_path / "xdg"))
    server = Server(tmp_path, ["--host", "127.0.0.1", "--port", str(port)], env=env)
    servers.append(server)
    server.wait_ready(port)
    assert (tmp_path / "xdg" / "amqp-broker").is_dir()


@pytest.mark.parametrize("host", ["127.0.0.1", None], ids=["loopback", "all-interfaces"])
def test_port_in_use(tmp_path, servers, host):
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("0.0.0.0" if host is None else host, port))
        blocker.listen()
        args = ["--port", str(port), "--data-dir", str(tmp_path / "data")]
        if host is not None:
            args += ["--host", host]
        server = Server(tmp_path, args)
        servers.append(server)
        assert server.proc.wait(timeout=STARTUP_TIMEOUT) == 1
    err = server.stderr
    assert "address already in use" in err
    assert f":{port}" in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "address already in use" in line]) == 1, err


def test_unwritable_data_dir(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    proc = subprocess.run(
        cli_command() + ["serve", "--port", "0", "--data-dir", str(not_a_dir / "data")],
        capture_output=True, text=True, timeout=STARTUP_TIMEOUT, env=clean_env(), stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1
    assert "data dir" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_bad_log_level():
    proc = subprocess.run(
        cli_command() + ["serve", "--log-level", "bogus"],
        capture_output=True, text=True, timeout=STARTUP_TIMEOUT, env=clean_env(), stdin=subprocess.DEVNULL,
    )
    assert proc.returncode != 0
    assert "bogus" in proc.stderr and "log-level" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_serve():
    proc = subprocess.run(cli_command() + ["--help"], capture_output=True, text=True, timeout=STARTUP_TIMEOUT,
                          env=clean_env(), stdin=subprocess.DEVNULL)
    assert proc.returncode == 0
    assert "serve" in proc.stdout and "version" in proc.stdout


def test_version():
    from importlib.metadata import version

    proc = subprocess.run(cli_command() + ["version"], capture_output=True, text=True, timeout=STARTUP_TIMEOUT,
                          env=clean_env(), stdin=subprocess.DEVNULL)
    assert proc.returncode == 0
    assert version("amqp-broker") in proc.stdout


# --------------------------------------------------------------------------------------------
# start-up errors of the durable store: one line on stderr, no traceback, exit code 1


def serve_once(data_dir: Path) -> subprocess.CompletedProcess:
    """`serve` expected to fail at start-up: returns the finished process."""
    return subprocess.run(
        cli_command() + ["serve", "--host", "127.0.0.1", "--port", str(free_port()), "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=STARTUP_TIMEOUT, env=clean_env(), stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, data_dir: Path, *needles: str) -> str:
    """Exit code 1, exactly one line on stderr, no traceback; returns that line with the data
    dir replaced by <data> (so that the needles cannot match the temporary path)."""
    err = proc.stderr
    assert proc.returncode == 1, (proc.returncode, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    line = lines[0].replace(str(data_dir.resolve()), "<data>").replace(str(data_dir), "<data>")
    for needle in needles:
        assert needle in line.lower(), (needle, lines[0])
    return line


def start_and_stop(tmp_path: Path, data_dir: Path, servers, name: str = "first") -> None:
    """Run `serve` once on `data_dir` (creates the database) and stop it gracefully."""
    port = free_port()
    server = Server(tmp_path, ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)], name=name)
    servers.append(server)
    server.wait_ready(port)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0, server.stderr


def test_database_from_newer_schema_version_is_refused(tmp_path, servers):
    import sqlite3

    data = tmp_path / "data"
    start_and_stop(tmp_path, data, servers)
    db = sqlite3.connect(data / "broker.db")
    with db:
        changed = db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'").rowcount
    db.close()
    assert changed == 1
    line = assert_one_line_error(serve_once(data), data, "999")
    assert "version" in line.lower()
    db = sqlite3.connect(data / "broker.db")  # left as it was: no downgrade, no rewrite
    try:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("999",)
    finally:
        db.close()


@pytest.mark.parametrize("garbage", [
    b"this is not an sqlite database\n" * 200,
    b"SQLite format 3\x00" + bytes(range(256)) * 16,  # right magic, garbage after it
], ids=["text", "bad-header"])
def test_corrupt_database_is_a_one_line_error(tmp_path, garbage):
    data = tmp_path / "data"
    data.mkdir()
    (data / "broker.db").write_bytes(garbage)
    line = assert_one_line_error(serve_once(data), data)
    assert "broker.db" in line or "database" in line.lower(), line
    assert (data / "broker.db").read_bytes() == garbage  # not replaced by a fresh database


def test_corrupted_existing_database_is_a_one_line_error(tmp_path, servers):
    """A database the broker wrote, then overwritten in the middle with garbage."""
    data = tmp_path / "data"
    start_and_stop(tmp_path, data, servers)
    db = data / "broker.db"
    raw = bytearray(db.read_bytes())
    assert len(raw) >= 4096
    raw[100:len(raw)] = os.urandom(len(raw) - 100)  # keep the magic, destroy everything else
    db.write_bytes(bytes(raw))
    for leftover in (data / "broker.db-wal", data / "broker.db-shm"):
        if leftover.exists():
            leftover.unlink()
    line = assert_one_line_error(serve_once(data), data)
    assert "broker.db" in line or "database" in line.lower(), line


def test_database_path_is_a_directory_is_a_one_line_error(tmp_path):
    data = tmp_path / "data"
    (data / "broker.db").mkdir(parents=True)
    assert_one_line_error(serve_once(data), data)


def test_second_broker_on_the_same_data_dir_is_refused(tmp_path, servers):
    data = tmp_path / "data"
    port = free_port()
    first = Server(tmp_path, ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data)], name="first")
    servers.append(first)
    first.wait_ready(port)
    for attempt in range(2):  # a refused start must not release the first broker's lock
        line = assert_one_line_error(serve_once(data), data, "in use")
        assert "data dir" in line.lower() or "<data>" in line, line
    # the first one is unharmed
    assert roundtrip(params("127.0.0.1", port), b"still here") == b"still here"
    assert first.proc.poll() is None
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=10) == 0, first.stderr
    # once it is gone, the data dir is free again
    port2 = free_port()
    again = Server(tmp_path, ["--host", "127.0.0.1", "--port", str(port2), "--data-dir", str(data)], name="again")
    servers.append(again)
    again.wait_ready(port2)


def test_data_dir_is_free_again_after_kill9(tmp_path, servers):
    data = tmp_path / "data"
    port = free_port()
    first = Server(tmp_path, ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data)], name="first")
    servers.append(first)
    first.wait_ready(port)
    first.proc.kill()
    first.proc.wait(10)
    port2 = free_port()
    second = Server(tmp_path, ["--host", "127.0.0.1", "--port", str(port2), "--data-dir", str(data)], name="second")
    servers.append(second)
    second.wait_ready(port2)
    assert roundtrip(params("127.0.0.1", port2), b"after kill") == b"after kill"
