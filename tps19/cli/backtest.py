"""`tps19 backtest | optimize`: run a strategy over bars, or search its parameters.

Only typer at module level: pandas, numpy and the engine load inside the commands.
Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from .common import (DB_HELP, bad_input_errors, check_numbers, db_label, db_path, fail, one_line, parse_time,
                     protection_flags, stop_loss_option, take_profit_option, trailing_stop_option)


def load_data(
    data: Path | None, exchange: str | None, symbol: str | None, timeframe: str, since: int | None,
    until: int | None, db: str | Path | None, quiet: bool, console: Any,
) -> tuple[Any, dict[str, Any]]:
    """Bars for a backtest, from a file or from the database (fetching what is missing)."""
    if data is not None:
        from ..engine.history.source import load_file_bars

        if exchange or symbol:
            fail("give either --data FILE or --exchange/--symbol, not both")
        df, rep = load_file_bars(data, since, until)
        meta: dict[str, Any] = {"data_source": str(data)}
    else:
        if not symbol:
            fail("give --data FILE, or --symbol (with --exchange, default sim) to use stored/fetched bars")
        import asyncio

        from ..engine.history import StoredBars, load_backtest_bars, timeframe_ms
        from ..engine.storage import StorageError
        from ..launch import history_client

        exchange = (exchange or "sim").lower()
        path = db_path(db)
        timeframe_ms(timeframe)
        try:
            df, rep = asyncio.run(load_backtest_bars(StoredBars(path, exchange, symbol, timeframe), since, until,
                                                     fetch=history_client))
        except ValueError:
            raise
        except StorageError as err:  # a database that is not there (reading creates none), unreadable
            fail(str(err))
        except Exception as err:  # network / exchange errors while fetching: one line, exit 1
            fail(one_line(err), code=1)
        if rep.rows_in == 0:
            fail(f"no {timeframe} bars for {symbol} on {exchange} in {db_label(path)}; run `tps19 fetch` or give --since")
        meta = {"exchange": exchange, "symbol": symbol, "timeframe": timeframe, "data_source": f"db:{db_label(path)}"}
    for line in rep.warnings():  # also with --json (stderr): sorted or dropped rows are never silent
        typer.echo(f"tps19: warning: data: {line}", err=True)
    if not rep.clean and not quiet:
        for line in rep.lines():
            if line not in rep.warnings():
                console.print(f"[yellow]data: {line}[/]")
    return df, meta | {"data_quality": rep.as_dict()}


def modelled_venue(data: Path | None, exchange: str | None, symbol: Any) -> str | None:
    """The venue a run's bars come from: --exchange, or sim for stored bars without one (load_data's
    default); None for a file."""
    if data is not None:
        return None
    return (exchange or "sim") if symbol else exchange


def fee_for(fee: float | None, data: Path | None, exchange: str | None, symbol: Any) -> tuple[float, str]:
    """--fee when given, else the taker rate of the venue the bars are modelled on."""
    return (fee, "--fee") if fee is not None else venue_taker_fee(modelled_venue(data, exchange, symbol))


def venue_taker_fee(exchange: str | None) -> tuple[float, str]:
    """The fee a backtest charges when --fee is not given: the taker rate of the venue the bars
    are modelled on (a fill at the next bar's open takes liquidity), and where it comes from."""
    from ..venue_fees import SIM_FEES, SIM_NAMES

    ex = (exchange or "").strip().lower()  # (tps19.config is not imported: a --data run stays light)
    if ex in SIM_FEES:
        return float(SIM_FEES[ex][1]), f"taker rate of {SIM_NAMES[ex]}"
    if ex and ex != "file":
        from ..engine.ccxt_classes import exchange_class

        cls = exchange_class(ex, "sync")
        taker = ((cls().fees.get("trading") or {}).get("taker") if cls is not None else None) if cls else None
        if isinstance(taker, (int, float)) and 0 <= taker < 1:
            return float(taker), f"ccxt's published taker rate for {ex} (your account's may differ: --fee)"
    return 0.001, "default (no venue to model)"


def backtest(
    strategy: str = typer.Option(None, "--strategy", help="Strategy name (see `tps19 strategies`); with --replay, "
                                 "default: the recorded session's."),
    param: list[str] = typer.Option(None, "--param", help="Strategy parameter key=value, repeatable."),
    data: Path = typer.Option(None, "--data", help="CSV/Parquet OHLCV file."),
    exchange: str = typer.Option(None, "--exchange", help="Bars from the database for this exchange (fetched if --since)."),
    symbol: str = typer.Option(None, "--symbol", help="Symbol for --exchange."),
    timeframe: str = typer.Option("1m", "--timeframe", help="Timeframe for --exchange."),
    since: str = typer.Option(None, "--since", help="Start (UTC)."),
    until: str = typer.Option(None, "--until", help="End (UTC, exclusive)."),
    cash: float = typer.Option(10_000.0, "--cash", help="Starting cash (quote currency)."),
    fee: float = typer.Option(None, "--fee", help="Fee as a fraction of notional on every fill (default: the "
                              "taker rate of the --exchange the bars come from, else 0.001)."),
    slippage_bps: float = typer.Option(0.0, "--slippage-bps", help="Fixed slippage in basis points."),
    size: float = typer.Option(1.0, "--size", help="Fraction of equity a target of 1 means."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (metrics and trades)."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    no_save: bool = typer.Option(False, "--no-save", help="Do not store the result."),
    no_plot: bool = typer.Option(False, "--no-plot", help="Skip the terminal chart."),
    sizing: str = typer.Option(None, "--sizing", help="Position sizing: fixed, fixed_fractional, vol_target, kelly (docs/risk.md)."),
    sizing_param: list[str] = typer.Option(None, "--sizing-param", help="Sizing parameter key=value, repeatable."),
    max_drawdown: float = typer.Option(None, "--max-drawdown", help="Drawdown breaker: % below peak equity that halts new risk."),
    flatten_on_halt: bool = typer.Option(False, "--flatten-on-halt", help="When the breaker trips, close the position."),
    stop_loss: float = stop_loss_option(),
    take_profit: float = take_profit_option(),
    trailing_stop: float = trailing_stop_option(),
    replay: Path = typer.Option(None, "--replay", help="Event-driven backtest on a recording (books and prints) through "
                                "the paper broker's fill model (docs/replay.md)."),
    timing: str = typer.Option("recorded", "--timing", help="With --replay: 'recorded' (decisions executed where the "
                               "session executed them) or 'ideal' (at the bar's close + --latency-ms)."),
    latency_ms: int = typer.Option(0, "--latency-ms", min=0, help="With --replay: decision -> execution delay."),
) -> None:
    """Backtest a strategy: signal on a bar's close, fill at the next bar's open; protective exits inside each bar
    (or, with --replay, on recorded books and prints)."""
    # OpenBLAS starts its worker threads when numpy loads, and each spins (sched_yield) for ~2^28
    # cycles waiting for work before it sleeps: ~0.1 s of CPU per idle core, a third of a short
    # backtest, whose only BLAS call is one dot product at the end. A short spin changes no
    # result (the thread count, hence every BLAS sum's order, stays). Read when numpy loads, so
    # set before; a value of yours wins.
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    from .results import LazyConsole, report

    if replay is not None:
        from .replay import backtest_replay

        if data is not None or symbol or exchange:
            fail("--replay reads its market data from the recording: no --data/--symbol/--exchange")
        backtest_replay(replay, strategy, param, timing, latency_ms, json_out)
        return
    if not strategy:
        fail("Missing option '--strategy'")

    console = LazyConsole(stderr=json_out)
    fee, fee_source = fee_for(fee, data, exchange, symbol)
    check_numbers(cash=cash, fee=fee, slippage_bps=slippage_bps, size=size)
    protection = protection_flags(stop_loss, take_profit, trailing_stop)
    try:
        from ..engine.backtest import BacktestConfig, run_backtest
        from ..engine.strategies import create, get

        # the settings (pydantic-settings) are read only for a strategy that reads the database
        strat = create(strategy, param or [], db=db_path(db) if getattr(get(strategy), "uses_database", False) else None)
        config = BacktestConfig(cash=cash, fee=fee, slippage_bps=slippage_bps, size=size, protection=protection)
        risk = backtest_risk(sizing, sizing_param, max_drawdown, flatten_on_halt)
        df, meta = load_data(data, exchange, symbol, timeframe, parse_time(since, "--since"),
                             parse_time(until, "--until"), db, json_out, console)
        meta["fee"] = {"rate": fee, "source": fee_source}
        if len(df) < 2:
            fail("not enough bars to backtest (need at least 2)")
        res = run_backtest(strat, df, config, risk)
        del df  # open/high/low/volume: the result keeps ts and close (32 of 48 bytes a bar freed)
        from ..engine.risk.metrics import with_risk_figures

        with_risk_figures(res)  # volatility, VaR/CVaR as docs/risk.md defines them
    except bad_input_errors() as err:
        fail(str(err))
    halted = (res.metrics.get("risk") or {}).get("halted_at_bar")
    if halted is not None and not json_out:
        console.print(f"[red]drawdown breaker tripped at bar {halted}: no new risk after it[/]")
    report(res, meta, json_out, no_plot, console, db, no_save)


def backtest_risk(sizing: str | None, params: list[str] | None, max_drawdown: float | None,
                  flatten: bool) -> Any:
    """The run's sizing and breaker (None when neither is asked for); bad values raise ValueError."""
    if sizing is None and not params and max_drawdown is None:
        return None
    from ..engine.risk.backtest import BacktestRisk
    from ..engine.risk.sizing import parse_sizing

    if max_drawdown is not None:
        check_numbers(max_drawdown=max_drawdown)
        if not 0 < max_drawdown <= 100:
            raise ValueError("--max-drawdown must be within (0, 100] percent")
    return BacktestRisk(parse_sizing(sizing, params) if sizing or params else None, max_drawdown, flatten)


def optimize(
    strategy: str = typer.Option(..., "--strategy", help="Strategy name."),
    grid: list[str] = typer.Option(None, "--grid", help="key=start:stop:step (inclusive) or key=a,b,c, repeatable."),
    param: list[str] = typer.Option(None, "--param", help="Fixed parameter key=value, repeatable."),
    random_n: int = typer.Option(None, "--random", min=1, help="Evaluate N random grid points instead of all."),
    search: str = typer.Option("grid", "--search", help="grid: every point of --grid (or --random N of them); tpe: an "
                               "Optuna study (TPE sampler) of --trials N parameter sets, the --grid ranges as its search "
                               "space (a:b:step ints or floats on the steps, a:b any int/float in between, x,y,z choices); "
                               "with --walk-forward, trials are pruned fold by fold."),
    trials: int = typer.Option(None, "--trials", help="With --search tpe: parameter sets to evaluate (pruned ones "
                               "included; all count in the deflated Sharpe)."),
    walk_forward: int = typer.Option(None, "--walk-forward", min=1, help="N walk-forward folds (headline is out-of-sample)."),
    jobs: int = typer.Option(1, "--jobs", min=1, max=64, help="Worker processes."),
    cluster: str = typer.Option(None, "--cluster", help="Run the grid or the study's trials on a Dask cluster: "
                                "tcp://HOST:PORT (its scheduler). A tpe study there is not promised to repeat with the "
                                "same --seed (trials finish in any order); every trial is recorded in --json."),
    metric: str = typer.Option("sharpe", "--metric", help="Rank by: sharpe, sortino, total_return, cagr, calmar, profit_factor, win_rate, final_equity, max_drawdown."),
    top: int = typer.Option(10, "--top", min=1, help="Rows of the ranking to show."),
    data: Path = typer.Option(None, "--data", help="CSV/Parquet OHLCV file."),
    exchange: str = typer.Option(None, "--exchange"),
    symbol: str = typer.Option(None, "--symbol"),
    timeframe: str = typer.Option("1m", "--timeframe"),
    since: str = typer.Option(None, "--since"),
    until: str = typer.Option(None, "--until"),
    cash: float = typer.Option(10_000.0, "--cash"),
    fee: float = typer.Option(None, "--fee", help="Fee as a fraction of notional on every fill (default: the taker "
                              "rate of the venue the bars come from, else 0.001)."),
    slippage_bps: float = typer.Option(0.0, "--slippage-bps"),
    seed: int = typer.Option(19, "--seed", min=0, max=2**32 - 1, help="Seed for --random and --search tpe (a tpe study run sequentially, "
                             "--jobs 1 and no --cluster, repeats exactly with the same seed)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    stop_loss: float = stop_loss_option(),
    take_profit: float = take_profit_option(),
    trailing_stop: float = trailing_stop_option(),
) -> None:
    """Grid/random parameter search or an Optuna (TPE) study, in parallel, optionally walk-forward; the
    winner's deflated Sharpe ratio and the search's probability of backtest overfitting count every trial."""
    from .results import LazyConsole, print_ranking, print_walk_forward

    console = LazyConsole(stderr=json_out)
    fee, _fee_source = fee_for(fee, data, exchange, symbol)
    check_numbers(cash=cash, fee=fee, slippage_bps=slippage_bps)
    protection = protection_flags(stop_loss, take_profit, trailing_stop)
    kind = (search or "").strip().lower()
    if kind not in ("grid", "tpe"):
        fail(f"unknown --search {search!r} (choose from grid, tpe)")
    if kind == "tpe":
        if random_n is not None:
            fail("--random samples the grid; with --search tpe give --trials N")
        if trials is None:
            fail("--search tpe needs --trials N (how many parameter sets to evaluate)")
        if trials < 1:
            fail(f"--trials must be at least 1, not {trials}")
        _optimize_tpe(strategy, grid, param, trials, seed, walk_forward, jobs, cluster, metric, top, data, exchange,
                      symbol, timeframe, since, until, cash, fee, slippage_bps, json_out, db, protection, console)
        return
    if trials is not None:
        fail("--trials is for --search tpe (the grid evaluates every point; --random N samples it)")
    try:
        from ..engine.backtest import BacktestConfig
        from ..engine.backtest import optimize as opt
        from ..engine.strategies import parse_kv

        if not grid:
            fail("give at least one --grid key=start:stop:step")
        if metric not in opt.METRICS:
            fail(f"unknown metric {metric!r} (choose from {', '.join(opt.METRICS)})")
        g = opt.parse_grid(grid)
        fixed = parse_kv(param or [])
        cands = opt.candidates(strategy, g, fixed, random_n, seed)
        config = BacktestConfig(cash=cash, fee=fee, slippage_bps=slippage_bps, protection=protection)
        df, _meta = load_data(data, exchange, symbol, timeframe, parse_time(since, "--since"),
                              parse_time(until, "--until"), db, json_out, console)
        arrays = {k: df[k] for k in ("ts", "open", "high", "low", "close", "volume")}
        outcome = _search(strategy, cands, arrays, config, walk_forward, metric, jobs, cluster)
    except bad_input_errors() as err:
        fail(str(err))
    if walk_forward:
        print_walk_forward(outcome, strategy, metric, len(cands), arrays["ts"], json_out, console)
    else:
        print_ranking(outcome, strategy, metric, len(cands), fixed, top, json_out, console)


def _optimize_tpe(strategy: str, grid: list[str] | None, param: list[str] | None, trials: int, seed: int,
                  walk_forward: int | None, jobs: int, cluster: str | None, metric: str, top: int, data: Path | None,
                  exchange: str | None, symbol: str | None, timeframe: str, since: str | None, until: str | None,
                  cash: float, fee: float, slippage_bps: float, json_out: bool, db: str | None, protection: Any,
                  console: Any) -> None:
    """``optimize --search tpe``: the study (tps19/engine/backtest/tpe.py, which alone imports optuna)."""
    from .results import print_study

    try:
        from ..engine.backtest import BacktestConfig
        from ..engine.backtest import optimize as opt
        from ..engine.backtest.space import check_trials, parse_space
        from ..engine.strategies import parse_kv

        if not grid:
            fail("give at least one --grid range for the study to search (key=start:stop[:step] or key=a,b,c)")
        if metric not in opt.METRICS:
            fail(f"unknown metric {metric!r} (choose from {', '.join(opt.METRICS)})")
        space = parse_space(strategy, grid)
        check_trials(space, trials)
        fixed = parse_kv(param or [])
        config = BacktestConfig(cash=cash, fee=fee, slippage_bps=slippage_bps, protection=protection)
        df, _meta = load_data(data, exchange, symbol, timeframe, parse_time(since, "--since"),
                              parse_time(until, "--until"), db, json_out, console)
        arrays = {k: df[k] for k in ("ts", "open", "high", "low", "close", "volume")}
        if cluster:
            from ..engine.backtest.optimize import cluster_pool
            from ..engine.distributed import cluster as connect

            with connect(cluster) as client:
                width = sum(client.nthreads().values())
                outcome = _study(strategy, space, fixed, arrays, config, metric, trials, seed, walk_forward, jobs,
                                 pool=cluster_pool(client, arrays), width=max(width, 1))
        else:
            outcome = _study(strategy, space, fixed, arrays, config, metric, trials, seed, walk_forward, jobs)
    except bad_input_errors() as err:
        fail(str(err))
    print_study(outcome, strategy, metric, fixed, top, arrays["ts"], json_out, console)


def _study(strategy: str, space: Any, fixed: dict[str, Any], arrays: dict[str, Any], config: Any, metric: str,
           trials: int, seed: int, walk_forward: int | None, jobs: int, pool: Any = None, width: int | None = None) -> Any:
    """The study with a progress bar over its trials on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..engine.backtest import tpe

    with Progress(TextColumn("trials"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[pruned]} pruned"),
                  TimeRemainingColumn(), console=Console(stderr=True)) as prog:
        task = prog.add_task("tpe", total=trials, pruned=0)

        def cb(done: int, total: int, pruned: int) -> None:
            prog.update(task, completed=done, total=total, pruned=pruned)

        return tpe.study(strategy, space, arrays, config, metric, trials, seed, fixed=fixed, folds=walk_forward,
                         jobs=jobs, pool=pool, width=width, progress=cb)


def _search(strategy: str, cands: list[dict[str, Any]], arrays: dict[str, Any], config: Any,
            walk_forward: int | None, metric: str, jobs: int, cluster: str | None = None) -> Any:
    """The walk-forward result, or the candidates ranked in-sample, with a progress bar on stderr."""
    if cluster:
        from ..engine.backtest.optimize import cluster_pool
        from ..engine.distributed import ClusterError, cluster as connect

        try:
            with connect(cluster) as client:
                return _search_in(strategy, cands, arrays, config, walk_forward, metric, jobs,
                                  pool=cluster_pool(client, arrays))
        except ClusterError as err:
            fail(str(err))
    return _search_in(strategy, cands, arrays, config, walk_forward, metric, jobs)


def _search_in(strategy: str, cands: list[dict[str, Any]], arrays: dict[str, Any], config: Any,
               walk_forward: int | None, metric: str, jobs: int, pool: Any = None) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..engine.backtest import optimize as opt

    with Progress(TextColumn("optimising"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), disable=False) as prog:
        task = prog.add_task("opt", total=None)

        def cb(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        if walk_forward:
            return opt.walk_forward(strategy, cands, arrays, config, walk_forward, metric, jobs, cb, pool=pool)
        return opt.search(strategy, cands, arrays, config, metric, jobs, cb, pool=pool)


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)
    app.command("optimize")(optimize)
