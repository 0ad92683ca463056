"""`/healthz` and `/metrics` of a headless engine, served over HTTP (aiohttp, in the engine's loop).

Healthy means: the engine has started, every stream of every symbol is fresh
(``MarketFeed.stale_streams``) and the database takes a write now. Anything else is a 503 whose
JSON body names each reason, so a monitor's alert says what is wrong.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .metrics import CONTENT_TYPE, EngineMetrics

if TYPE_CHECKING:
    from .engine import Engine

DB_PROBE_TIMEOUT_S = 2.0


@dataclass
class Health:
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons


async def check_health(engine: Engine) -> Health:
    health = Health()
    feed = engine.feed
    if engine.started_at is None or feed is None:
        health.reasons.append("engine not started")
    else:
        now = time.monotonic()
        for stream, symbol in feed.stale_streams():
            st = feed.stats.streams.get((stream, symbol))
            if st is None or not st.last_update:
                health.reasons.append(f"stream {stream} {symbol}: no data yet")
            else:
                health.reasons.append(f"stream {stream} {symbol}: {st.state.value}, "
                                      f"last update {now - st.last_update:.1f}s ago")
    if engine.storage_problem is not None:
        health.reasons.append(f"trading halted: {engine.storage_problem}")
    problem = await db_write_problem(engine)
    if problem:
        health.reasons.append(problem)
    return health


async def check_venues_health(venues: Any) -> Health:
    """Several venues (a VenueSet): healthy when every venue is; each reason names its venue
    (a venue that did not start is a reason: the run is not what was asked for)."""
    health = Health()
    for v, engine in venues.engines.items():
        if v in venues.failed:
            health.reasons.append(f"{v}: did not start: {venues.failed[v]}")
            continue
        health.reasons += [f"{v}: {r}" for r in (await check_health(engine)).reasons]
    return health


async def db_write_problem(engine: Engine) -> str | None:
    """Why the database does not take a write now (None when it does): a no-op UPDATE, committed."""
    try:
        async with asyncio.timeout(DB_PROBE_TIMEOUT_S):
            await engine.db.probe_write()
    except TimeoutError:
        return f"database not writable: no write within {DB_PROBE_TIMEOUT_S:g}s"
    except Exception as err:
        cause = str(getattr(err, "orig", None) or err).splitlines()[0][:200]
        return f"database not writable: {cause}"
    return None


class OpsServer:
    """`GET /metrics` (Prometheus text format) and `GET /healthz` (200 or 503, JSON), of one engine
    or of every venue of a VenueSet (``engine`` has ``engines``)."""

    def __init__(self, engine: Any, metrics: EngineMetrics, host: str = "127.0.0.1", port: int = 0) -> None:
        self.engine, self.metrics = engine, metrics
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Listen; returns the base URL (with the port picked when 0 was asked)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, _request: web.Request) -> web.Response:
        several = getattr(self.engine, "engines", None) is not None
        health = await (check_venues_health(self.engine) if several else check_health(self.engine))
        body = {"status": "ok" if health.ok else "unhealthy", "reasons": health.reasons}
        return web.json_response(body, status=200 if health.ok else 503)
