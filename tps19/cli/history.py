"""`tps19 strategies | fetch | import`: what there is to backtest, and the bars to backtest it on.

Only typer at module level: pandas, ccxt and the engine load inside the commands.
Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .common import DB_HELP, bad_input_errors, db_label, db_path, fail, one_line, parse_time


def strategies(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the built-in strategies with their parameters and defaults."""
    import json

    from ..engine.strategies import describe

    info = describe()
    if json_out:
        typer.echo(json.dumps(info, default=str))
        return
    from rich.table import Table

    console = _cli_console()
    for s in info:
        t = Table(title=f"{s['name']}", caption=s["description"], title_justify="left", caption_justify="left")
        for c in ("parameter", "type", "default", "description"):
            t.add_column(c)
        for p in s["params"]:
            t.add_row(p["name"], p["type"], str(p["default"]), p["description"])
        console.print(t)


def fetch(
    exchange: str = typer.Option("sim", "--exchange", help="ccxt exchange id, or 'sim' (embedded simulated exchange)."),
    symbol: str = typer.Option("BTC/USDT", "--symbol", help="ccxt unified symbol."),
    timeframe: str = typer.Option("1m", "--timeframe", help="Candle length, e.g. 1m, 5m, 1h, 1d."),
    since: str = typer.Option(..., "--since", help="Start (UTC): YYYY-MM-DD[THH:MM] or epoch ms."),
    until: str = typer.Option(None, "--until", help="End, exclusive (default: now)."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    limit: int = typer.Option(300, "--limit", min=1, max=5000, help="Candles per request."),
) -> None:
    """Download OHLCV history into the database (resumable: only missing bars are fetched)."""
    import asyncio
    import time

    s_ms = parse_time(since, "--since")
    u_ms = parse_time(until, "--until") or int(time.time() * 1000)
    if s_ms is None or s_ms >= u_ms:
        fail("--since must be before --until")
    from ..engine.history import timeframe_ms

    try:
        timeframe_ms(timeframe)
    except ValueError as err:
        fail(str(err))
    path = db_path(db)
    try:
        rep = asyncio.run(_fetch(path, exchange, symbol, timeframe, s_ms, u_ms, limit))
    except (ValueError, ImportError) as err:
        fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
    except Exception as err:  # ccxt network/exchange errors: one line, exit 1
        fail(one_line(err), code=1)
    typer.echo(
        f"{rep.written} bars written ({rep.already} already stored, {rep.planned} missing in {len(rep.ranges)} "
        f"range(s), {rep.requests} requests, {rep.empty_windows} empty windows) -> {db_label(path)}"
    )


async def _fetch(path: str | Path, exchange: str, symbol: str, timeframe: str, since: int, until: int, limit: int) -> Any:
    """Download with a progress bar on stderr (stdout keeps the one summary line)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..engine.history import fetch_history
    from ..engine.storage import Database
    from ..launch import history_client

    console = Console(stderr=True)
    d = Database(path)
    await d.open()
    try:
        async with history_client(exchange.lower()) as client:
            with Progress(TextColumn(f"{exchange} {symbol} {timeframe}"), BarColumn(), MofNCompleteColumn(),
                          TimeRemainingColumn(), console=console) as prog:
                task = prog.add_task("fetch", total=None)

                def cb(done: int, total: int) -> None:
                    prog.update(task, completed=done, total=total)

                return await fetch_history(client, d, exchange=exchange.lower(), symbol=symbol, timeframe=timeframe,
                                           since=since, until=until, limit=limit, progress=cb)
    finally:
        await d.close()


def import_(
    file: Path = typer.Argument(..., help="CSV or Parquet with timestamp, open, high, low, close, volume; with "
                                "--recording: Binance depth data (a directory, or its .jsonl / snapshots .json)."),
    exchange: str = typer.Option("file", "--exchange", help="Exchange label to store the bars under."),
    symbol: str = typer.Option(None, "--symbol", help="Symbol label (default: the file name)."),
    timeframe: str = typer.Option(None, "--timeframe", help="Timeframe label (default: detected)."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    recording: Path = typer.Option(None, "--recording", help="Import Binance depth snapshots + diff stream as a "
                                   "recording into this directory (docs/replay.md)."),
) -> None:
    """Import a CSV/Parquet file into the Bar table; bad rows and gaps are reported. With --recording:
    recorded Binance depth data becomes a (book-only) recording."""
    import asyncio

    if recording is not None:
        from ..engine.recording.binance_import import import_binance_depth
        from ..engine.recording.reader import RecordingError

        try:
            rep = import_binance_depth(file, recording)
        except RecordingError as err:
            fail(str(err))
        kinds = ", ".join(f"{n} {k}" for k, n in rep.by_kind.items())
        typer.echo(f"{rep.rows} rows ({kinds}; {rep.skipped} skipped) for {', '.join(rep.symbols)} recorded in {recording}")
        return

    from ..engine.history import import_file
    from ..engine.storage import Database

    path = db_path(db)

    async def go() -> Any:
        d = Database(path)
        await d.open()
        try:
            return await import_file(d, file, exchange=exchange, symbol=symbol, timeframe=timeframe)
        finally:
            await d.close()

    try:
        n, rep, sym, tf = asyncio.run(go())
    except bad_input_errors() as err:
        fail(str(err))
    for line in rep.lines(limit=10):
        typer.echo(line)
    typer.echo(f"{n} bars stored as {exchange} {sym} {tf} in {db_label(path)}")


def register(app: typer.Typer) -> None:
    app.command("strategies")(strategies)
    app.command("fetch")(fetch)
    app.command("import")(import_)


def _cli_console() -> Any:
    from .common import console

    return console()
