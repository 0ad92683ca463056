"""The control API served by uvicorn inside the engine's own event loop (no thread, no second
loop: routes read the engine's state as it is). uvicorn's own signal handling is off: SIGINT and
SIGTERM stay the engine's (a clean, bounded stop)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

from ...config import ApiSettings
from ...loopback import is_loopback

MIN_TOKEN = 16


def api_problem(settings: ApiSettings, allow_remote: bool) -> str | None:
    """Why the API must not start with these settings, or None."""
    if settings.token is None:
        return "the API needs a bearer token: set TPS19_API__TOKEN (at least 16 characters)"
    if len(settings.token.get_secret_value()) < MIN_TOKEN:
        return f"TPS19_API__TOKEN is shorter than {MIN_TOKEN} characters"
    if not is_loopback(settings.host) and not allow_remote:
        return (f"TPS19_API__HOST {settings.host} is not a loopback address: add --allow-remote to serve the "
                "API there (and put TLS in front of it, docs/operations.md)")
    return None


class ApiServer:
    """The API of one engine, or of every venue of a VenueSet (``engine`` has ``engines``)."""

    def __init__(self, engine: Any, settings: ApiSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.url = ""
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        """Listen (port 0 picks one); returns the base URL. OSError when the port is taken."""
        import uvicorn

        from .app import build_app, build_venues_app

        assert self.settings.token is not None
        token = self.settings.token.get_secret_value()
        if getattr(self.engine, "engines", None) is not None:
            app = build_venues_app(self.engine, token, live_orders=self.settings.live_orders)
        else:
            app = build_app(self.engine, token, live_orders=self.settings.live_orders)
        host = self.settings.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, self.settings.port or 0))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        sock.setblocking(False)
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=1,
                                server_header=False)
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="api")
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{port}"
        return self.url

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            async with asyncio.timeout(3.0):
                await self._task
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
        self._server = self._task = None


def _server_class() -> Any:
    import uvicorn

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield  # the engine owns SIGINT/SIGTERM

    return QuietServer


def _QuietServer(config: Any) -> Any:  # noqa: N802  (a class built on first use: uvicorn is imported lazily)
    return _server_class()(config)
