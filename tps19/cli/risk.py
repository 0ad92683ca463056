"""`tps19 risk`: a portfolio's risk figures from bar files, checkable outside the desk.

Only typer at module level. Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .common import fail, stop_loss_option, take_profit_option, trailing_stop_option


def parse_pairs(items: list[str], flag: str) -> dict[str, str]:
    """SYM=VALUE pairs (the symbol upper-cased), each symbol once."""
    out: dict[str, str] = {}
    for item in items:
        sym, sep, val = item.partition("=")
        sym = sym.strip().upper()
        if not sep or not sym or not val.strip():
            fail(f"{flag} {item[:60]!r} is not SYMBOL=VALUE")
        if sym in out:
            fail(f"{flag}: {sym} given twice")
        out[sym] = val.strip()
    return out


def parse_weights(items: list[str], symbols: list[str]) -> dict[str, float] | None:
    import math

    if not items:
        return None
    raw = parse_pairs(items, "--weights")
    unknown = sorted(set(raw) - set(symbols))
    if unknown:
        fail(f"--weights names {unknown[0]}, which has no --data file")
    out = {}
    for s, v in raw.items():
        try:
            w = float(v)
        except ValueError:
            fail(f"--weights {s}: {v[:20]!r} is not a number")
        if not math.isfinite(w) or abs(w) > 100:
            fail(f"--weights {s}: {v[:20]!r} is not a sane weight")
        out[s] = w
    return out


def load_frames(data: list[str]) -> dict[str, Any]:
    import asyncio

    from ..engine.history import DataError, load_backtest_bars

    frames = {}
    for sym, file in parse_pairs(data, "--data").items():
        try:
            frames[sym], rep = asyncio.run(load_backtest_bars(Path(file), None, None))
        except (DataError, ValueError, OSError) as err:
            fail(f"--data {sym}: {err}")
        for line in rep.warnings():  # a file out of time order is sorted, never silently cut short
            typer.echo(f"tps19: warning: --data {sym}: {line}", err=True)
    return frames


def risk(
    data: list[str] = typer.Option(..., "--data", help="SYMBOL=FILE (CSV/Parquet OHLCV), repeatable."),
    weights: list[str] = typer.Option(None, "--weights", help="SYMBOL=WEIGHT (fraction of equity), repeatable; default equal."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Exposure, leverage, volatility, VaR/CVaR 95/99 %, max drawdown and correlation of a
    portfolio of bar files, aligned on time and held at constant weights."""
    from ..engine.risk.metrics import weights_report

    frames = load_frames(data)
    w = parse_weights(weights or [], list(frames))
    rep, ts = weights_report(frames, w)
    if rep.bars < 2:
        fail("the files share fewer than 3 bar times: nothing to measure")
    out = rep.as_dict() | {"symbols": list(frames), "from_ts": int(ts[0]), "to_ts": int(ts[-1])}
    if json_out:
        typer.echo(json.dumps(out))
        return
    _print(out)


def _print(out: dict[str, Any]) -> None:
    from rich.table import Table

    t = Table(title=f"risk of {', '.join(out['symbols'])} ({out['bars']} returns)", show_header=False)
    t.add_column("figure", style="bold")
    t.add_column("value", justify="right")
    for s, v in out["exposure"].items():
        t.add_row(f"exposure {s}", f"{v:.4g}")
    t.add_row("gross exposure", f"{out['gross_exposure']:.4g}")
    t.add_row("leverage", f"{out['leverage']:.4g}")
    t.add_row("volatility per bar", f"{out['volatility_per_bar'] * 100:.3f}%")
    t.add_row("volatility annualised", f"{out['volatility_annual'] * 100:.2f}%")
    per, day = f"per {out['horizon']} bar", f"1 day ({out['one_day_method']})"
    for lv in ("95", "99"):
        t.add_row(f"VaR {lv}% {per}", f"{out['var'][lv] * 100:.3f}%")
        t.add_row(f"CVaR {lv}% {per}", f"{out['cvar'][lv] * 100:.3f}%")
    for lv in ("95", "99"):
        t.add_row(f"VaR {lv}% {day}", f"{out['var_1d'][lv] * 100:.3f}%")
        t.add_row(f"CVaR {lv}% {day}", f"{out['cvar_1d'][lv] * 100:.3f}%")
    t.add_row("max drawdown", f"{out['max_drawdown'] * 100:.2f}%")
    syms = list(out["correlation"])
    for i, a in enumerate(syms):
        for b in syms[i + 1:]:
            c = out["correlation"][a][b]
            t.add_row(f"correlation {a} / {b}", "n/a" if c is None else f"{c:.3f}")
    _cli_console().print(t)


