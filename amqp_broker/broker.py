"""The broker: listeners, vhosts, users and the store, with a start/stop lifecycle.

    async with Broker(port=0, data_dir=tmp) as broker:
        connect_somehow(broker.url)

`stop()` closes every client with connection.close 320 CONNECTION_FORCED (what RabbitMQ sends
on shutdown), waits briefly for close-ok, then flushes and closes the store, so nothing is left
half-written.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
from pathlib import Path

from . import errors
from .alarms import DEFAULT_DISK_FREE_LIMIT, DEFAULT_MEMORY_HIGH_WATERMARK, AlarmMonitor, Watermark, parse_size
from .auth import UserStore
from .server import ClientConnection
from .session.content import MAX_MESSAGE_SIZE
from .session.engine import HANDSHAKE_TIMEOUT
from .expiry import Expirer
from .permissions import Permissions
from .policy_service import PolicyService
from .recovery import load_recovered_queues, recover_definitions, recover_users
from .stats import Churn, Sampler
from .tls import TLSConfigError, TLSListenError, TLSOptions
from .vhost import VHost
from .vhost_registry import VHostRegistry

log = logging.getLogger("amqp_broker")

SHUTDOWN_TEXT = errors.reply_text(
    errors.CONNECTION_FORCED, "broker forced connection closure with reason 'shutdown'"
)


class Broker:
    def __init__(
        self,
        host: str | None = None,
        port: int = 5672,
        data_dir: str | os.PathLike | None = None,
        heartbeat: int = 60,
        users: dict[str, str] | None = None,
        loopback_users: tuple[str, ...] = ("guest",),
        frame_max: int = 131072,
        channel_max: int = 2047,
        store=None,
        mgmt_host: str = "127.0.0.1",
        mgmt_port: int | None = None,
        prometheus_host: str = "127.0.0.1",
        prometheus_port: int | None = None,
        tls_port: int = 5671,
        tls_cert: str | os.PathLike | None = None,
        tls_key: str | os.PathLike | None = None,
        tls_ca: str | os.PathLike | None = None,
        tls_verify_peer: bool = False,
        tls_fail_if_no_peer_cert: bool = False,
        mgmt_tls: bool = False,
        memory_high_watermark: str | float = DEFAULT_MEMORY_HIGH_WATERMARK,
        disk_free_limit: str | int = DEFAULT_DISK_FREE_LIMIT,
        max_message_size: int = MAX_MESSAGE_SIZE,
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ):
        self.host = host or None
        self.port = port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.heartbeat = heartbeat
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.users = UserStore(users, loopback_users)
        self.permissions = Permissions()
        self.store = store
        # limits (RabbitMQ's max_message_size and handshake_timeout)
        self.max_message_size = max_message_size
        self.handshake_timeout = handshake_timeout
        # memory and disk alarms: publishers are blocked while one is in effect (alarms.py)
        self.alarms = AlarmMonitor(Watermark.parse(memory_high_watermark), parse_size(disk_free_limit),
                                   self.data_dir, self._resource_alarms_changed)
        # the management HTTP API (amqp_broker.management): None = no listener, 0 = a free port
        self.mgmt_host = mgmt_host
        self.mgmt_port = mgmt_port
        self._mgmt = None
        # the Prometheus metrics listener (/metrics, as rabbitmq_prometheus): None = none
        self.prometheus_host = prometheus_host
        self.prometheus_port = prometheus_port
        self._prometheus = None
        # TLS (tls.py): with a certificate, an amqps listener on tls_port (0 = a free port);
        # mgmt_tls serves the management API over https with the same settings
        self.tls = None if tls_cert is None else TLSOptions(
            os.fspath(tls_cert), None if tls_key is None else os.fspath(tls_key),
            None if tls_ca is None else os.fspath(tls_ca), tls_verify_peer, tls_fail_if_no_peer_cert,
        )
        self.tls_port = tls_port
        self.mgmt_tls = mgmt_tls
        self.vhosts: dict[str, VHost] = {}
        self.vhost_registry = VHostRegistry(self)  # creates, deletes and recovers the vhosts
        # message statistics (stats.py): connection/channel churn, and the once-a-second
        # sampler the management API's rates come from (it runs while that API listens)
        self.churn = Churn()
        self.stats_sampler = Sampler(self.vhosts, self.churn)
        self.connections: set[ClientConnection] = set()
        # direct reply-to: reply key -> the channel consuming amq.rabbitmq.reply-to
        self.reply_channels: dict = {}
        self.policies = PolicyService(self)
        from .delayed import DelayedDelivery

        # messages held by x-delayed-message exchanges until they are due
        self.delayed = DelayedDelivery(self)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.AbstractServer] = []
        self.started = False

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> "Broker":
        self.loop = asyncio.get_running_loop()
        # TLS files are read before anything opens or listens: bad settings fail the start cleanly
        tls_context = self._tls_context()
        if self.store is None:
            if self.data_dir is not None:
                from .storage.sqlite import SQLiteStore

                self.store = SQLiteStore(self.data_dir)
            else:
                from .storage import MemoryStore

                self.store = MemoryStore()
        await self.store.open()
        try:
            self.expirer = Expirer()
            self.vhost_registry.recover()
            recover_definitions(self.store, self.vhosts)
            self.delayed.load(self.store.delayed())
            recover_users(self.store, self.users, self.permissions)
            self.policies.load(self.store.policies())
            for name in self.vhosts:
                self.policies.apply(name)
            await load_recovered_queues(self.store, self.vhosts)
            self.alarms.start(self.loop)
            # the management listener first: once the AMQP port accepts, the whole broker is up
            # (clients and tests that wait for the AMQP port may use the API at once)
            if self.mgmt_port is not None:
                await self._start_mgmt(tls_context if self.mgmt_tls else None)
            if self.prometheus_port is not None:
                await self._start_prometheus()
            if tls_context is not None:
                try:
                    servers, self.tls_port = await self._listen(self.tls_port, tls_context)
                except OSError as exc:
                    raise TLSListenError(exc.errno, exc.strerror or str(exc)) from exc
                self._servers.extend(servers)
            servers, self.port = await self._listen(self.port)
            self._servers.extend(servers)
        except BaseException:
            for server in self._servers:
                server.close()
            self._servers.clear()
            self.alarms.stop()
            await self._stop_http()
            await self.store.close()
            raise
        self.started = True
        log.debug("listening on %s", ", ".join(_addr(s.getsockname()) for srv in self._servers for s in srv.sockets))
        return self

    def _tls_context(self):
        """The TLS listeners' ssl.SSLContext, None without a certificate (TLSConfigError when
        the files or options do not work)."""
        if self.tls is None:
            if self.mgmt_tls:
                raise TLSConfigError("the management API's TLS needs a certificate (tls_cert)")
            return None
        return self.tls.server_context()

    async def _listen(self, wanted: int, ssl_context=None) -> tuple[list, int]:
        """Bind one AMQP listener (amqps with an ssl_context) -> (servers, bound port). With
        no host: IPv4 and IPv6 on all interfaces, on the *same* port even when the port is
        chosen by the OS (port 0)."""
        if self.host is not None:
            server = await self._server(self.host, wanted, ssl_context)
            return [server], server.sockets[0].getsockname()[1]
        for _attempt in range(10):
            v4 = await self._server("0.0.0.0", wanted, ssl_context)
            port = v4.sockets[0].getsockname()[1]
            try:
                v6 = await self._server("::", port, ssl_context)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE and not wanted:
                    v4.close()  # the OS gave us a port that is taken on IPv6: try another
                    continue
                if exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL):
                    v6 = None  # no IPv6 on this machine
                else:
                    v4.close()
                    raise
            return ([v4] if v6 is None else [v4, v6]), port
        raise OSError(errno.EADDRINUSE, "could not find a port free on both IPv4 and IPv6")

    async def _start_mgmt(self, ssl_context=None) -> None:
        from .management import management_listener  # aiohttp is only imported when it is used

        mgmt = management_listener(self, self.mgmt_host, self.mgmt_port, ssl_context)
        await mgmt.start()
        self._mgmt = mgmt
        self.mgmt_port = mgmt.port
        self.stats_sampler.start(self.loop)

    async def _start_prometheus(self) -> None:
        from .management.app import node_name
        from .management.prometheus import prometheus_listener

        server = prometheus_listener(self, node_name(), self.prometheus_host, self.prometheus_port)
        await server.start()
        self._prometheus = server
        self.prometheus_port = server.port

    async def _stop_http(self) -> None:
        """Stop the management and Prometheus listeners (those that run) and the sampler."""
        self.stats_sampler.stop()
        if self._mgmt is not None:
            await self._mgmt.stop()
            self._mgmt = None
        if self._prometheus is not None:
            await self._prometheus.stop()
            self._prometheus = None

    async def _server(self, host: str, port: int, ssl_context=None):
        return await self.loop.create_server(
            lambda: ClientConnection(self), host=host, port=port, reuse_address=True, backlog=1024,
            ssl=ssl_context,
        )

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        for server in self._servers:
            server.close()
        self.alarms.stop()
        await self._stop_http()
        conns = list(self.connections)
        for conn in conns:
            conn.close(errors.CONNECTION_FORCED, SHUTDOWN_TEXT)
        if conns:
            waits = [asyncio.ensure_future(c.closed_event.wait()) for c in conns]
            done, pending = await asyncio.wait(waits, timeout=3.0)
            for fut in pending:
                fut.cancel()
            for conn in conns:
                conn.abort()
        for server in self._servers:
            try:
                await asyncio.wait_for(server.wait_closed(), 2.0)
            except (asyncio.TimeoutError, Exception):
                pass
        self._servers.clear()
        self.expirer.close()
        await self.store.close()

    def _resource_alarms_changed(self, active: frozenset) -> None:
        """A memory or disk alarm was set or cleared: every connection learns the new set
        (rabbit_reader:conserve_resources/3)."""
        for conn in list(self.connections):
            conn.resource_alarm(active)

    async def __aenter__(self) -> "Broker":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    # -- introspection -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._loopback_url("amqp", self.port)

    @property
    def tls_url(self) -> str | None:
        """The amqps URL of the TLS listener (guest, loopback), None without one."""
        if self.tls is None or not self.started:
            return None
        return self._loopback_url("amqps", self.tls_port)

    def _loopback_url(self, scheme: str, port: int) -> str:
        host = self.host
        if host in (None, "", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://guest:guest@{host}:{port}/"

    def listeners(self) -> list[tuple[str, str, int]]:
        """(protocol, address, port) of every bound listener, named as RabbitMQ names them."""
        bound = [("amqp/ssl" if self.tls is not None and sock.getsockname()[1] == self.tls_port else "amqp",
                  *sock.getsockname()[:2]) for srv in self._servers for sock in srv.sockets]
        if self._mgmt is not None:
            bound.append(("https" if self.mgmt_tls else "http", self._mgmt.host, self._mgmt.port))
        if self._prometheus is not None:
            bound.append(("http/prometheus", self._prometheus.host, self._prometheus.port))
        return bound

    @property
    def mgmt_url(self) -> str | None:
        """Base URL of the management HTTP API (no trailing slash), None without a listener."""
        return self._mgmt.url if self._mgmt is not None else None

    @property
    def prometheus_url(self) -> str | None:
        """Base URL of the Prometheus listener (no trailing slash), None without one."""
        return self._prometheus.url if self._prometheus is not None else None


def _addr(sockname) -> str:
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
