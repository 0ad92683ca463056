"""Performance metrics from an equity curve and a trade list (formulas in docs/backtesting.md)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

YEAR_MS = 365.25 * 86_400_000  # crypto trades every day


def periods_per_year(ts: np.ndarray) -> float:
    if len(ts) < 2:
        return 0.0
    step = float(np.median(np.diff(ts)))
    return YEAR_MS / step if step > 0 else 0.0


def max_drawdown(equity: np.ndarray, ts: np.ndarray) -> tuple[float, int, int]:
    """(max drawdown as a negative fraction, longest underwater stretch in bars, and in ms).

    The duration is the longest period from a peak until equity first reaches that peak again
    (or the end of the data if it never does).
    """
    if len(equity) == 0:
        return 0.0, 0, 0
    peak = np.maximum.accumulate(equity)
    dd = equity / peak - 1.0
    under = dd < 0
    best_bars, best_ms = 0, 0
    if under.any():
        # runs of consecutive underwater bars
        d = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
        starts = np.flatnonzero(d == 1)
        ends = np.flatnonzero(d == -1)  # exclusive
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            peak_bar = s - 1 if s > 0 else s
            end_bar = e if e < len(equity) else len(equity) - 1  # recovery bar, or last bar
            bars = end_bar - peak_bar
            if bars > best_bars:
                best_bars, best_ms = bars, int(ts[end_bar] - ts[peak_bar])
    return float(dd.min()), best_bars, best_ms


def _f(x: float) -> float | None:
    """JSON-safe float (None for NaN/inf)."""
    return None if x is None or not math.isfinite(x) else float(x)


def compute_metrics(res: Any) -> dict[str, Any]:
    eq = np.asarray(res.equity, dtype=float)
    ts = np.asarray(res.ts)
    cash0 = float(res.config.cash)
    final = float(eq[-1]) if len(eq) else cash0
    total_return = final / cash0 - 1.0
    span_ms = float(ts[-1] - ts[0]) if len(ts) > 1 else 0.0
    years = span_ms / YEAR_MS
    cagr = (final / cash0) ** (1.0 / years) - 1.0 if years > 0 and final > 0 else math.nan
    curve = np.concatenate(([cash0], eq))
    rets = curve[1:] / curve[:-1] - 1.0
    ppy = periods_per_year(ts)
    sd = float(np.std(rets, ddof=1)) if len(rets) > 1 else 0.0
    mean = float(np.mean(rets)) if len(rets) else 0.0
    sharpe = mean / sd * math.sqrt(ppy) if sd > 0 else math.nan
    downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2))) if len(rets) else 0.0
    sortino = mean / downside * math.sqrt(ppy) if downside > 0 else math.nan
    mdd, dd_bars, dd_ms = max_drawdown(curve, np.concatenate(([ts[0]], ts)) if len(ts) else ts)
    calmar = cagr / abs(mdd) if mdd < 0 and math.isfinite(cagr) else math.nan
    closed = [t for t in res.trades if not t.open]
    pnls = np.array([t.pnl for t in closed], dtype=float)
    wins = pnls[pnls > 0]
    losses = pnls[pnls < 0]
    win_rate = len(wins) / len(pnls) if len(pnls) else math.nan
    if len(losses):
        profit_factor = float(wins.sum()) / abs(float(losses.sum()))
    else:
        profit_factor = math.inf if len(wins) else math.nan
    exposure = float(np.mean(np.asarray(res.position) != 0)) if len(res.position) else 0.0
    fees = float(sum(f.fee for f in res.fills))
    return {
        "start_ms": int(ts[0]) if len(ts) else None,
        "end_ms": int(ts[-1]) if len(ts) else None,
        "bars": int(len(eq)),
        "initial_cash": cash0,
        "final_equity": final,
        "total_return": total_return,
        "cagr": _f(cagr),
        "sharpe": _f(sharpe),
        "sortino": _f(sortino),
        "max_drawdown": mdd,
        "max_drawdown_bars": dd_bars,
        "max_drawdown_duration_ms": dd_ms,
        "calmar": _f(calmar),
        "win_rate": _f(win_rate),
        "profit_factor": _f(profit_factor),
        "trades": len(closed),
        "open_trades": len(res.trades) - len(closed),
        "avg_trade": _f(float(pnls.mean())) if len(pnls) else None,
        "avg_trade_return": _f(float(np.mean([t.return_pct for t in closed]))) if closed else None,
        "exposure": exposure,
        "fees": fees,
        "fills": len(res.fills),
    }
