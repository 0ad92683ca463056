"""`tps19 record | replay | divergence` and `tps19 backtest --replay`: recordings (docs/replay.md).

Only typer at module level; pyarrow, ccxt and the engine load inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .common import fail


def record(
    symbol: list[str] = typer.Option(None, "--symbol", help="ccxt unified symbol, repeatable (default: the watch list)."),
    out: Path = typer.Option(..., "--out", help="Recording directory (created; appended to if it exists)."),
    exchange: str = typer.Option(None, "--exchange", help="'sim' (default: embedded simulated exchange) or a ccxt id."),
    duration: float = typer.Option(None, "--duration", min=0.1, help="Stop after this many seconds (default: Ctrl-C)."),
) -> None:
    """Record a venue's market data (every book frame, print, ticker, candle) without trading."""
    import asyncio
    import signal

    from ..run import _venue, settings_from_flags
    from ..engine.recording.reader import RecordingError
    from ..engine.recording.session import RecordStatus, record_market_data

    settings = settings_from_flags(exchange, symbol, None)

    def show(st: RecordStatus) -> None:
        typer.echo(f"recording {out}: {st.seconds:7.1f} s  {st.frames:>9,} frames  {st.rows_written:>9,} rows written  "
                   f"{st.bytes_written / 1e6:8.2f} MB" + (f"  DROPPED {st.dropped_rows:,}" if st.dropped_rows else ""),
                   err=True)

    async def main() -> RecordStatus:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with _venue(settings) as pointed:
            return await record_market_data(pointed, out, duration_s=duration, stop=stop, on_status=show)

    try:
        st = asyncio.run(main())
    except (RecordingError, ValueError, OSError) as err:
        fail(str(err))
    except Exception as err:  # the venue refused, the network failed: one line
        fail(f"{type(err).__name__}: {str(err)[:200]}", code=1)
    show(st)
    typer.echo(f"recorded {st.frames:,} frames into {out} ({st.bytes_written / max(1, st.rows_written):.1f} bytes a row)")


def backtest_replay(root: Path, strategy: str | None, params: list[str] | None, timing: str, latency_ms: int,
                    json_out: bool) -> None:
    """`tps19 backtest --replay DIR`: the event-driven backtest on a recording."""
    import asyncio

    from ..config import ConfigError, load_settings
    from ..engine.recording.reader import RecordingError
    from ..engine.recording.replayer import ReplayOptions, replay_backtest

    if timing not in ("recorded", "ideal"):
        fail("--timing must be 'recorded' or 'ideal'")
    strat = None
    if strategy:
        from ..engine.strategies import create

        try:
            strat = create(strategy, params or [])
        except Exception as err:
            fail(f"strategy {strategy}: {str(err).splitlines()[0]}")
    elif params:
        fail("--param needs --strategy")
    try:
        settings = load_settings()
    except ConfigError as err:
        fail(str(err))
    progress = _progress(json_out)
    try:
        with progress as prog:
            task = prog.add_task("replay", total=None)
            res = asyncio.run(replay_backtest(root, settings, ReplayOptions(
                strategy=strat, timing=timing, latency_ms=latency_ms,
                progress=lambda n: prog.update(task, completed=n))))
    except RecordingError as err:
        fail(str(err))
    out = _summary(res)
    if json_out:
        typer.echo(json.dumps(out))
        return
    from rich.table import Table

    c = _cli_console()
    c.print(f"[b]replay backtest[/b] of {root} ({res.timing} timing): {res.rows:,} rows, {res.book_frames:,} book "
            f"frames in {res.elapsed_s:.2f} s ({res.book_events_per_s:,.0f} book events/s)")
    t = Table("order", "side", "type", "amount", "status", "filled", "avg price", "fee")
    for o in res.orders:
        t.add_row(o.client_order_id[-14:], o.side, o.type, f"{o.amount:f}", o.status, f"{o.filled:f}",
                  "" if o.avg_price is None else f"{o.avg_price:.8g}", f"{o.fee:.8g}")
    c.print(t)
    c.print(f"fills {len(res.fills)}  signals {len(res.signals)}  bars {res.bars}  final balances "
            + ", ".join(f"{k} {v:f}" for k, v in sorted(res.final_balances.items())))


def _progress(quiet: bool) -> Any:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn

    return Progress(SpinnerColumn(), TextColumn("replaying: {task.completed:,} rows"), console=Console(stderr=True),
                    disable=quiet, transient=True)


def _summary(res: Any) -> dict[str, Any]:
    return {
        "timing": res.timing, "rows": res.rows, "book_frames": res.book_frames, "books_published": res.books_published,
        "prints": res.prints, "bars": res.bars, "elapsed_s": round(res.elapsed_s, 3),
        "book_events_per_s": round(res.book_events_per_s, 1),
        "orders": [{"client_order_id": o.client_order_id, "symbol": o.symbol, "side": o.side, "type": o.type,
                    "amount": str(o.amount), "price": None if o.price is None else str(o.price), "status": o.status,
                    "filled": str(o.filled), "avg_price": None if o.avg_price is None else str(o.avg_price),
                    "fee": str(o.fee)} for o in res.orders],
        "fills": [{"client_order_id": f.client_order_id, "symbol": f.symbol, "side": f.side, "price": str(f.price),
                   "amount": str(f.amount), "fee": str(f.fee), "liquidity": f.liquidity, "ts": f.ts} for f in res.fills],
        "final_balances": {k: str(v) for k, v in res.final_balances.items()},
    }


