"""`--no-ui` with several venues: one JSON-lines stream, every line naming its ``"venue"``.

Per venue the lines of a single-venue run (connection, order, fill, issue, log, market,
portfolio); above them a ``"venues"`` line every summary interval with each venue's equity and
P&L and the total in the reporting currency (tps19.engine.multivenue.VenueSet.totals). A venue
that fails to start is one ``"error"`` line naming it; the others run.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from ..aio import cancel_and_wait
from .headless import (LEVELS, VenueLines, _pump, _write_event, bounded_stop, failed, open_run, secrets_of,
                       serve_api, serve_metrics, stop_servers, subscribe_lines)
from .health import OpsServer
from .metrics import EngineMetrics
from .multivenue import VenueSet, consolidated
from .shutdown import exit_now
from .trade_log import TradeFormatter


def _secrets(venues: VenueSet) -> list[str]:
    out: list[str] = []
    for e in venues.engines.values():
        out += secrets_of(e.settings)  # keys of every venue, the API token, notification URLs
    return out


async def run_headless_venues(venues: VenueSet, log_path: Path | None = None,
                              stop_event: asyncio.Event | None = None) -> int:
    """Run every venue of ``venues`` (engines built, not started) until a signal or ``stop_event``."""
    first = next(iter(venues.engines.values()))
    settings, mode = first.settings, first.mode
    out, logs, stop, shutdown = open_run(settings, _secrets(venues), log_path, stop_event)
    min_level = LEVELS[settings.log.level]
    lines = {v: VenueLines(out, v) for v in venues.engines}
    formatters = {v: TradeFormatter({}) for v in venues.engines}
    subs = {v: subscribe_lines(e) for v, e in venues.engines.items()}
    pumps = [asyncio.create_task(_pump(subs[v], lines[v], min_level, formatters[v])) for v in venues.engines]  # type: ignore[arg-type]
    if mode == "live":
        print(f"*** TPS19 LIVE on {', '.join(venues.engines)}: orders placed by this process are real ***",
              file=sys.stderr, flush=True)
    out.write("starting", mode=mode, venues=list(venues.engines),
              symbols={v: e.symbols for v, e in venues.engines.items()}, db=first.db.name,
              report_currency=venues.report_currency)
    code = 0
    ops: OpsServer | None = None
    api: Any = None
    start = asyncio.create_task(venues.start(), name="venues-start")
    try:
        # /metrics labels every series with its venue; /healthz and the API cover every venue
        ops = await serve_metrics(venues, lambda: EngineMetrics.of_venues(venues.engines), settings.metrics, out,
                                  venues=list(venues.engines))
        api = await serve_api(venues, settings.api, mode, out, venues=list(venues.engines))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({start, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if start.done():
            for v, reason in start.result().items():
                lines[v].write("error", message=reason)
            for v, e in venues.running.items():
                formatters[v].markets = e.markets
                if e.venue is not None:
                    formatters[v].precision_mode = int(getattr(e.venue.client, "precisionMode", 4) or 4)
                lines[v].write("started", venue_name=e.venue_name, mode=mode)
            if not venues.running:
                out.write("error", message="no venue started")
                code = 2
                stop.set()
        interval = settings.log.summary_interval_s
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stop.wait()
            if stop.is_set():
                break
            for v, e in venues.running.items():
                for symbol in e.symbols:
                    lines[v].write("market", **e.summary(symbol))
                if e.trading is not None:
                    with contextlib.suppress(Exception):
                        lines[v].write("portfolio", **e.trading.summary())
            with contextlib.suppress(Exception):
                out.write("venues", **venues.totals())
            with contextlib.suppress(Exception):
                cross = consolidated(venues)
                if cross:
                    out.write("cross_venue", symbols=cross)
    except Exception as err:
        code = failed(out, err)
    finally:
        await stop_servers(api, ops)
        if start.done() and not start.cancelled() and start.exception() is None:
            # what this run did, per venue and in total, before the parts stop (marks still current)
            for v, e in venues.running.items():
                session = getattr(e.trading, "session", None) if e.trading is not None else None
                if session is not None:
                    with contextlib.suppress(Exception):
                        lines[v].write("summary", **session.summary())
            with contextlib.suppress(Exception):
                out.write("summary", **venues.session_summary())

        async def _stop_all() -> None:
            if not start.done():
                start.cancel()
                await asyncio.wait({start})
            await venues.stop()

        hung, code = await bounded_stop(shutdown, _stop_all(), out, code)
        await asyncio.sleep(0)
        for v, sub in subs.items():
            for e in sub.drain():
                _write_event(lines[v], e, min_level, formatters[v])  # type: ignore[arg-type]
        await cancel_and_wait(pumps)
        repeats = {"repeated_signals": shutdown.repeats} if shutdown.repeats else {}
        out.write("stopped", exit_code=code, venues={v: ("down" if v in venues.failed else "stopped")
                                                     for v in venues.engines}, **repeats)
        logs.__exit__()
        out.close()
        if hung is not None:
            exit_now(code)
    return code
