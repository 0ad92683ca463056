"""Multi-symbol backtests with shared capital.

The same rules as the single-symbol engine (``engine.py``; docs/backtesting.md): a target is
decided on a bar's close and filled at the next bar's open, moved against us by the slippage,
with the fee on every fill. Here each symbol's target is a fraction of the WHOLE portfolio's
equity (valued at that open): at a fill bar every symbol whose target changed is moved to
``target x equity``; sells go first so the cash they free pays for the buys, and a buy that
opens spends ``value / (price x (1 + fee))`` units so a set of targets summing to 1 never needs
more than the equity. Equity at every close is cash + sum(units x close). With one symbol and
long-only targets this is exactly the single-symbol simulator (a test checks it).

Strategies: each symbol runs its own copy of a single-symbol strategy, with an equal share of
equity (target / N), or ``rebalance`` (``RebalanceEvery``) holds weights from the optimiser
(``risk/optimize.py``) recomputed every ``period`` bars from the returns up to that close.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import BacktestConfig
from .metrics import compute_metrics
from .trades import Fill, FillTable, TradeTable


@dataclass
class PortfolioResult:
    symbols: list[str]
    config: BacktestConfig
    ts: np.ndarray
    equity: np.ndarray
    units: np.ndarray  # bars x symbols, held at each close
    targets: np.ndarray  # bars x symbols, as decided
    fills: dict[str, list[Fill]]
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"symbols": self.symbols, "metrics": self.metrics,
                "fills": {s: len(f) for s, f in self.fills.items()},
                "final_units": {s: float(u) for s, u in zip(self.symbols, self.units[-1], strict=True)}
                if len(self.units) else {}}


def simulate_portfolio(ts: np.ndarray, opens: np.ndarray, closes: np.ndarray, targets: np.ndarray,
                       config: BacktestConfig) -> tuple[np.ndarray, np.ndarray, dict[int, list[Fill]]]:
    """(equity per bar, units per bar x symbol, fills per symbol index)."""
    n, m = closes.shape
    targets = np.asarray(targets, dtype=float) * config.size
    fee, slip = config.fee, config.slippage_bps / 10_000.0
    prev = np.vstack([np.zeros((1, m)), targets[:-1]])
    changed = np.flatnonzero((targets != prev).any(axis=1))
    changed = changed[changed + 1 < n]
    cash, units = float(config.cash), np.zeros(m)
    fills: dict[int, list[Fill]] = {j: [] for j in range(m)}
    units_at = np.zeros((n, m))
    cash_at = np.full(n, float(config.cash))
    last = 0
    for i in changed.tolist():
        k = i + 1
        units_at[last:k], cash_at[last:k] = units, cash
        last = k
        px = opens[k]
        equity = cash + float(units @ px)
        if equity <= 0:
            break  # ruined
        want = targets[i] * equity / px
        move = [j for j in range(m) if targets[i, j] != prev[i, j]]
        for j in sorted(move, key=lambda j: abs(want[j]) >= abs(units[j])):  # reductions first
            cash, units[j] = _move(fills[j], k, int(ts[k]), cash, units[j], want[j], float(px[j]), fee, slip)
    units_at[last:], cash_at[last:] = units, cash
    equity = cash_at + (units_at * closes).sum(axis=1)
    return equity, units_at, fills


def _move(out: list[Fill], k: int, t: int, cash: float, have: float, want: float, p: float, fee: float,
          slip: float) -> tuple[float, float]:
    """Trade one symbol from ``have`` to ``want`` units at bar ``k``'s open ``p``."""
    if have != 0.0 and (want == 0.0 or (want > 0) != (have > 0)):  # leave the side first
        side, px = ("sell", p * (1 - slip)) if have > 0 else ("buy", p * (1 + slip))
        cash += (have * px) - abs(have) * px * fee
        out.append(Fill(k, t, side, abs(have), px, abs(have) * px * fee))
        have = 0.0
    sgn = 1.0 if want > 0 else -1.0
    if abs(want) > abs(have):  # grow: the fee comes out of the target value
        px = p * (1 + slip * sgn)
        dq = (abs(want) - abs(have)) * p / (px * (1 + fee))
        f = dq * px * fee
        cash += -sgn * dq * px - f
        out.append(Fill(k, t, "buy" if sgn > 0 else "sell", dq, px, f))
        return cash, have + sgn * dq
    if abs(want) < abs(have):
        px = p * (1 - slip * sgn)
        dq = abs(have) - abs(want)
        f = dq * px * fee
        cash += sgn * dq * px - f
        out.append(Fill(k, t, "sell" if sgn > 0 else "buy", dq, px, f))
        return cash, want
    return cash, have