def load_stored(symbols: list[str], exchange: str, timeframe: str, db: Path | None) -> dict[str, Any]:
    import asyncio

    from ..engine.history import StoredBars, load_backtest_bars, timeframe_ms
    from .common import db_path

    try:
        timeframe_ms(timeframe)
    except ValueError as err:
        fail(str(err))
    path = db_path(db)
    frames = {}
    for sym in symbols:
        df, rep = asyncio.run(load_backtest_bars(StoredBars(path, exchange, sym.upper(), timeframe)))
        if rep.rows_in == 0:
            fail(f"no {timeframe} bars for {sym.upper()} on {exchange} in {path}; run `tps19 fetch` first")
        frames[sym.upper()] = df
    return frames


def rebalance(
    method: str = typer.Option(..., "--method", help="min_variance, risk_parity or mean_variance."),
    data: list[str] = typer.Option(None, "--data", help="SYMBOL=FILE (CSV/Parquet OHLCV), repeatable."),
    symbol: list[str] = typer.Option(None, "--symbol", help="Stored bars of this symbol (see --exchange/--timeframe), repeatable."),
    exchange: str = typer.Option("sim", "--exchange", help="With --symbol: the exchange the bars were fetched from."),
    timeframe: str = typer.Option("1h", "--timeframe", help="With --symbol: the bar timeframe."),
    db: Path = typer.Option(None, "--db", help="With --symbol: the SQLite file."),
    lookback: int = typer.Option(500, "--lookback", min=10, help="Recent returns the covariance is estimated from."),
    risk_aversion: float = typer.Option(1.0, "--risk-aversion", help="mean_variance: the variance penalty, on annualised moments."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the weights and the orders that reach them; send nothing."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object (weights and covariance)."),
    mode: str = typer.Option("paper", "--mode", help="paper or live: the account the orders are planned for (and sent to without --dry-run)."),
    yes: bool = typer.Option(False, "--yes", help="Paper only: send without asking."),
) -> None:
    """Target weights (long-only, summing to 1) from recent returns with a Ledoit-Wolf covariance;
    without --dry-run, the orders that reach them (shown, confirmed, through the risk stage)."""
    import numpy as np

    from ..engine.risk.metrics import align_closes, simple_returns
    from ..engine.risk.optimize import OptimiseError, allocate
    from .common import check_numbers

    check_numbers(risk_aversion=risk_aversion)
    if bool(data) == bool(symbol):
        fail("give either --data SYMBOL=FILE ... or --symbol S ..., not both")
    if mode not in ("paper", "live"):
        fail(f"--mode must be paper or live, not {mode[:20]!r}")
    if yes and mode == "live":
        fail("--yes is for paper only: LIVE orders are confirmed by typing yes")
    frames = load_frames(data) if data else load_stored(symbol, exchange.lower(), timeframe, db)
    ts, closes = align_closes(frames)
    names = list(closes)
    if len(ts) < 3:
        fail("the series share fewer than 3 bar times: nothing to estimate")
    rets = np.column_stack([simple_returns(closes[s])[-lookback:] for s in names])
    try:
        from ..engine.risk.metrics import bars_per_year

        alloc = allocate(method, names, rets, risk_aversion=risk_aversion, bars_per_year=bars_per_year(ts) or 365.25 * 24)
    except OptimiseError as err:
        fail(str(err))
    out = alloc.as_dict() | {"returns": int(rets.shape[0]), "from_ts": int(ts[-rets.shape[0] - 1]), "to_ts": int(ts[-1]),
                             "dry_run": dry_run}
    if not json_out:
        _print_weights(out, names, method, alloc.shrinkage)
    from .rebalance_orders import send_rebalance

    # the orders too (--dry-run: shown with what the risk stage would say, nothing sent); --json
    # prints one object with the weights and the orders
    send_rebalance(out["weights"], mode, yes, db, dry_run=dry_run, json_out=out if json_out else None)


def _print_weights(out: dict[str, Any], names: list[str], method: str, shrinkage: float | None) -> None:
    from rich.table import Table

    t = Table(title=f"{method} weights from {out['returns']} returns (Ledoit-Wolf shrinkage {shrinkage or 0:.3f})")
    t.add_column("symbol")
    t.add_column("weight", justify="right")
    t.add_column("risk share", justify="right")
    for s in names:
        t.add_row(s, f"{out['weights'][s] * 100:.2f}%", f"{out['risk_contributions'][s] * 100:.2f}%")
    _cli_console().print(t)


