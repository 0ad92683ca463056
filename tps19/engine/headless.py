"""`--no-ui`: the engine with JSON-lines logs instead of a screen, for a VPS or a service."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, Callable, Coroutine, Protocol

from ..aio import cancel_and_wait
from ..config import ApiSettings, MetricsSettings, Settings
from .engine import Engine, EngineError
from .events import ConnectionEvent, LogEvent
from .health import OpsServer
from .metrics import EngineMetrics
from .strategies.signals import DecisionEvent, SignalEvent
from .jsonlog import JsonLines, captured_logs
from .trade_log import TradeFormatter
from .trading.events import FillEvent, OrderUpdate, TradingIssue
from .shutdown import HUNG_EXIT_CODE, SHUTDOWN_TIMEOUT_S, Shutdown, exit_now, stop_everything

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
ISSUE_KEYS = frozenset({"ts", "event", "kind", "message", "count"})


class LineSink(Protocol):
    def write(self, event: str, **fields: Any) -> None: ...


class VenueLines:
    """A JsonLines writer for one venue: every line it writes carries ``venue`` (the exchange id),
    with one venue or several, so a reader filters one venue's rows the same way in both."""

    def __init__(self, out: JsonLines, venue: str) -> None:
        self.out = out
        self.venue = venue

    def write(self, event: str, **fields: Any) -> None:
        if "venue" in fields:
            # an issue's "venue" is the venue's figure (balance_difference: booked vs venue);
            # elsewhere it is the venue's address ("sim@127.0.0.1:8765")
            fields["venue_amount" if event == "issue" else "venue_name"] = fields.pop("venue")
        self.out.write(event, venue=self.venue, **fields)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret a log line could carry, scrubbed from each (keys, the API token, the serve
    password, the notification URLs and each of their parts that looks like a token)."""
    ex = settings.exchange
    out = [v.get_secret_value() for v in (ex.api_key, ex.secret, ex.password, settings.api.token,
                                          settings.serve.password) if v is not None]
    if settings.notify.urls is not None:
        import re

        from .notify.targets import split_urls

        for url in split_urls(settings.notify.urls.get_secret_value()):
            out.append(url)
            # the parts after the scheme: a bot token, a webhook id, user:password
            out += [p for p in re.split(r"[/:@?&=#]+", url.split("://", 1)[-1]) if len(p) >= 10 and "." not in p]
    return out


async def run_headless(engine: Engine, log_path: Path | None = None, stop_event: asyncio.Event | None = None) -> int:
    """Run ``engine`` (built by the entry point, not started) until a signal or ``stop_event``."""
    settings, mode = engine.settings, engine.mode
    out, logs, stop, shutdown = open_run(settings, secrets_of(settings), log_path, stop_event)
    min_level = LEVELS[settings.log.level]
    vout = VenueLines(out, settings.exchange.id)  # every line of this run belongs to its one venue
    sub = subscribe_lines(engine)
    trades = TradeFormatter({})  # the markets are known once the engine has started
    if mode == "live":
        # stdout carries JSON lines for machines; the banner is for the person starting it.
        import sys

        print(f"*** TPS19 LIVE on {settings.exchange.id}: orders placed by this process are real ***",
              file=sys.stderr, flush=True)
    vout.write("starting", mode=mode, exchange=settings.exchange.id, symbols=engine.symbols,
              db=engine.db.name)
    code = 0
    pump = asyncio.create_task(_pump(sub, vout, min_level, trades))
    ops: OpsServer | None = None
    api: Any = None
    # a signal during start (an unreachable venue retries for many seconds) aborts the start
    start = asyncio.create_task(engine.start(), name="engine-start")
    try:
        ops = await serve_metrics(engine, lambda: EngineMetrics(engine), settings.metrics, vout)
        api = await serve_api(engine, settings.api, mode, vout)
        if await _started_unless_stopped(start, stop):
            trades.markets = engine.markets
            if engine.venue is not None:
                trades.precision_mode = int(getattr(engine.venue.client, "precisionMode", 4) or 4)
            vout.write("started", venue=engine.venue_name, mode=mode)
        interval = settings.log.summary_interval_s
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await stop.wait()
            if not stop.is_set():
                _figures(engine, vout)
        if stop_event is not None and stop_event.is_set() and not shutdown.signals and engine.started_at is not None:
            # the run ended by itself (a replay's last frame): its figures once everything is judged
            if engine.trading is not None and hasattr(engine.trading, "settle"):
                await engine.trading.settle()
            _figures(engine, vout)
    except Exception as err:
        code = failed(vout, err)
    finally:
        await stop_servers(api, ops)
        session = getattr(engine.trading, "session", None) if engine.trading is not None else None
        if session is not None:  # what this run did, before the parts stop (marks still current)
            with contextlib.suppress(Exception):
                vout.write("summary", **session.summary())
        keep = {t for t in (asyncio.current_task(), pump) if t is not None}
        hung, code = await bounded_stop(shutdown, stop_everything(engine, start, keep), vout, code)
        await asyncio.sleep(0)
        for e in sub.drain():
            _write_event(vout, e, min_level, trades)
        await cancel_and_wait([pump])
        # a signal delivered twice (`timeout` signals the child and its group) was one request
        repeats = {"repeated_signals": shutdown.repeats} if shutdown.repeats else {}
        vout.write("stopped", exit_code=code, **_stop_stats(engine, sub.dropped, hung), **repeats)
        logs.__exit__()
        out.close()
        if hung is not None:
            exit_now(code)  # the loop's own teardown would wait on the hung part
    return code


def open_run(settings: Settings, secrets: list[str], log_path: Path | None,
             stop_event: asyncio.Event | None) -> tuple[JsonLines, captured_logs, asyncio.Event, Shutdown]:
    """A headless run's JSON lines (``secrets`` scrubbed from each), the stdlib's records captured
    into them, its stop event and the signal handling that sets it."""
    out = JsonLines(log_path, secrets=secrets, max_bytes=settings.log.max_bytes, backups=settings.log.backups)
    # every stdlib record (ours, ccxt's, aiohttp's, asyncio's) becomes a redacted JSON line: the
    # last-resort stderr handler would print bare text, secrets and all
    logs = captured_logs(out, LEVELS[settings.log.level])
    logs.__enter__()
    stop = stop_event or asyncio.Event()
    shutdown = Shutdown(out, stop)
    shutdown.install(asyncio.get_running_loop())
    return out, logs, stop, shutdown


def subscribe_lines(engine: Engine) -> Any:
    """What an engine publishes that becomes a JSON line (nothing coalesced: each is a line)."""
    return engine.bus.subscribe(ConnectionEvent, LogEvent, SignalEvent, DecisionEvent, TradingIssue, OrderUpdate,
                                FillEvent, coalesce=None, maxsize=5000)


def failed(out: LineSink, err: Exception) -> int:
    """The last line of defence: a run's failure as one "error" line, never a traceback; the exit
    code 2 for an EngineError (its message says it all), 1 for anything else (named)."""
    if isinstance(err, EngineError):
        out.write("error", message=str(err))
        return 2
    out.write("error", message=f"engine failed: {type(err).__name__}: {err}")
    return 1


async def stop_servers(api: Any, ops: OpsServer | None) -> None:
    """The control API, then /metrics and /healthz, whichever were serving."""
    if api is not None:
        await api.stop()
    if ops is not None:
        await ops.stop()


async def bounded_stop(shutdown: Shutdown, stopping: Coroutine[Any, Any, None], out: LineSink,
                       code: int) -> tuple[list[str] | None, int]:
    """Stop the parts for at most SHUTDOWN_TIMEOUT_S: where it hangs (None once stopped) and the exit
    code, which a part failing to stop (1) or hanging (HUNG_EXIT_CODE) sets unless the run failed first."""
    try:
        hung = await shutdown.bounded(stopping, SHUTDOWN_TIMEOUT_S)
    except Exception as err:  # a part failed to stop: say so, keep going, exit non-zero
        out.write("error", message=f"engine stop failed: {type(err).__name__}: {err}")
        return None, code or 1
    if hung is not None:
        out.write("log", level="error", message=f"shutdown not finished after {SHUTDOWN_TIMEOUT_S:g}s, exiting anyway",
                  hung_in=hung)
        code = code or HUNG_EXIT_CODE
    return hung, code


def _figures(engine: Engine, out: LineSink) -> None:
    """The periodic `market` lines (one per symbol) and the `portfolio` line."""
    for symbol in engine.symbols:
        out.write("market", **engine.summary(symbol))
    if engine.trading is not None and hasattr(engine.trading, "summary"):
        with contextlib.suppress(Exception):
            out.write("portfolio", **engine.trading.summary())


def _stop_stats(engine: Engine, log_dropped: int, hung: list[str] | None) -> dict[str, Any]:
    """The run's figures for the "stopped" line."""
    stats: dict[str, Any] = {"bus_events": engine.bus.published, "log_dropped": log_dropped}
    if engine.feed is not None:
        fs = engine.feed.stats
        stats.update(resyncs=fs.total("resyncs"), errors=fs.total("errors"), reconnects=fs.total("reconnects"),
                     restarts=fs.total("restarts"), bad_frames=fs.bad_frames,
                     book_msgs=sum(s.messages for (k, _), s in fs.streams.items() if k == "book"))
    if hung is not None:
        stats["hung_in"] = hung
    return stats