@dataclass(frozen=True)
class RebalanceEvery:
    """Hold optimiser weights, recomputed every ``period`` bars from the last ``lookback`` returns."""

    method: str = "risk_parity"
    period: int = 24
    lookback: int = 120

    def targets(self, closes: np.ndarray) -> np.ndarray:
        from ..risk.optimize import allocate

        n, m = closes.shape
        out = np.zeros((n, m))
        rets = closes[1:] / closes[:-1] - 1.0
        w = np.zeros(m)
        for i in range(n):
            if i >= self.lookback and (i - self.lookback) % self.period == 0:
                # returns known at bar i's close: rets[:i] (rets[i-1] is close[i] / close[i-1] - 1)
                w = allocate(self.method, [str(j) for j in range(m)], rets[i - self.lookback:i]).weights
            out[i] = w
        return out


def portfolio_risk(risk: Any, ts: np.ndarray, opens: np.ndarray, closes: np.ndarray, targets: np.ndarray,
                   config: BacktestConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Sizing per symbol, then the drawdown breaker on the portfolio's equity (the rules of
    ``risk/backtest.py``, on the shared-capital simulator)."""
    from ..risk.backtest import halted, sized_targets, trip_bar

    t = np.array(targets, dtype=float)
    if risk.sizing is not None:
        t = np.column_stack([sized_targets(risk.sizing, t[:, j], closes[:, j], ts) for j in range(t.shape[1])])
    info: dict[str, Any] = {"halted_at_bar": None, "halted_at_ts": None}
    if risk.max_drawdown_pct is not None and len(ts):
        k = trip_bar(simulate_portfolio(ts, opens, closes, t, config)[0], risk.max_drawdown_pct)
        if k is not None:
            t = np.column_stack([halted(t[:, j], k, risk.flatten) for j in range(t.shape[1])])
            info = {"halted_at_bar": k, "halted_at_ts": int(ts[k])}
    return t, risk.describe() | info


def run_portfolio(symbols: list[str], frames: dict[str, Any], config: BacktestConfig, *,
                  strategy: Any = None, rebalance: RebalanceEvery | None = None, risk: Any = None) -> PortfolioResult:
    """Backtest several symbols sharing ``config.cash``, on the bar times they all have.
    ``strategy(symbol)`` makes one single-symbol strategy per symbol; or ``rebalance``. ``risk``
    (``risk/backtest.py``'s BacktestRisk) sizes the targets and applies the drawdown breaker."""
    from ..risk.metrics import align_closes

    ts, closes_by = align_closes(frames)
    cols: dict[str, dict[str, np.ndarray]] = {}
    for s in symbols:
        df = frames[s]
        idx = np.searchsorted(np.asarray(df["ts"], dtype=np.int64), ts)
        cols[s] = {k: np.asarray(df[k], dtype=float)[idx] for k in ("open", "high", "low", "close", "volume")}
    opens = np.column_stack([cols[s]["open"] for s in symbols])
    closes = np.column_stack([cols[s]["close"] for s in symbols])
    if rebalance is not None:
        targets = rebalance.targets(closes)
    else:
        targets = np.column_stack([np.asarray(strategy(s).generate(cols[s]).target, dtype=float) / len(symbols)
                                   for s in symbols])
    risk_info = None
    if risk is not None:
        targets, risk_info = portfolio_risk(risk, ts, opens, closes, targets, config)
    equity, units, fills = simulate_portfolio(ts, opens, closes, targets, config)
    res = PortfolioResult(symbols, config, ts, equity, units, targets, {s: fills[j] for j, s in enumerate(symbols)})
    every = [f for j in range(len(symbols)) for f in fills[j]]
    view = _MetricsView(equity, ts, config, FillTable.from_fills(every), np.abs(units).sum(axis=1))
    res.metrics = compute_metrics(view)
    if risk_info is not None:
        res.metrics["risk"] = risk_info
    return res


@dataclass
class _MetricsView:
    """What ``compute_metrics`` reads: the portfolio's equity; trade statistics are per symbol
    and not computed for portfolios."""

    equity: np.ndarray
    ts: np.ndarray
    config: BacktestConfig
    fills: FillTable
    position: np.ndarray
    trades: TradeTable = field(default_factory=lambda: TradeTable.from_trades([]))