def backtest_portfolio(
    data: list[str] = typer.Option(None, "--data", help="SYMBOL=FILE (CSV/Parquet OHLCV), repeatable."),
    symbol: list[str] = typer.Option(None, "--symbol", help="Stored bars of this symbol, repeatable."),
    exchange: str = typer.Option("sim", "--exchange", help="With --symbol: the exchange the bars were fetched from."),
    timeframe: str = typer.Option("1h", "--timeframe", help="With --symbol: the bar timeframe."),
    db: Path = typer.Option(None, "--db", help="The SQLite file: --symbol's bars, the ml strategy's models."),
    strategy: str = typer.Option(None, "--strategy", help="A single-symbol strategy run on every symbol (equal shares)."),
    param: list[str] = typer.Option(None, "--param", help="Strategy parameter key=value, repeatable."),
    rebalance_method: str = typer.Option(None, "--rebalance", help="Hold optimiser weights instead: min_variance, risk_parity, mean_variance."),
    every: int = typer.Option(24, "--every", min=1, help="With --rebalance: bars between rebalances."),
    lookback: int = typer.Option(120, "--lookback", min=10, help="With --rebalance: returns the covariance is estimated from."),
    cash: float = typer.Option(10_000.0, "--cash", help="Starting cash shared by every symbol."),
    fee: float = typer.Option(None, "--fee", help="Fee as a fraction of notional on every fill (default: with "
                              "--symbol the taker rate of --exchange, with --data 0.001)."),
    slippage_bps: float = typer.Option(0.0, "--slippage-bps", help="Fixed slippage in basis points."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    sizing: str = typer.Option(None, "--sizing", help="Position sizing per symbol (docs/risk.md)."),
    sizing_param: list[str] = typer.Option(None, "--sizing-param", help="Sizing parameter key=value, repeatable."),
    max_drawdown: float = typer.Option(None, "--max-drawdown", help="Drawdown breaker: % below peak equity that halts new risk."),
    flatten_on_halt: bool = typer.Option(False, "--flatten-on-halt", help="When the breaker trips, close every position."),
    stop_loss: float = stop_loss_option(),
    take_profit: float = take_profit_option(),
    trailing_stop: float = trailing_stop_option(),
) -> None:
    """Backtest several symbols sharing one cash balance (docs/risk.md)."""
    from ..engine.backtest import BacktestConfig
    from ..engine.backtest.portfolio import RebalanceEvery, run_portfolio
    from ..engine.risk.optimize import METHODS, OptimiseError
    from .backtest import venue_taker_fee
    from .common import bad_input_errors, check_numbers, protection_flags

    if fee is None:  # the venue the stored bars come from; files model no venue
        fee = venue_taker_fee(exchange if symbol else None)[0]
    check_numbers(cash=cash, fee=fee, slippage_bps=slippage_bps)
    protection = protection_flags(stop_loss, take_profit, trailing_stop)
    if bool(data) == bool(symbol):
        fail("give either --data SYMBOL=FILE ... or --symbol S ..., not both")
    if bool(strategy) == bool(rebalance_method):
        fail("give either --strategy NAME or --rebalance METHOD")
    if rebalance_method and rebalance_method not in METHODS:
        fail(f"unknown --rebalance {rebalance_method!r} (choose from {', '.join(METHODS)})")
    from .backtest import backtest_risk

    refused: tuple[type[BaseException], ...] = (OptimiseError, *bad_input_errors())
    try:
        config = BacktestConfig(cash=cash, fee=fee, slippage_bps=slippage_bps, protection=protection)
        risk = backtest_risk(sizing, sizing_param, max_drawdown, flatten_on_halt)
        frames = load_frames(data) if data else load_stored(symbol, exchange.lower(), timeframe, db)
        names = list(frames)
        if strategy:
            from ..engine.strategies import create, get
            from .common import db_path

            # the `ml` strategy reads its model from the database in use
            uses_db = db_path(db) if getattr(get(strategy), "uses_database", False) else None
            create(strategy, param or [], db=uses_db)  # a bad name or parameter fails here, once
            res = run_portfolio(names, frames, config, strategy=lambda _s: create(strategy, param or [], db=uses_db),
                                risk=risk)
        else:
            res = run_portfolio(names, frames, config, rebalance=RebalanceEvery(rebalance_method, every, lookback),
                                risk=risk)
    except refused as err:
        fail(str(err))
    if len(res.ts) < 2:
        fail("the series share fewer than 2 bar times: nothing to backtest")
    if json_out:
        typer.echo(json.dumps(res.as_dict(), default=float))
        return

    from ..engine.backtest.report import metrics_table

    console = _cli_console()
    console.print(metrics_table(res.metrics, title=f"portfolio of {', '.join(names)}"))
    console.print("fills: " + ", ".join(f"{s} {len(f)}" for s, f in res.fills.items()))


def register(app: typer.Typer) -> None:
    app.command("risk")(risk)
    app.command("rebalance")(rebalance)
    app.command("backtest-portfolio")(backtest_portfolio)


def _cli_console() -> Any:
    from .common import console

    return console()
