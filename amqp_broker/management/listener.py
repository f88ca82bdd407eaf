"""An aiohttp application served on one TCP port (https with an SSL context): the management
API's listener and the Prometheus one are both this, each with its own error class so the CLI
can say which port was taken."""
from __future__ import annotations

from aiohttp import web


class HttpListener:
    """Starts and stops the listener; `port` is the bound one (useful with port 0). A bind
    failure is raised as `listen_error` (an OSError subclass) with the same errno."""

    def __init__(self, app: web.Application, host: str, port: int, listen_error: type[OSError],
                 ssl_context=None):
        self.host = host
        self.port = port
        self._ssl_context = ssl_context  # an ssl.SSLContext: https (amqp_broker/tls.py builds it)
        self._listen_error = listen_error
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True,
                           ssl_context=self._ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise self._listen_error(exc.errno, exc.strerror or str(exc)) from exc
        except BaseException:
            await self._runner.cleanup()
            raise
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self._runner.cleanup()

    @property
    def url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host else host
        scheme = "http" if self._ssl_context is None else "https"
        return f"{scheme}://{host}:{self.port}"