async def serve_metrics(target: Any, metrics: Callable[[], EngineMetrics], cfg: MetricsSettings, out: LineSink,
                        **fields: Any) -> OpsServer | None:
    """/metrics and /healthz of ``target`` (one engine or a VenueSet) when a metrics port is set, before the
    start (a probe sees "starting"); ``metrics`` is built only then, ``fields`` end the "metrics" line."""
    if cfg.port is None:
        return None
    series = metrics()
    series.attach()
    ops = OpsServer(target, series, cfg.host, cfg.port)
    try:
        url = await ops.start()
    except OSError as err:
        await ops.stop()
        raise EngineError(f"cannot serve metrics on {cfg.host}:{cfg.port}: {err.strerror or err}") from None
    out.write("metrics", url=f"{url}/metrics", health=f"{url}/healthz", **fields)
    return ops


async def serve_api(target: Any, cfg: ApiSettings, mode: str, out: LineSink, **fields: Any) -> Any:
    """The control API of ``target`` (one engine or a VenueSet) when an API port is set (the CLI checked its
    token and address); ``fields`` stand before ``read_only`` in the "api" line."""
    if cfg.port is None:
        return None
    from .api.server import ApiServer

    api = ApiServer(target, cfg)
    try:
        url = await api.start()
    except OSError as err:
        raise EngineError(f"cannot serve the API on {cfg.host}:{cfg.port}: {err.strerror or err}") from None
    out.write("api", url=f"{url}/api/v1", docs=f"{url}/api/v1/docs", **fields,
              read_only=mode == "live" and not cfg.live_orders)
    return api


