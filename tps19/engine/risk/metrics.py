"""Risk metrics, one module for the desk's Risk pane, backtest reports and `tps19 risk`.

Definitions (docs/risk.md):

* exposure: |value| held per symbol, and their sum (gross); leverage = gross / equity.
* realised volatility: standard deviation (ddof=1) of the per-bar simple returns, also
  annualised by sqrt(bars a year).
* historical VaR at 95 % / 99 %: minus numpy's default (linear) quantile of the returns at
  5 % / 1 %; CVaR: minus the mean of the returns at or below minus VaR. One sign convention
  everywhere: a loss is positive (a fraction of equity); a negative VaR says even the tail of
  the returns is a gain. Every figure names its horizon: ``horizon`` is the bar ("1m"), and a
  one-day figure comes with it (``one_day_var``): historical, from overlapping one-day
  compounded returns, given at least 30 days of bars; else the per-bar figure x sqrt(bars a
  day), labelled ``scaled``.
* max drawdown: the largest fall of the compounded equity curve from its running peak, as a
  positive fraction.
* correlation: Pearson correlation of the held symbols' per-bar returns.

Floats: these are analytics, never booked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..quantiles import median, quantile

YEAR_MS = 365.25 * 86_400_000
LEVELS = (0.95, 0.99)


def simple_returns(close: np.ndarray) -> np.ndarray:
    c = np.asarray(close, dtype=float)
    return c[1:] / c[:-1] - 1.0 if len(c) > 1 else np.zeros(0)


def _finite(values: np.ndarray) -> np.ndarray:
    """The finite values (the array itself, not a copy, when all are)."""
    r = np.asarray(values, dtype=float)
    ok = np.isfinite(r)
    return r if ok.all() else r[ok]


def var_cvar(returns: np.ndarray, level: float) -> tuple[float, float]:
    """(VaR, CVaR) at ``level`` (0.95 -> the 5 % tail) per period of the returns: a loss is
    positive, a tail of gains negative."""
    r = _finite(returns)
    if not len(r):
        return 0.0, 0.0
    q = quantile(r, 1.0 - level)
    var = -q
    tail = r[r <= q]
    cvar = -float(tail.mean()) if len(tail) else var
    return var, cvar


def max_drawdown(returns: np.ndarray) -> float:
    eq = np.cumprod(1.0 + np.asarray(returns, dtype=float))
    if not len(eq):
        return 0.0
    eq = np.concatenate(([1.0], eq))
    return float(np.max(1.0 - eq / np.maximum.accumulate(eq)))


def volatility(returns: np.ndarray, bars_per_year: float) -> tuple[float, float]:
    """(per-bar, annualised) standard deviation of the returns (ddof=1)."""
    r = np.asarray(returns, dtype=float)
    if len(r) < 2:
        return 0.0, 0.0
    sd = float(r.std(ddof=1))
    return sd, sd * math.sqrt(bars_per_year) if bars_per_year > 0 else 0.0


def correlation(returns: Mapping[str, np.ndarray]) -> dict[str, dict[str, float | None]]:
    names = list(returns)
    if not names:
        return {}
    m = np.vstack([np.asarray(returns[n], dtype=float) for n in names])
    if m.shape[1] < 2:
        return {a: {b: None for b in names} for a in names}
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(m) if len(names) > 1 else np.ones((1, 1))
    c = np.atleast_2d(c)
    return {a: {b: (float(c[i, j]) if np.isfinite(c[i, j]) else None) for j, b in enumerate(names)}
            for i, a in enumerate(names)}


DAY_MS = 86_400_000
MIN_DAYS_HISTORICAL = 30


def horizon_label(bars_per_year: float) -> str:
    """The bar a per-bar figure is per: "1m", "1h", "1d" (from the bars' spacing)."""
    if not bars_per_year > 0:
        return "bar"
    ms = YEAR_MS / bars_per_year
    for unit, size in (("d", DAY_MS), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms >= size and abs(ms / size - round(ms / size)) < 1e-6:
            return f"{round(ms / size)}{unit}"
    return f"{ms / 1000:g}s"


def one_day_var(returns: np.ndarray, bars_per_day: float) -> tuple[dict[str, float], dict[str, float], str]:
    """(VaR, CVaR at 95/99 over one day, method): "historical" from overlapping one-day
    compounded returns when the series spans at least 30 days, else "scaled" (per-bar x sqrt)."""
    r = _finite(returns)
    k = int(round(bars_per_day)) if bars_per_day > 0 else 1
    var: dict[str, float] = {}
    cvar: dict[str, float] = {}
    if k >= 1 and len(r) >= MIN_DAYS_HISTORICAL * k:
        # in place, two bar-long arrays at a time (a 5M-bar backtest's peak was set here)
        growth = np.log1p(r)
        np.cumsum(growth, out=growth)
        daily = growth[k - 1 :].copy()
        daily[1:] -= growth[: len(growth) - k]
        del growth
        np.expm1(daily, out=daily)
        for lv in LEVELS:
            var[str(round(lv * 100))], cvar[str(round(lv * 100))] = var_cvar(daily, lv)
        return var, cvar, "historical"
    scale = math.sqrt(max(bars_per_day, 1.0))
    for lv in LEVELS:
        v, c = var_cvar(r, lv)
        var[str(round(lv * 100))], cvar[str(round(lv * 100))] = v * scale, c * scale
    return var, cvar, "scaled"


@dataclass
class RiskReport:
    exposure: dict[str, float]  # |value| per symbol (fractions of equity when built from weights)
    gross_exposure: float
    leverage: float
    bars: int
    volatility_per_bar: float
    volatility_annual: float
    var: dict[str, float] = field(default_factory=dict)  # "95" / "99" -> VaR
    cvar: dict[str, float] = field(default_factory=dict)
    max_drawdown: float = 0.0
    correlation: dict[str, dict[str, float | None]] = field(default_factory=dict)
    horizon: str = "bar"  # what var/cvar are per: one bar of this length ("1m")
    var_1d: dict[str, float] = field(default_factory=dict)
    cvar_1d: dict[str, float] = field(default_factory=dict)
    one_day_method: str = "scaled"  # historical (overlapping one-day returns) or scaled (x sqrt(bars a day))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def report(returns_by_symbol: Mapping[str, np.ndarray], exposure: Mapping[str, float], equity: float,
           bars_per_year: float) -> RiskReport:
    """The figures for a portfolio holding ``exposure`` (value per symbol, signed) of ``equity``,
    whose returns per bar are the exposure-weighted returns of its symbols (aligned arrays)."""
    gross = float(sum(abs(v) for v in exposure.values()))
    n = min((len(r) for r in returns_by_symbol.values()), default=0)
    port = np.zeros(n)
    if equity > 0 and n:
        for s, r in returns_by_symbol.items():
            port += (exposure.get(s, 0.0) / equity) * np.asarray(r, dtype=float)[-n:]
    per_bar, annual = volatility(port, bars_per_year)
    var, cvar = {}, {}
    for lv in LEVELS:
        var[str(round(lv * 100))], cvar[str(round(lv * 100))] = var_cvar(port, lv)
    held = {s: np.asarray(r, dtype=float)[-n:] for s, r in returns_by_symbol.items() if exposure.get(s)}
    var_d, cvar_d, method = one_day_var(port, bars_per_year / 365.25 if bars_per_year > 0 else 1.0)
    return RiskReport(exposure={s: abs(v) for s, v in exposure.items()}, gross_exposure=gross,
                      leverage=gross / equity if equity > 0 else 0.0, bars=n, volatility_per_bar=per_bar,
                      volatility_annual=annual, var=var, cvar=cvar, max_drawdown=max_drawdown(port),
                      correlation=correlation(held), horizon=horizon_label(bars_per_year), var_1d=var_d,
                      cvar_1d=cvar_d, one_day_method=method)


def align_closes(frames: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Closes of several bar frames (columns ts, close) on the timestamps they all have."""
    ts: np.ndarray | None = None
    for df in frames.values():
        t = np.asarray(df["ts"], dtype=np.int64)
        ts = t if ts is None else np.intersect1d(ts, t)
    if ts is None:
        return np.zeros(0, dtype=np.int64), {}
    out = {}
    for s, df in frames.items():
        t = np.asarray(df["ts"], dtype=np.int64)
        idx = np.searchsorted(t, ts)
        out[s] = np.asarray(df["close"], dtype=float)[idx]
    return ts, out


def bars_per_year(ts: np.ndarray) -> float:
    if len(ts) < 2:
        return 0.0
    step = median(np.diff(ts))
    return YEAR_MS / step if step > 0 else 0.0


def equity_risk(equity: np.ndarray, cash: float, ts: np.ndarray) -> dict[str, Any]:
    """A backtest report's risk figures, from its equity curve (per-bar simple returns, the
    starting cash first): annualised volatility and VaR/CVaR at 95 and 99 %."""
    curve = np.concatenate(([cash], np.asarray(equity, dtype=float)))
    rets = simple_returns(curve)
    per_year = bars_per_year(ts)
    out: dict[str, Any] = {"volatility_annual": volatility(rets, per_year)[1]}
    for lv in LEVELS:
        var, cvar = var_cvar(rets, lv)
        out[f"var_{round(lv * 100)}"], out[f"cvar_{round(lv * 100)}"] = var, cvar
    var_d, cvar_d, method = one_day_var(rets, per_year / 365.25 if per_year > 0 else 1.0)
    for key in var_d:
        out[f"var_1d_{key}"], out[f"cvar_1d_{key}"] = var_d[key], cvar_d[key]
    out["var_horizon"], out["var_1d_method"] = horizon_label(per_year), method
    return out


def with_risk_figures(res: Any) -> Any:
    """A backtest result with ``equity_risk`` in its metrics (the CLI and the desk's backtest
    screen report the same figures; the optimiser's many runs skip them)."""
    res.metrics.update(equity_risk(res.equity, res.config.cash, res.ts))
    return res


def weights_report(frames: Mapping[str, Any], weights: Mapping[str, float] | None = None) -> tuple[RiskReport, np.ndarray]:
    """`tps19 risk`: the figures for a portfolio of files held at constant weights (equal if none
    given), rebalanced every bar; exposure and leverage as fractions of equity."""
    ts, closes = align_closes(frames)
    w = dict(weights) if weights else {s: 1.0 / len(closes) for s in closes}
    rets = {s: simple_returns(c) for s, c in closes.items()}
    return report(rets, {s: w.get(s, 0.0) for s in closes}, 1.0, bars_per_year(ts)), ts