def divergence(
    root: Path = typer.Argument(..., help="A session recorded with `tps19 paper|live --record DIR`."),
    latency_ms: int = typer.Option(0, "--latency-ms", min=0, help="The reference executes this long after each bar's close."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Attribute each basis point between the session and its strategy replayed at bar close."""
    import asyncio

    from ..config import ConfigError, load_settings
    from ..engine.recording.divergence import divergence as run
    from ..engine.recording.reader import RecordingError

    try:
        settings = load_settings()
    except ConfigError as err:
        fail(str(err))
    try:
        report = asyncio.run(run(root, settings, latency_ms=latency_ms))
    except RecordingError as err:
        fail(str(err))
    if json_out:
        typer.echo(json.dumps(report.as_dict()))
        return

    from ..engine.recording.table import ledger_table

    _cli_console().print(ledger_table(report))


def parse_speed(value: str) -> float | None:
    """--speed: a positive multiple of real time (1, 10, ...) or 'max' (None)."""
    if value.strip().lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        fail(f"bad --speed {value!r}: use 1, 10 (times real time) or max")
    if not 0 < speed < 1e6 or speed != speed:
        fail(f"bad --speed {value!r}: use a positive multiple of real time, or max")
    return speed


def replay(
    root: Path = typer.Argument(..., help="A recording (`tps19 record --out DIR`, `tps19 paper --record DIR`)."),
    speed: str = typer.Option("1", "--speed", help="1, 10 (times the recorded pace) or max (as fast as the desk/engine reads)."),
    since: str = typer.Option(None, "--from", help="Start at this time (UTC; YYYY-MM-DD[THH:MM] or epoch ms)."),
    until: str = typer.Option(None, "--to", help="End at this time (UTC)."),
    no_ui: bool = typer.Option(False, "--no-ui", help="Headless: JSON lines; ends by itself with the recording."),
    strategy: str = typer.Option(None, "--strategy", help="Run a strategy on the replayed market (paper orders)."),
    param: list[str] = typer.Option(None, "--param", help="Strategy parameter key=value, repeatable."),
    db: str = typer.Option(None, "--db", help="Database for the replay's paper orders (default: a fresh temporary one)."),
    log_file: Path = typer.Option(None, "--log-file", help="With --no-ui: JSON lines here, not stdout."),
    live: bool = typer.Option(False, "--live", help="Refused: a replay places paper orders only."),
) -> None:
    """Serve a recording over the simulated exchange's wire to the desk (or headless), paper only."""
    if live:
        fail("refusing --live: a replay serves recorded market data; orders on it are paper orders only")
    from .common import parse_time

    spd = parse_speed(speed)
    start_ms, end_ms = parse_time(since, "--from"), parse_time(until, "--to")
    import asyncio
    import tempfile

    from ..engine.recording.reader import RecordingError
    from ..run import check_schema, make_strategy, settings_from_flags

    strat = make_strategy(strategy, param)
    with tempfile.TemporaryDirectory(prefix="tps19-replay-") as tmp:
        try:
            from ..engine.recording.reader import inspect
            from ..engine.recording.replayer import read_meta

            info = inspect(root)
            symbols = list(read_meta(root).get("symbols") or info.symbols)
        except RecordingError as err:
            fail(str(err))
        settings = settings_from_flags("sim", symbols, db or Path(tmp) / "replay.db")
        check_schema(settings)
        try:
            code = asyncio.run(_replay(settings, root, spd, None if start_ms is None else start_ms * 1_000_000,
                                       None if end_ms is None else end_ms * 1_000_000, no_ui, strat, log_file))
        except RecordingError as err:
            fail(str(err))
    raise typer.Exit(code)


async def _replay(settings: Any, root: Path, speed: float | None, start_ns: int | None, end_ns: int | None,
                  no_ui: bool, strategy: Any, log_file: Path | None) -> int:
    from ..config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET
    from ..engine.clock import use_clock
    from ..launch import build_engine
    from ..simex.replay import ReplayExchange

    sim = ReplayExchange(root, speed=speed, start_ns=start_ns, end_ns=end_ns,
                         accounts={SIM_DEMO_API_KEY: (SIM_DEMO_SECRET, dict(settings.sim.starting_balances))})
    await sim.start()
    pointed = settings.model_copy(update={"exchange": settings.exchange.model_copy(
        update={"id": "sim", "rest_url": sim.base_url, "ws_url": None})})
    try:
        # the engine runs on the recording's clock: latencies, fills and orders carry its times
        with use_clock(lambda: sim.now_ms * 1_000_000):
            engine = build_engine(pointed, "paper", strategy)
            sim.pace_by(engine.bus)  # every recorded frame reaches the engine, in order, at any speed
            if no_ui:
                from ..engine.headless import run_headless

                return await run_headless(engine, log_file, stop_event=sim.finished)
            from ..desk.app import DeskApp

            app = DeskApp(settings=pointed, mode="paper", engine=engine, clock=lambda: sim.now_ms / 1000, replay=True)
            await app.run_async()
            trading = app.engine.trading if app.engine is not None else None
            session = getattr(trading, "session", None)
            if session is not None:  # the desk is gone: what the replay did, as `tps19 paper`'s desk prints it
                for line in session.lines():
                    print(line, flush=True)
            return app.return_code or 0
    finally:
        await sim.stop()


def register(app: typer.Typer) -> None:
    app.command("record")(record)
    app.command("replay")(replay)
    app.command("divergence")(divergence)


def _cli_console() -> Any:
    from .common import console

    return console()