async def _started_unless_stopped(start: asyncio.Task[None], stop: asyncio.Event) -> bool:
    """Wait for the engine's start or a stop request, whichever comes first; True once started."""
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({start, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if start.done():
        start.result()  # EngineError and the like are the caller's to report
        return True
    return False


async def _pump(sub: Any, out: LineSink, min_level: int, trades: TradeFormatter) -> None:
    while True:
        for e in await sub.wait():
            _write_event(out, e, min_level, trades)


def _write_event(out: LineSink, e: Any, min_level: int, trades: TradeFormatter | None = None) -> None:
    trades = trades or TradeFormatter({})
    if isinstance(e, ConnectionEvent):
        out.write("connection", stream=e.stream, symbol=e.symbol, state=e.state.value, detail=e.detail)
    elif isinstance(e, SignalEvent):
        out.write("signal", strategy=e.strategy, symbol=e.symbol, bar_ts=e.ts, direction=e.signal.direction,
                  strength=round(e.signal.strength, 4), target=e.signal.target, reason=e.signal.reason,
                  **({"warmup": True} if e.warmup else {}))
    elif isinstance(e, DecisionEvent):
        out.write("decision", model=e.model, symbol=e.symbol, bar_ts=e.ts, probability=round(e.probability, 4),
                  action=e.action, position=e.target, shadow=e.shadow)
    elif isinstance(e, LogEvent) and LEVELS.get(e.level, 20) >= min_level:
        out.write("log", level=e.level, message=e.message, **e.fields)
    elif isinstance(e, OrderUpdate):
        # a write that changed no status (a venue id learnt) is no news; a protective order's trigger is
        if e.previous_status != e.status or e.trigger_state == "triggered":
            out.write("order", **trades.order(e))
    elif isinstance(e, FillEvent):
        out.write("fill", **trades.fill(e))
    elif isinstance(e, TradingIssue):
        fields = {k: v for k, v in e.fields.items() if k not in ISSUE_KEYS}
        out.write("issue", kind=e.kind.replace("-", "_"), message=e.message, count=e.count, **fields)
