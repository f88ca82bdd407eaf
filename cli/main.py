"""Command line: `amqp-broker serve` runs the broker in the foreground; the other commands
administer a running broker through its management HTTP API (one module per group: queues.py,
exchanges.py, ...; see docs/cli.md).

Deliberately thin: it parses options, prepares the data directory, and hands everything to
`amqp_broker.Broker`. No broker logic lives here.
"""
from __future__ import annotations

import asyncio
import enum
import errno
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Optional

import typer

from . import bindings, connections, definitions, exchanges, permissions, policies, queues, status, users, vhosts
from .command import admin_command, fail

log = logging.getLogger("amqp_broker.cli")

MAX_MESSAGE_SIZE = 134217728  # RabbitMQ's default max_message_size (128 MiB)
MAX_MESSAGE_SIZE_CAP = 536870912  # the largest RabbitMQ accepts (512 MiB)

app = typer.Typer(
    name="amqp-broker",
    help="An AMQP 0-9-1 message broker that RabbitMQ clients use unchanged.",
    no_args_is_help=True,
)


class LogLevel(str, enum.Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/amqp-broker`, else `~/.local/share/amqp-broker`."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "amqp-broker"


def package_version() -> str:
    try:
        from importlib.metadata import version

        return version("amqp-broker")
    except Exception:  # not installed (running from a bare checkout)
        return getattr(__import__("amqp_broker"), "__version__", "unknown")


def prepare_data_dir(path: Path) -> Path:
    """Create `path` if missing and check it is writable; a clear error otherwise."""
    path = path.expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise fail(f"cannot use data dir {path}: {exc.strerror or exc}") from None
    return path.resolve()


def describe_host(host: Optional[str], port: int) -> str:
    if host is None:
        return f"0.0.0.0:{port} and [::]:{port}"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def run_broker(
    host: Optional[str], port: int, data_dir: Path, mgmt_host: str = "127.0.0.1", mgmt_port: Optional[int] = None,
    prometheus_host: str = "127.0.0.1", prometheus_port: Optional[int] = None, options: Optional[dict] = None,
) -> None:
    """`options`: more Broker keyword arguments (TLS, alarms and limits, users), checked by
    `serve` before anything starts."""
    from amqp_broker import Broker

    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop_requested.set)
        except (NotImplementedError, RuntimeError):  # e.g. Windows: Ctrl-C raises instead
            pass

    from amqp_broker.management import ManagementListenError
    from amqp_broker.management.prometheus import PrometheusListenError
    from amqp_broker.storage import StoreError
    from amqp_broker.tls import TLSConfigError, TLSListenError

    broker = Broker(host=host, port=port, data_dir=str(data_dir), mgmt_host=mgmt_host, mgmt_port=mgmt_port,
                    prometheus_host=prometheus_host, prometheus_port=prometheus_port, **(options or {}))
    try:
        await broker.start()
    except StoreError as exc:  # locked, corrupt or newer database: the message says which
        raise fail(str(exc)) from None
    except TLSConfigError as exc:  # a missing certificate file, a key of another certificate...
        raise fail(str(exc)) from None
    except OSError as exc:
        where = describe_host(host, port)
        if isinstance(exc, TLSListenError):
            where = f"{describe_host(host, broker.tls_port)} (amqps)"
        elif isinstance(exc, ManagementListenError):
            where = f"{describe_host(mgmt_host, mgmt_port)} (management API)"
        elif isinstance(exc, PrometheusListenError):
            where = f"{describe_host(prometheus_host, prometheus_port)} (Prometheus metrics)"
        if exc.errno == errno.EADDRINUSE or "address already in use" in str(exc).lower():
            raise fail(f"cannot listen on {where}: address already in use") from None
        raise fail(f"cannot listen on {where}: {exc.strerror or exc}") from None

    log.info(
        "amqp-broker listening on %s (data dir %s)", describe_host(host, broker.port), data_dir
    )
    if broker.tls_url is not None:
        log.info("amqps (TLS) listening on %s", describe_host(host, broker.tls_port))
    if broker.mgmt_url is not None:
        log.info("management API on %s", broker.mgmt_url)
    if broker.prometheus_url is not None:
        log.info("Prometheus metrics on %s/metrics", broker.prometheus_url)
    try:
        await stop_requested.wait()
        log.info("amqp-broker shutting down")
    finally:
        await broker.stop()
    log.info("amqp-broker stopped")


def run(coro) -> None:
    """Run `coro` on uvloop when it is installed, else on the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(coro)


@app.callback()
def main() -> None:
    """An AMQP 0-9-1 message broker that RabbitMQ clients use unchanged."""


@app.command()
def serve(
    host: Optional[str] = typer.Option(
        None,
        "--host",
        envvar="AMQP_BROKER_HOST",
        help="Interface to listen on, e.g. 127.0.0.1 or ::1 (default: all interfaces, IPv4 and IPv6).",
        show_default=False,
    ),
    port: int = typer.Option(
        5672, "--port", envvar="AMQP_BROKER_PORT", min=0, max=65535, help="TCP port (0: any free port)."
    ),
    data_dir: Optional[Path] = typer.Option(
        None,
        "--data-dir",
        envvar="AMQP_BROKER_DATA_DIR",
        help="Where the broker keeps its state; created if missing "
        "(default: $XDG_DATA_HOME/amqp-broker, else ~/.local/share/amqp-broker).",
        show_default=False,
        file_okay=False,
    ),
    mgmt_host: str = typer.Option(
        "127.0.0.1", "--mgmt-host", envvar="AMQP_BROKER_MGMT_HOST", help="Interface of the management HTTP API."
    ),
    mgmt_port: int = typer.Option(
        15672, "--mgmt-port", envvar="AMQP_BROKER_MGMT_PORT", min=0, max=65535,
        help="TCP port of the management HTTP API (0: any free port).",
    ),
    no_mgmt: bool = typer.Option(False, "--no-mgmt", help="Do not start the management HTTP API."),
    prometheus_host: str = typer.Option(
        "127.0.0.1", "--prometheus-host", envvar="AMQP_BROKER_PROMETHEUS_HOST",
        help="Interface of the Prometheus metrics listener.",
    ),
    prometheus_port: int = typer.Option(
        15692, "--prometheus-port", envvar="AMQP_BROKER_PROMETHEUS_PORT", min=0, max=65535,
        help="TCP port of the Prometheus metrics listener, /metrics (0: any free port).",
    ),
    no_prometheus: bool = typer.Option(
        False, "--no-prometheus", help="Do not start the Prometheus metrics listener (the management "
        "listener still serves /metrics)."
    ),
    tls_port: int = typer.Option(
        5671, "--tls-port", envvar="AMQP_BROKER_TLS_PORT", min=0, max=65535,
        help="TCP port of the amqps (TLS) listener, started when --tls-cert is given (0: any free port).",
    ),
    tls_cert: Optional[Path] = typer.Option(
        None, "--tls-cert", envvar="AMQP_BROKER_TLS_CERT", show_default=False, dir_okay=False,
        help="The server's certificate (chain), PEM: enables the amqps listener.",
    ),
    tls_key: Optional[Path] = typer.Option(
        None, "--tls-key", envvar="AMQP_BROKER_TLS_KEY", show_default=False, dir_okay=False,
        help="The certificate's private key, PEM (default: in the --tls-cert file).",
    ),
    tls_ca: Optional[Path] = typer.Option(
        None, "--tls-ca", envvar="AMQP_BROKER_TLS_CA", show_default=False, dir_okay=False,
        help="CA certificates, PEM, that client certificates must chain up to.",
    ),
    tls_verify_peer: bool = typer.Option(
        False, "--tls-verify-peer", envvar="AMQP_BROKER_TLS_VERIFY_PEER",
        help="Ask clients for a certificate and refuse one not signed by --tls-ca (RabbitMQ's "
        "verify_peer); a verified certificate's CN may log in with EXTERNAL.",
    ),
    tls_fail_if_no_peer_cert: bool = typer.Option(
        False, "--tls-fail-if-no-peer-cert", envvar="AMQP_BROKER_TLS_FAIL_IF_NO_PEER_CERT",
        help="With --tls-verify-peer: refuse clients that send no certificate.",
    ),
    mgmt_tls: bool = typer.Option(
        False, "--mgmt-tls", envvar="AMQP_BROKER_MGMT_TLS",
        help="Serve the management API over https on --mgmt-port, with the --tls-* certificate and settings.",
    ),
    default_user: Optional[str] = typer.Option(
        None, "--default-user", envvar="AMQP_BROKER_DEFAULT_USER", show_default=False,
        help="On the first start, create this administrator (full permissions on /) instead of guest.",
    ),
    default_pass: Optional[str] = typer.Option(
        None, "--default-pass", envvar="AMQP_BROKER_DEFAULT_PASS", show_default=False,
        help="The --default-user's password.",
    ),
    loopback_users: str = typer.Option(
        "guest", "--loopback-users", envvar="AMQP_BROKER_LOOPBACK_USERS",
        help="Comma-separated users who may connect only from localhost ('none': no such user).",
    ),
    log_level: LogLevel = typer.Option(
        LogLevel.info, "--log-level", envvar="AMQP_BROKER_LOG_LEVEL", case_sensitive=False, help="Log verbosity."
    ),
    memory_high_watermark: str = typer.Option(
        "0.4", "--memory-high-watermark", envvar="AMQP_BROKER_MEMORY_HIGH_WATERMARK",
        help="Block publishers when the broker uses more memory than this: a fraction of RAM (0.4) "
        "or an absolute size (200MB, 1GiB); 0 blocks all publishing.",
    ),
    disk_free_limit: str = typer.Option(
        "50MB", "--disk-free-limit", envvar="AMQP_BROKER_DISK_FREE_LIMIT",
        help="Block publishers when the data directory's disk has less free space than this (50MB, 2GB).",
    ),
    max_message_size: int = typer.Option(
        MAX_MESSAGE_SIZE, "--max-message-size", envvar="AMQP_BROKER_MAX_MESSAGE_SIZE", min=1, max=MAX_MESSAGE_SIZE_CAP,
        help="Largest message body in bytes; a larger publish closes its channel with 406 PRECONDITION_FAILED.",
    ),
    handshake_timeout: float = typer.Option(
        10.0, "--handshake-timeout", envvar="AMQP_BROKER_HANDSHAKE_TIMEOUT", min=0.1,
        help="Seconds a client has from its TCP connect to connection.open before it is disconnected.",
    ),
) -> None:
    """Run the broker in the foreground until SIGINT or SIGTERM."""
    logging.basicConfig(
        level=log_level.value.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if host is not None and host.strip() in ("", "*"):
        host = None  # explicit "all interfaces"
    limits = alarm_and_limit_settings(memory_high_watermark, disk_free_limit, max_message_size, handshake_timeout)
    directory = prepare_data_dir(data_dir if data_dir is not None else default_data_dir())
    tls = {"tls_port": tls_port, "tls_cert": tls_cert, "tls_key": tls_key, "tls_ca": tls_ca,
           "tls_verify_peer": tls_verify_peer, "tls_fail_if_no_peer_cert": tls_fail_if_no_peer_cert,
           "mgmt_tls": mgmt_tls}
    users = user_settings(default_user, default_pass, loopback_users)
    run(run_broker(host, port, directory, mgmt_host, None if no_mgmt else mgmt_port,
                   prometheus_host, None if no_prometheus else prometheus_port, {**tls, **limits, **users}))


def user_settings(default_user: Optional[str], default_pass: Optional[str], loopback_users: str) -> dict:
    """Broker keyword arguments of the user options. The default user replaces `guest` on the
    first start (an empty data dir), as RABBITMQ_DEFAULT_USER/RABBITMQ_DEFAULT_PASS do; later
    starts keep the stored users."""
    if (default_user is None) != (default_pass is None):
        raise fail("--default-user and --default-pass go together: give both or neither")
    if default_user is not None and not default_user.strip():
        raise fail("--default-user: the user name must not be empty")
    names = [] if loopback_users.strip().lower() == "none" else [n.strip() for n in loopback_users.split(",") if n.strip()]
    settings: dict = {"loopback_users": tuple(names)}
    if default_user is not None:
        settings["users"] = {default_user: default_pass}
    return settings


def alarm_and_limit_settings(memory_high_watermark: str, disk_free_limit: str, max_message_size: int,
                             handshake_timeout: float) -> dict:
    """Broker keyword arguments of the alarm and limit options, checked before anything starts."""
    from amqp_broker.alarms import SizeError, Watermark, parse_size

    try:
        watermark = Watermark.parse(memory_high_watermark)
    except SizeError as exc:
        raise fail(f"--memory-high-watermark: {exc}") from None
    try:
        disk_limit = parse_size(disk_free_limit)
    except SizeError as exc:
        raise fail(f"--disk-free-limit: {exc}") from None
    return {"memory_high_watermark": watermark.relative if watermark.absolute is None else watermark.absolute,
            "disk_free_limit": disk_limit, "max_message_size": max_message_size,
            "handshake_timeout": handshake_timeout}


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"amqp-broker {package_version()}")


app.add_typer(queues.app, name="queues")
app.add_typer(exchanges.app, name="exchanges")
app.add_typer(bindings.app, name="bindings")
admin_command(app, "publish")(exchanges.publish)
app.add_typer(policies.app, name="policies")
app.add_typer(users.app, name="users")
app.add_typer(vhosts.app, name="vhosts")
app.add_typer(permissions.app, name="permissions")
app.add_typer(connections.connections_app, name="connections")
app.add_typer(connections.channels_app, name="channels")
app.add_typer(connections.consumers_app, name="consumers")
app.add_typer(definitions.app, name="definitions")
admin_command(app, "status")(status.status)


if __name__ == "__main__":
    app()
