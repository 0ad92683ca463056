"""The textual-serve server behind `tps19 serve`, guarded and bounded.

What it changes from textual-serve's own Server:
- every route passes the login guard (login.py);
- each browser session's desk process is started from an argv (no shell) with secrets in its
  environment, never on its command line (``ps`` shows every user the command line);
- the banner names the database without its password;
- SIGTERM/SIGINT end the server within ~3 s with desks connected: each desk is asked to stop
  (SIGTERM), and one still running after STOP_GRACE_S is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from .login import Guard

log = logging.getLogger("tps19.serve")

STOP_GRACE_S = 2.0  # a desk's own stop (engine, embedded exchange) inside this, else it is killed
CLOSE_GRACE_S = 0.5


class DeskSession(AppService):
    """One browser session's desk process: ``argv`` run without a shell, in ``env``."""

    def __init__(self, argv: list[str], env: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(" ".join(argv[2:4]), **kwargs)
        self.argv = argv
        self.env = dict(env)

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        environment = super()._build_environment(width, height)
        # textual-serve copies os.environ: the server's own secrets (its password) stay out
        for key in list(environment):
            if key.upper().startswith("TPS19_"):
                del environment[key]
        environment.update(self.env)
        return environment

    async def _open_app_process(self, width: int = 80, height: int = 24) -> asyncio.subprocess.Process:
        self._process = process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._build_environment(width=width, height=height),
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def signal(self, sig: int) -> None:
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(sig)

    async def wait_exit(self) -> None:
        if self._process is not None:
            await self._process.wait()


class DeskServer(Server):
    """textual-serve's Server, with the guard, argv/env desk processes and a bounded stop."""

    def __init__(self, argv: list[str], env: Mapping[str, str], guard: Guard, *, host: str, port: int,
                 title: str, public_url: str | None, banner: list[str]) -> None:
        super().__init__(" ".join(argv[2:4]), host=host, port=port, title=title, public_url=public_url)
        self.argv = argv
        self.env = dict(env)
        self.guard = guard
        self.banner = banner
        self.sessions: set[DeskSession] = set()
        self.sockets: set[web.WebSocketResponse] = set()

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        self.guard.install(app)
        return app

    async def on_startup(self, app: web.Application) -> None:
        pass  # textual-serve's banner shows the command; ours is printed once listening

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15)
        width = _to_int(request.query.get("width", "80"), 80)
        height = _to_int(request.query.get("height", "24"), 24)
        session: DeskSession | None = None
        self.sockets.add(websocket)
        try:
            await websocket.prepare(request)
            session = DeskSession(self.argv, self.env, write_bytes=websocket.send_bytes,
                                  write_str=websocket.send_str, close=websocket.close,
                                  download_manager=self.download_manager, debug=self.debug)
            self.sessions.add(session)
            await session.start(width, height)
            log.info("serve: desk process %s started for %s", session.pid, request.remote)
            try:
                await self._process_messages(websocket, session)
            finally:
                await session.stop()
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # a browser that sends garbage ends its own session only
            log.warning("serve: session from %s ended: %s: %s", request.remote, type(error).__name__, error)
        finally:
            self.sockets.discard(websocket)
            if session is not None:
                self.sessions.discard(session)
                session.signal(signal.SIGTERM)  # the browser left; its desk goes too
        return websocket

    async def stop_desks(self) -> None:
        """Each desk asked to stop, killed after STOP_GRACE_S; then the browsers' sockets closed."""
        sessions = list(self.sessions)
        for s in sessions:
            s.signal(signal.SIGTERM)
        if sessions:
            _, pending = await asyncio.wait([asyncio.ensure_future(s.wait_exit()) for s in sessions],
                                            timeout=STOP_GRACE_S)
            if pending:
                for s in sessions:
                    if s._process is not None and s._process.returncode is None:
                        log.warning("serve: desk process %s did not stop within %gs: killed", s.pid, STOP_GRACE_S)
                        s.signal(signal.SIGKILL)
                await asyncio.wait(pending, timeout=CLOSE_GRACE_S)
        sockets = list(self.sockets)
        if sockets:
            await asyncio.wait([asyncio.ensure_future(ws.close(code=1001, message=b"server stopping"))
                                for ws in sockets], timeout=CLOSE_GRACE_S)

    def serve(self, debug: bool = False) -> None:
        self.debug = debug
        self.initialize_logging()
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        app = await self._make_app()
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=CLOSE_GRACE_S, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        for line in self.banner:  # plain lines (rich would wrap them at 80 columns in a log)
            print(line, flush=True)
        try:
            await stop.wait()
        finally:
            log.info("serve: stopping (%d desk session(s))", len(self.sessions))
            await site.stop()  # no new connections while the desks stop
            await self.stop_desks()
            await runner.cleanup()


def _to_int(value: str, default: int) -> int:
    try:
        return int(value)
    except ValueError:
        return default


def child_env(db: str | None, is_url: bool) -> dict[str, str]:
    """The TPS19_ settings a desk process gets: the server's own, less its password and the API's
    (a desk per browser session must not open the API port), plus ``--db`` as a setting."""
    env = {k: v for k, v in os.environ.items()
           if k.upper().startswith("TPS19_") and not k.upper().startswith(("TPS19_SERVE__", "TPS19_API__"))}
    if db is not None:
        if is_url:
            env["TPS19_DATABASE__URL"] = db
        else:
            env["TPS19_DATABASE__PATH"] = db
            env["TPS19_DATABASE__URL"] = ""
    return env
