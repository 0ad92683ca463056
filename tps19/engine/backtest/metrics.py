"""Performance metrics from an equity curve and a trade list (formulas in docs/backtesting.md)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..history.bars import median
from .trades import FillTable, TradeTable

YEAR_MS = 365.25 * 86_400_000  # crypto trades every day


def periods_per_year(ts: np.ndarray) -> float:
    if len(ts) < 2:
        return 0.0
    step = median(np.diff(ts), in_place=True)
    return YEAR_MS / step if step > 0 else 0.0


def max_drawdown(equity: np.ndarray, ts: np.ndarray, start: float | None = None) -> tuple[float, int, int]:
    """(max drawdown as a negative fraction, longest underwater stretch in bars, and in ms).

    The duration is the longest period from a peak until equity first reaches that peak again
    (or the end of the data if it never does). ``start``: a value before the first bar (the
    starting cash, at the first bar's time) — as if prepended, without copying the curve."""
    n = len(equity)
    if n == 0:
        return 0.0, 0, 0
    off = 0 if start is None else 1  # curve index = equity index + off
    dd = np.maximum.accumulate(equity)
    if start is not None:
        np.maximum(dd, start, out=dd)
    np.divide(equity, dd, out=dd)
    dd -= 1.0
    under = dd < 0
    best_bars, best_ms = 0, 0
    if under.any():
        # runs of consecutive underwater bars: from the peak before each to its recovery (or the end)
        d = np.diff(under.view(np.int8), prepend=np.int8(0), append=np.int8(0))
        starts = np.flatnonzero(d == 1) + off  # in curve indices
        ends = np.flatnonzero(d == -1) + off  # exclusive
        peak_bar = np.maximum(starts - 1, 0)
        end_bar = np.minimum(ends, n + off - 1)
        lengths = end_bar - peak_bar
        k = int(np.argmax(lengths))  # the first of the longest
        t_end, t_peak = ts[max(end_bar[k] - off, 0)], ts[max(peak_bar[k] - off, 0)]
        best_bars, best_ms = int(lengths[k]), int(t_end - t_peak)
    return min(float(dd.min()), 0.0), best_bars, best_ms


def bar_returns(eq: np.ndarray, cash0: float) -> np.ndarray:
    """Per-bar returns of an equity curve, the first from the starting cash (what Sharpe uses)."""
    n = len(eq)
    rets = np.empty(n)
    if n == 0:
        return rets
    rets[0] = eq[0] / cash0 - 1.0
    np.divide(eq[1:], eq[:-1], out=rets[1:])
    rets[1:] -= 1.0
    return rets


def _returns(eq: np.ndarray, cash0: float) -> tuple[float, float, float]:
    """(mean, sample std, downside deviation) of per-bar returns from ``cash0``: one temporary."""
    n = len(eq)
    if n == 0:
        return 0.0, 0.0, 0.0
    rets = bar_returns(eq, cash0)
    mean = float(rets.mean())
    sd = float(rets.std(ddof=1)) if n > 1 else 0.0
    np.minimum(rets, 0.0, out=rets)
    # not np.dot: OpenBLAS splits a dot product over threads past ~10k elements, so the downside
    # deviation's last digits depended on the machine's core count; numpy's own pairwise sum does not
    np.square(rets, out=rets)
    return mean, sd, math.sqrt(float(rets.sum()) / n)


DAY_MS = 86_400_000
MIN_DAYS = 10  # fewer daily returns than this: the interval uses the bars' own returns


def sharpe_interval(eq: np.ndarray, ts: np.ndarray, cash0: float, sharpe: float, ppy: float) -> dict[str, Any]:
    """The standard error of an annualised Sharpe ratio and its 95 % interval.

    Lo (2002) with Mertens' (2002) allowance for skew and kurtosis: the per-period Sharpe SR of T
    returns has SE = sqrt((1 - skew * SR + (kurt - 1) / 4 * SR^2) / T); annualised by sqrt(periods
    per year). Bars finer than a day are first turned into daily returns (the equity at each UTC
    day's last bar), which intraday autocorrelation and the many flat bars of a strategy do not
    flatter; with fewer than MIN_DAYS days (or daily bars and coarser) the bars' returns are used.
    The interval is centred on the reported Sharpe."""
    out: dict[str, Any] = {"sharpe_se": None, "sharpe_ci95": None, "sharpe_basis": None}
    n = len(eq)
    if n < 3 or not math.isfinite(sharpe):
        return out
    step = YEAR_MS / ppy if ppy > 0 else 0.0
    basis, per_year = "bars", ppy
    if 0 < step < DAY_MS:
        day = np.asarray(ts, dtype=np.int64) // DAY_MS
        last = np.flatnonzero(np.diff(day) != 0)
        if len(last) + 1 >= MIN_DAYS:
            r = bar_returns(np.asarray(eq, dtype=float)[np.append(last, n - 1)], cash0)
            basis, per_year = "daily", YEAR_MS / DAY_MS
    if basis == "bars":
        r = bar_returns(np.asarray(eq, dtype=float), cash0)
    sd = float(r.std(ddof=1)) if len(r) > 1 else 0.0
    if not sd > 0:
        return out
    c = r - r.mean()
    m2 = float(np.mean(c * c))
    skew = float(np.mean(c**3)) / m2**1.5
    kurt = float(np.mean(c**4)) / m2**2
    sr = float(r.mean()) / sd
    var = max(1 - skew * sr + (kurt - 1) / 4 * sr * sr, 0.0) / len(r)
    se = math.sqrt(var * per_year)
    return {"sharpe_se": se, "sharpe_ci95": [sharpe - 1.96 * se, sharpe + 1.96 * se],
            "sharpe_basis": f"{basis} ({len(r)} returns)"}


def _f(x: float) -> float | None:
    """JSON-safe float (None for NaN/inf)."""
    return None if x is None or not math.isfinite(x) else float(x)


def _annualised(growth: float, years: float) -> float:
    """growth^(1/years) - 1; inf when a short span makes it overflow (a day's +1% is 'inf' a year)."""
    if not (years > 0 and growth > 0):
        return math.nan
    exponent = math.log(growth) / years
    return math.expm1(exponent) if exponent < 700 else math.inf


def compute_metrics(res: Any) -> dict[str, Any]:
    eq = np.asarray(res.equity, dtype=float)
    ts = np.asarray(res.ts)
    cash0 = float(res.config.cash)
    final = float(eq[-1]) if len(eq) else cash0
    total_return = final / cash0 - 1.0
    span_ms = float(ts[-1] - ts[0]) if len(ts) > 1 else 0.0
    years = span_ms / YEAR_MS
    cagr = _annualised(final / cash0, years)
    ppy = periods_per_year(ts)
    mean, sd, downside = _returns(eq, cash0)
    sharpe = mean / sd * math.sqrt(ppy) if sd > 0 else math.nan
    sortino = mean / downside * math.sqrt(ppy) if downside > 0 else math.nan
    mdd, dd_bars, dd_ms = max_drawdown(eq, ts, start=cash0)
    calmar = cagr / abs(mdd) if mdd < 0 and math.isfinite(cagr) else math.nan
    trades = res.trades if isinstance(res.trades, TradeTable) else TradeTable.from_trades(res.trades)
    fills = res.fills if isinstance(res.fills, FillTable) else FillTable.from_fills(res.fills)
    closed = trades.closed
    pnls = np.asarray(trades.pnl, dtype=float)[closed]
    wins = pnls[pnls > 0]
    losses = pnls[pnls < 0]
    win_rate = len(wins) / len(pnls) if len(pnls) else math.nan
    if len(losses):
        profit_factor = float(wins.sum()) / abs(float(losses.sum()))
    else:
        profit_factor = math.inf if len(wins) else math.nan
    exposure = float(np.count_nonzero(res.position)) / len(res.position) if len(res.position) else 0.0
    fees = float(np.sum(fills.fee))
    n_closed = len(pnls)
    return {
        "start_ms": int(ts[0]) if len(ts) else None,
        "end_ms": int(ts[-1]) if len(ts) else None,
        "bars": int(len(eq)),
        "initial_cash": cash0,
        "final_equity": final,
        "total_return": total_return,
        "cagr": _f(cagr),
        "sharpe": _f(sharpe),
        **sharpe_interval(eq, ts, cash0, sharpe, ppy),
        "sortino": _f(sortino),
        "max_drawdown": mdd,
        "max_drawdown_bars": dd_bars,
        "max_drawdown_duration_ms": dd_ms,
        "calmar": _f(calmar),
        "win_rate": _f(win_rate),
        "profit_factor": _f(profit_factor),
        "trades": n_closed,
        "open_trades": len(trades) - n_closed,
        "avg_trade": _f(float(pnls.mean())) if n_closed else None,
        "avg_trade_return": _f(float(np.mean(np.asarray(trades.return_pct)[closed]))) if n_closed else None,
        "exposure": exposure,
        "fees": fees,
        "fills": len(fills),
    }
