"""The fault switchboard: an HTTP API over ``sim.faults`` for chaos-testing a bot from outside.

Served by ``tps19 exchange --control-port C`` on 127.0.0.1 only (it can break every client of the
venue, so it is never exposed beyond this machine). Every answer is JSON; a bad parameter is a 400
whose ``error`` names it, so a typo in a chaos script fails loudly instead of injecting nothing.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

if TYPE_CHECKING:  # pragma: no cover
    from .server import SimExchange

CONTROL_HOST = "127.0.0.1"

# Upper bounds keep one mistyped number from wedging the venue (e.g. 10^9 garbage frames queued).
MAX_COUNT = 1_000_000
MAX_GARBAGE = 10_000
MAX_MS = 600_000
MAX_SECONDS = 86_400.0


class BadParameter(Exception):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name


def _error(status: int, message: str, parameter: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if parameter is not None:
        body["parameter"] = parameter
    return web.json_response(body, status=status)


class _Params:
    """The query string, read once per parameter; anything left unread is an unknown parameter."""

    def __init__(self, request: web.Request) -> None:
        self._q = request.query
        self._read: set[str] = set()

    def _raw(self, name: str, required: bool) -> str | None:
        self._read.add(name)
        values = self._q.getall(name, [])
        if len(values) > 1:
            raise BadParameter(name, "given more than once")
        if not values:
            if required:
                raise BadParameter(name, "is required")
            return None
        return values[0].strip()

    def integer(self, name: str, default: int | None, lo: int, hi: int) -> int:
        raw = self._raw(name, required=default is None)
        if raw is None:
            assert default is not None
            return default
        # Digits only: "1e3", "inf", "nan", "0x10" and "-1" are refused rather than guessed at.
        if not raw.isascii() or not raw.isdigit():
            raise BadParameter(name, f"must be a whole number from {lo} to {hi}, got {raw!r}")
        value = int(raw)
        if not lo <= value <= hi:
            raise BadParameter(name, f"must be from {lo} to {hi}, got {value}")
        return value

    def seconds(self, name: str, hi: float) -> float:
        raw = self._raw(name, required=True)
        assert raw is not None
        try:
            value = float(raw)
        except ValueError:
            raise BadParameter(name, f"must be a number of seconds, got {raw!r}") from None
        if not math.isfinite(value) or not 0 < value <= hi:
            raise BadParameter(name, f"must be more than 0 and at most {hi:g}, got {raw!r}")
        return value

    def percent(self, name: str, lo: float, hi: float) -> float:
        raw = self._raw(name, required=True)
        assert raw is not None
        try:
            value = float(raw)
        except ValueError:
            raise BadParameter(name, f"must be a number of percent, got {raw!r}") from None
        if not math.isfinite(value) or not lo < value < hi or value == 0:
            raise BadParameter(name, f"must be a non-zero percent above {lo:g} and below {hi:g}, got {raw!r}")
        return value

    def symbol(self, sim: "SimExchange", name: str, required: bool) -> str | None:
        raw = self._raw(name, required)
        if raw is None:
            return None
        try:
            return sim._instrument(raw.upper()).symbol  # "BTC/USDT" or the venue id "BTC_USDT"
        except KeyError:
            known = ", ".join(i.symbol for i in sim.instruments)
            raise BadParameter(name, f"unknown symbol {raw!r} (known: {known})") from None

    def status(self, name: str, default: int) -> int:
        return self.integer(name, default, 400, 599)

    def done(self) -> None:
        extra = sorted(set(self._q.keys()) - self._read)
        if extra:
            raise BadParameter(extra[0], "unknown parameter")


Handler = Callable[["SimExchange", _Params], dict[str, Any]]


def _drop(sim: "SimExchange", p: _Params) -> dict[str, Any]:
    p.done()
    return {"dropped_connections": sim.faults.drop_connections()}


def _gap(sim: "SimExchange", p: _Params) -> dict[str, Any]:
    symbol = p.symbol(sim, "symbol", required=True)
    p.done()
    assert symbol is not None
    sim.faults.skip_sequence(symbol)
    return {"gap": symbol}


def _silence(sim: "SimExchange", p: _Params) -> dict[str, Any]:
    seconds = p.seconds("seconds", MAX_SECONDS)
    symbol = p.symbol(sim, "symbol", required=False)
    p.done()
    sim.faults.silence(seconds, symbol)
    return {"silence": {"seconds": seconds, "symbol": symbol}}


def _garbage(sim: "SimExchange", p: _Params) -> dict[str, Any]:
    count = p.integer("count", 1, 1, MAX_GARBAGE)
    p.done()
    return {"garbage": {"count": count, "connections": sim.faults.garbage(count)}}


def _http(sim: "SimExchange", p: _Params) -> dict[str, Any]:
    status = p.status("status", 503)
    count = p.integer("count", 1, 0, MAX_COUNT)
    p.done()
    sim.faults.fail_next_requests(count, status)
    return {"http_errors": {"count": count, "status": status}}


def _accept_then_fail(sim: "SimExchange", p: _Params) -> dict[str, Any]:
    status = p.status("status", 504)
    count = p.integer("count", 1, 0, MAX_COUNT)
    p.done()
    sim.faults.accept_then_fail(count, status)
    return {"accept_then_fail": {"count": count, "status": status}}


def _lag(sim: "SimExchange", p: _Params) -> dict[str, Any]:
    ms = p.integer("ms", None, 0, MAX_MS)
    p.done()
    sim.faults.lag_market(ms)
    return {"market_lag_ms": ms}


def _delay(sim: "SimExchange", p: _Params) -> dict[str, Any]:
    ms = p.integer("ms", None, 0, MAX_MS)
    p.done()
    sim.faults.delay_replies(ms)
    return {"delay_ms": ms}


def _shock(sim: "SimExchange", p: _Params) -> dict[str, Any]:
    symbol = p.symbol(sim, "symbol", required=True)
    pct = p.percent("pct", -90.0, 1000.0)
    p.done()
    assert symbol is not None
    return {"shock": sim.shock(symbol, pct)}


def _clear(sim: "SimExchange", p: _Params) -> dict[str, Any]:
    p.done()
    sim.faults.clear()
    return {"cleared": True}


POST_ROUTES: dict[str, Handler] = {
    "drop": _drop, "gap": _gap, "silence": _silence, "garbage": _garbage, "http": _http,
    "accept-then-fail": _accept_then_fail, "lag": _lag, "delay": _delay, "clear": _clear, "shock": _shock,
}


def _post(sim: "SimExchange", handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def route(request: web.Request) -> web.Response:
        try:
            done = handler(sim, _Params(request))
        except BadParameter as e:
            return _error(400, str(e), e.name)
        except ValueError as e:  # a switch's own check (defence in depth behind the parsers)
            return _error(400, str(e))
        return web.json_response({"ok": True, **done, "faults": sim.faults.describe()})

    return route


@web.middleware
async def _json_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as e:  # 404 / 405 as JSON too, with the routes that do exist
        if e.status >= 400:
            routes = sorted(f"{r.method} {r.resource.canonical}" for r in request.app.router.routes()
                            if r.resource is not None and r.method != "HEAD")
            return web.json_response({"error": f"{e.status} {e.reason}: {request.method} {request.path}",
                                      "routes": routes}, status=e.status)
        raise


def control_app(sim: "SimExchange") -> web.Application:
    """The switchboard as an aiohttp application (for a real server or aiohttp's test client)."""
    app = web.Application(middlewares=[_json_errors])

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response(sim.faults.describe())

    app.router.add_get("/faults", get_faults)
    for name, handler in POST_ROUTES.items():
        app.router.add_post(f"/faults/{name}", _post(sim, handler))
    return app


class ControlServer:
    """Serves `control_app(sim)` on 127.0.0.1 (port 0 picks a free one)."""

    def __init__(self, sim: "SimExchange", port: int = 0) -> None:
        self.sim = sim
        self._want_port = port
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{CONTROL_HOST}:{self.port}"

    async def start(self) -> "ControlServer":
        runner = web.AppRunner(control_app(self.sim), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, CONTROL_HOST, self._want_port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        server = site._server
        # aiohttp's TCPSite serves on an asyncio.Server (AbstractServer has no sockets)
        assert isinstance(server, asyncio.Server) and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
