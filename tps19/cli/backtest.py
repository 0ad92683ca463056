"""`tps19 strategies | fetch | import | backtest | optimize`.

Only typer at module level: pandas, numpy, ccxt and the engine load inside the commands.
Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"tps19: {message}", err=True)
    raise typer.Exit(code)


_MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_time_value(value: str | None) -> int | None:
    """'2024-01-01', '2024-01-01T12:00', '2024-01-01 12:00:00Z' or epoch ms -> ms (UTC); ValueError if bad."""
    if value is None:
        return None
    from datetime import UTC, datetime

    v = value.strip()
    if v.isdigit():
        # seconds or milliseconds since 1970, up to the last day datetime (and SQLite) can hold
        n = int(v) if len(v) <= 16 else _MAX_EPOCH_MS + 1
        n = n if n > 10**11 else n * 1000
        if n > _MAX_EPOCH_MS:
            raise ValueError(f"bad time {value[:20]!r}: beyond the year 9999")
        return n
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad time {value!r}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM or epoch milliseconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_time(value: str | None, name: str) -> int | None:
    try:
        return parse_time_value(value)
    except ValueError:
        _fail(f"bad {name} {value!r}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM or epoch milliseconds")
    return None


def _check_numbers(**flags: float) -> None:
    """Typer reads '1e999' as inf and 'nan' as NaN: refuse them (and absurd sizes) naming the flag."""
    from ..numbers import NumberError, to_float

    for name, value in flags.items():
        try:
            to_float(value, "--" + name.replace("_", "-"))
        except NumberError as err:
            _fail(str(err))


def _db_path(db: Path | None) -> Path:
    if db is not None:
        return db
    from ..config import ConfigError, load_settings

    try:
        return load_settings().database.path
    except ConfigError as err:
        _fail(str(err))
    raise AssertionError


def _bad_input_errors() -> tuple[type[BaseException], ...]:
    from ..engine.history.quality import DataError
    from ..engine.strategies import ParamError

    return (ParamError, DataError, ValueError)


def _load_data(
    data: Path | None, exchange: str | None, symbol: str | None, timeframe: str, since: int | None,
    until: int | None, db: Path | None, quiet: bool, console: Any,
) -> tuple[Any, dict[str, Any]]:
    """Bars for a backtest, from a file or from the database (fetching what is missing)."""
    import asyncio

    from ..engine.history import check, read_ohlcv

    if data is not None:
        if exchange or symbol:
            _fail("give either --data FILE or --exchange/--symbol, not both")
        df, rep = check(read_ohlcv(data))
        if since is not None:
            df = df[df.ts >= since]
        if until is not None:
            df = df[df.ts < until]
        df = df.reset_index(drop=True)
        if not rep.clean and not quiet:
            for line in rep.lines():
                console.print(f"[yellow]data: {line}[/]")
        return df, {"data_source": str(data), "data_quality": rep.as_dict()}
    if not symbol:
        _fail("give --data FILE, or --symbol (with --exchange, default sim) to use stored/fetched bars")
    exchange = (exchange or "sim").lower()
    path = _db_path(db)

    async def go() -> Any:
        from ..engine.history import fetch_history, load_bars, timeframe_ms
        from ..engine.storage import Database
        from ..launch import history_client

        timeframe_ms(timeframe)
        d = Database(path)
        await d.open()
        try:
            if since is not None:
                import time

                end = until if until is not None else int(time.time() * 1000)
                async with history_client(exchange) as client:
                    await fetch_history(client, d, exchange=exchange, symbol=symbol, timeframe=timeframe, since=since, until=end)
            return await load_bars(d, exchange, symbol, timeframe, since, until)
        finally:
            await d.close()

    try:
        df = asyncio.run(go())
    except ValueError:
        raise
    except Exception as err:  # network / exchange errors while fetching: one line, exit 1
        _fail(f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}", code=1)
    if len(df) == 0:
        _fail(f"no {timeframe} bars for {symbol} on {exchange} in {path}; run `tps19 fetch` or give --since")
    df, rep = check(df)
    if not rep.clean and not quiet:
        for line in rep.lines():
            console.print(f"[yellow]data: {line}[/]")
    return df, {"exchange": exchange, "symbol": symbol, "timeframe": timeframe, "data_source": f"db:{path}",
                "data_quality": rep.as_dict()}


def register(app: typer.Typer) -> None:  # noqa: C901
    @app.command()
    def strategies(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """List the built-in strategies with their parameters and defaults."""
        import json

        from ..engine.strategies import describe

        info = describe()
        if json_out:
            typer.echo(json.dumps(info, default=str))
            return
        from rich.console import Console
        from rich.table import Table

        console = Console()
        for s in info:
            t = Table(title=f"{s['name']}", caption=s["description"], title_justify="left", caption_justify="left")
            for c in ("parameter", "type", "default", "description"):
                t.add_column(c)
            for p in s["params"]:
                t.add_row(p["name"], p["type"], str(p["default"]), p["description"])
            console.print(t)

    @app.command()
    def fetch(
        exchange: str = typer.Option("sim", "--exchange", help="ccxt exchange id, or 'sim' (embedded simulated exchange)."),
        symbol: str = typer.Option("BTC/USDT", "--symbol", help="ccxt unified symbol."),
        timeframe: str = typer.Option("1m", "--timeframe", help="Candle length, e.g. 1m, 5m, 1h, 1d."),
        since: str = typer.Option(..., "--since", help="Start (UTC): YYYY-MM-DD[THH:MM] or epoch ms."),
        until: str = typer.Option(None, "--until", help="End, exclusive (default: now)."),
        db: Path = typer.Option(None, "--db", help="SQLite file (default from TPS19_DATABASE__PATH)."),
        limit: int = typer.Option(300, "--limit", min=1, max=5000, help="Candles per request."),
    ) -> None:
        """Download OHLCV history into the database (resumable: only missing bars are fetched)."""
        import asyncio
        import time

        s_ms = parse_time(since, "--since")
        u_ms = parse_time(until, "--until") or int(time.time() * 1000)
        if s_ms is None or s_ms >= u_ms:
            _fail("--since must be before --until")
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from ..engine.history import fetch_history, timeframe_ms
        from ..engine.storage import Database
        from ..launch import history_client

        try:
            timeframe_ms(timeframe)
        except ValueError as err:
            _fail(str(err))
        path = _db_path(db)
        console = Console(stderr=True)

        async def go() -> Any:
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
                                                   since=s_ms, until=u_ms, limit=limit, progress=cb)
            finally:
                await d.close()

        try:
            rep = asyncio.run(go())
        except (ValueError, ImportError) as err:
            _fail(str(err).splitlines()[0] if str(err) else type(err).__name__)
        except Exception as err:  # ccxt network/exchange errors: one line, exit 1
            _fail(f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}", code=1)
        typer.echo(
            f"{rep.written} bars written ({rep.already} already stored, {rep.planned} missing in {len(rep.ranges)} "
            f"range(s), {rep.requests} requests, {rep.empty_windows} empty windows) -> {path}"
        )

    @app.command("import")
    def import_(
        file: Path = typer.Argument(..., help="CSV or Parquet with timestamp, open, high, low, close, volume."),
        exchange: str = typer.Option("file", "--exchange", help="Exchange label to store the bars under."),
        symbol: str = typer.Option(None, "--symbol", help="Symbol label (default: the file name)."),
        timeframe: str = typer.Option(None, "--timeframe", help="Timeframe label (default: detected)."),
        db: Path = typer.Option(None, "--db", help="SQLite file."),
    ) -> None:
        """Import a CSV/Parquet file into the Bar table; bad rows and gaps are reported."""
        import asyncio

        from ..engine.history import import_file
        from ..engine.storage import Database

        path = _db_path(db)

        async def go() -> Any:
            d = Database(path)
            await d.open()
            try:
                return await import_file(d, file, exchange=exchange, symbol=symbol, timeframe=timeframe)
            finally:
                await d.close()

        try:
            n, rep, sym, tf = asyncio.run(go())
        except _bad_input_errors() as err:
            _fail(str(err))
        for line in rep.lines(limit=10):
            typer.echo(line)
        typer.echo(f"{n} bars stored as {exchange} {sym} {tf} in {path}")

    @app.command()
    def backtest(
        strategy: str = typer.Option(..., "--strategy", help="Strategy name (see `tps19 strategies`)."),
        param: list[str] = typer.Option(None, "--param", help="Strategy parameter key=value, repeatable."),
        data: Path = typer.Option(None, "--data", help="CSV/Parquet OHLCV file."),
        exchange: str = typer.Option(None, "--exchange", help="Bars from the database for this exchange (fetched if --since)."),
        symbol: str = typer.Option(None, "--symbol", help="Symbol for --exchange."),
        timeframe: str = typer.Option("1m", "--timeframe", help="Timeframe for --exchange."),
        since: str = typer.Option(None, "--since", help="Start (UTC)."),
        until: str = typer.Option(None, "--until", help="End (UTC, exclusive)."),
        cash: float = typer.Option(10_000.0, "--cash", help="Starting cash (quote currency)."),
        fee: float = typer.Option(0.001, "--fee", help="Fee as a fraction of notional on every fill."),
        slippage_bps: float = typer.Option(0.0, "--slippage-bps", help="Fixed slippage in basis points."),
        size: float = typer.Option(1.0, "--size", help="Fraction of equity a target of 1 means."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object (metrics and trades)."),
        db: Path = typer.Option(None, "--db", help="SQLite file to store the result in."),
        no_save: bool = typer.Option(False, "--no-save", help="Do not store the result."),
        no_plot: bool = typer.Option(False, "--no-plot", help="Skip the terminal chart."),
    ) -> None:
        """Backtest a strategy: signal on a bar's close, fill at the next bar's open."""
        from rich.console import Console

        console = Console(stderr=json_out)
        _check_numbers(cash=cash, fee=fee, slippage_bps=slippage_bps, size=size)
        try:
            from ..engine.backtest import BacktestConfig, run_backtest
            from ..engine.strategies import create

            strat = create(strategy, param or [])
            config = BacktestConfig(cash=cash, fee=fee, slippage_bps=slippage_bps, size=size)
            df, meta = _load_data(data, exchange, symbol, timeframe, parse_time(since, "--since"),
                                  parse_time(until, "--until"), db, json_out, console)
            if len(df) < 2:
                _fail("not enough bars to backtest (need at least 2)")
            res = run_backtest(strat, df, config)
        except _bad_input_errors() as err:
            _fail(str(err))
        _report(res, meta, json_out, no_plot, console, db, no_save)

    @app.command()
    def optimize(
        strategy: str = typer.Option(..., "--strategy", help="Strategy name."),
        grid: list[str] = typer.Option(None, "--grid", help="key=start:stop:step (inclusive) or key=a,b,c, repeatable."),
        param: list[str] = typer.Option(None, "--param", help="Fixed parameter key=value, repeatable."),
        random_n: int = typer.Option(None, "--random", min=1, help="Evaluate N random grid points instead of all."),
        walk_forward: int = typer.Option(None, "--walk-forward", min=1, help="N walk-forward folds (headline is out-of-sample)."),
        jobs: int = typer.Option(1, "--jobs", min=1, max=64, help="Worker processes."),
        metric: str = typer.Option("sharpe", "--metric", help="Rank by: sharpe, sortino, total_return, cagr, calmar, profit_factor, win_rate, final_equity, max_drawdown."),
        top: int = typer.Option(10, "--top", min=1, help="Rows of the ranking to show."),
        data: Path = typer.Option(None, "--data", help="CSV/Parquet OHLCV file."),
        exchange: str = typer.Option(None, "--exchange"),
        symbol: str = typer.Option(None, "--symbol"),
        timeframe: str = typer.Option("1m", "--timeframe"),
        since: str = typer.Option(None, "--since"),
        until: str = typer.Option(None, "--until"),
        cash: float = typer.Option(10_000.0, "--cash"),
        fee: float = typer.Option(0.001, "--fee"),
        slippage_bps: float = typer.Option(0.0, "--slippage-bps"),
        seed: int = typer.Option(19, "--seed", help="Seed for --random."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
        db: Path = typer.Option(None, "--db"),
    ) -> None:
        """Grid/random parameter search in parallel, optionally walk-forward."""
        import json

        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
        from rich.table import Table

        console = Console(stderr=json_out)
        _check_numbers(cash=cash, fee=fee, slippage_bps=slippage_bps)
        try:
            from ..engine.backtest import BacktestConfig
            from ..engine.backtest import optimize as opt
            from ..engine.strategies import parse_kv

            if not grid:
                _fail("give at least one --grid key=start:stop:step")
            if metric not in opt.METRICS:
                _fail(f"unknown metric {metric!r} (choose from {', '.join(opt.METRICS)})")
            g = opt.parse_grid(grid)
            fixed = parse_kv(param or [])
            cands = opt.candidates(strategy, g, fixed, random_n, seed)
            config = BacktestConfig(cash=cash, fee=fee, slippage_bps=slippage_bps)
            df, meta = _load_data(data, exchange, symbol, timeframe, parse_time(since, "--since"),
                                  parse_time(until, "--until"), db, json_out, console)
            arrays = {k: df[k].to_numpy() for k in ("ts", "open", "high", "low", "close", "volume")}
            with Progress(TextColumn("optimising"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=Console(stderr=True), disable=False) as prog:
                task = prog.add_task("opt", total=None)

                def cb(done: int, total: int) -> None:
                    prog.update(task, completed=done, total=total)

                if walk_forward:
                    wf = opt.walk_forward(strategy, cands, arrays, config, walk_forward, metric, jobs, cb)
                else:
                    ranked = opt.rank(opt.evaluate_many(strategy, cands, arrays, config, jobs=jobs, progress=cb), metric)
        except _bad_input_errors() as err:
            _fail(str(err))
        from ..engine.backtest.report import iso, metrics_table

        if walk_forward:
            folds = [
                {"fold": f.index, "train": [iso(int(arrays["ts"][f.train[0]])), iso(int(arrays["ts"][f.train[1] - 1]))],
                 "test": [iso(int(arrays["ts"][f.test[0]])), iso(int(arrays["ts"][f.test[1] - 1]))],
                 "params": f.best_params, "in_sample": f.in_sample.get(metric), "out_of_sample": f.out_of_sample.get(metric),
                 "oos_return": f.out_of_sample.get("total_return")}
                for f in wf.folds
            ]
            if json_out:
                typer.echo(json.dumps({"strategy": strategy, "metric": metric, "candidates": len(cands), "folds": folds,
                                       "out_of_sample": wf.metrics}, default=str))
                return
            t = Table(title=f"Walk-forward {strategy}: {len(cands)} candidates x {len(folds)} folds, by {metric}")
            for c in ("fold", "train", "test", "chosen params", f"IS {metric}", f"OOS {metric}", "OOS return"):
                t.add_column(c)
            for f in folds:
                t.add_row(str(f["fold"]), " -> ".join(f["train"]), " -> ".join(f["test"]),
                          ", ".join(f"{k}={v}" for k, v in f["params"].items()),
                          _fmt(f["in_sample"]), _fmt(f["out_of_sample"]), _fmt(f["oos_return"], pct=True))
            console.print(t)
            console.print(metrics_table(wf.metrics, title="Out-of-sample (chained test windows)"))
            console.print(f"[bold]Out-of-sample {metric}: {_fmt(wf.metrics.get(metric))}, "
                          f"return {_fmt(wf.metrics.get('total_return'), pct=True)}[/]")
            return
        if json_out:
            typer.echo(json.dumps({"strategy": strategy, "metric": metric, "candidates": len(cands),
                                   "ranking": [{"params": p, "metrics": m} for p, m in ranked[:top]]}, default=str))
            return
        t = Table(title=f"{strategy}: {len(cands)} candidates ranked by {metric} (in-sample)")
        for c in ("#", "params", metric, "return", "max DD", "trades"):
            t.add_column(c)
        for i, (p, m) in enumerate(ranked[:top], 1):
            t.add_row(str(i), ", ".join(f"{k}={v}" for k, v in p.items() if k not in fixed), _fmt(m.get(metric)),
                      _fmt(m.get("total_return"), pct=True), _fmt(m.get("max_drawdown"), pct=True), str(m.get("trades")))
        console.print(t)


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x * 100:.2f}%" if pct else f"{x:.4g}"


def _report(res: Any, meta: dict[str, Any], json_out: bool, no_plot: bool, console: Any, db: Path | None, no_save: bool) -> None:
    import asyncio

    from ..engine.backtest.report import chart, metrics_table, save_result, to_json, trades_table

    saved = None
    if not no_save:
        from ..engine.storage import Database

        async def go() -> int:
            d = Database(_db_path(db))
            await d.open()
            try:
                return await save_result(d, res, exchange=meta.get("exchange"), symbol=meta.get("symbol"),
                                         timeframe=meta.get("timeframe"), data_source=meta.get("data_source"))
            finally:
                await d.close()

        try:
            saved = asyncio.run(go())
        except Exception as err:  # a read-only disk must not hide the result
            console.print(f"[yellow]result not stored: {type(err).__name__}: {err}[/]")
    if json_out:
        typer.echo(to_json(res, {"data": meta, "result_id": saved}))
        return
    from rich.text import Text

    console.print(metrics_table(res.metrics, title=f"{res.strategy} " + " ".join(f"{k}={v}" for k, v in res.params.items())))
    if not no_plot:
        width = max(40, min(console.width, 160))
        console.print(Text.from_ansi(chart(res.ts, res.equity, width=width, height=24)))
    console.print(trades_table(res))
    if saved is not None:
        console.print(f"stored as backtest result #{saved}")
