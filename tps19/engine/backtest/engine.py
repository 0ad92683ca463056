"""Vectorised backtest with next-bar-open fills.

Rules (documented in docs/backtesting.md):

* The strategy's target for bar i is decided on bar i's close; the order fills at bar i+1's
  open. A signal on the last bar is never filled. No look-ahead: ``run`` feeds the strategy
  the full arrays, but ``check_no_lookahead`` (tests) proves a strategy's output at bar i does
  not change when the bars after i are removed.
* Sizing: the target is a fraction of equity (``size`` scales it, default 1 = whole equity).
  Changing side (long -> flat/short, short -> flat/long) first closes the whole position, then
  opens the new side with the equity left. Growing a position spends
  ``|target|*equity - |position|*open`` *fees included*, so a target of 1 from flat uses all the
  cash: ``units = cash / (fill_price * (1 + fee))`` (shorts likewise). Shrinking it trades
  ``|position| - |target|*equity/open`` units. Equity is valued at the fill bar's open.
* Fill price: the open, moved against us by ``slippage_bps`` (buys higher, sells lower).
* Fee: ``fee * fill_price * units`` on every fill, in quote currency. Fractional units.
* Equity curve: cash + units * close at every bar. A position still open at the end is
  marked at the last close (no exit fee) and listed as an open trade; trade statistics count
  closed trades only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..strategies.base import SignalFrame, Strategy, target_changes
from .metrics import compute_metrics
from .config import BacktestConfig
from ..protection import INTRABAR_RULE, Protection, with_sizing
from .simulate import SimConfig, simulate, simulate_changes, sparse_changes
from .stops import apply_protection, simulate_target
from .trades import Fill, FillTable, Trade, TradeTable

__all__ = ["BacktestConfig", "BacktestResult", "Fill", "Trade", "check_no_lookahead", "run_backtest", "simulate"]


@dataclass
class BacktestResult:
    strategy: str
    params: dict[str, Any]
    config: BacktestConfig
    ts: np.ndarray
    close: np.ndarray
    equity: np.ndarray
    position: np.ndarray  # units held at each bar's close
    fills: FillTable
    trades: TradeTable  # a Sequence[Trade]; its columns are numpy arrays
    metrics: dict[str, Any] = field(default_factory=dict)
    signals: SignalFrame | None = None  # only when risk sizing ran (it needs the dense target)

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else self.config.cash

    @property
    def closed_trades(self) -> list[Trade]:
        return [self.trades[i] for i in np.flatnonzero(self.trades.closed).tolist()]

    def drawdown(self) -> np.ndarray:
        peak = np.maximum.accumulate(self.equity)
        return self.equity / peak - 1.0


def run_backtest(strategy: Strategy, data: Any, config: BacktestConfig | None = None, risk: Any = None) -> BacktestResult:
    """Backtest ``strategy`` on a frame with columns ts, open, high, low, close, volume.
    ``risk`` (engine/risk/backtest.py ``BacktestRisk``) sizes the targets and applies the
    drawdown breaker before the simulator; what it did is in ``metrics["risk"]``."""
    config = config or BacktestConfig()
    config, risk = with_sizing_stop(config, risk)
    cols = {k: np.asarray(data[k], dtype=float) for k in ("open", "high", "low", "close", "volume")}
    ts = np.asarray(data["ts"], dtype=np.int64)
    sim = SimConfig(config.cash, config.fee, config.slippage_bps, config.size)
    data_ts = cols | {"ts": ts}  # bar times: the `ml` strategy's features and range check
    levels = getattr(strategy, "protection_columns", None)
    columns = levels(data_ts) if callable(levels) else None  # the strategy's own protective levels
    frame, risk_info = None, None
    if risk is None:  # the target's changes only: no per-bar signal columns on a long history
        if hasattr(strategy, "target_changes"):
            at, held = strategy.target_changes(data_ts)
        else:  # any object with generate() (tests' scripted strategies)
            at, held = target_changes(strategy.generate(data_ts).target)
        changes = sparse_changes(cols["open"], len(ts), at, held, config.size)
        changes = apply_protection(changes, at, cols["open"], cols["high"], cols["low"], config.slippage_bps,
                                   config.protection, columns)
        equity, units, fills, trades = simulate_changes(ts, cols["close"], changes, sim)
    else:
        from ..risk.backtest import apply_risk

        frame = strategy.generate(data_ts)
        raw_at = target_changes(frame.target)[0]  # the strategy's own changes, before sizing
        risked = apply_risk(risk, ts, cols, frame.target, config, raw_at=raw_at, columns=columns)
        risk_info = risked.info
        equity, units, fills, trades = simulate_target(ts, cols, risked.target, config, raw_at, columns,
                                                       unhalted=risked.sized)
    res = BacktestResult(
        strategy=strategy.name,
        params=strategy.param_dict(),
        config=config,
        ts=ts,
        close=cols["close"],
        equity=equity,
        position=units,
        fills=fills,
        trades=trades,
        signals=frame,
    )
    res.metrics = compute_metrics(res)
    if risk_info is not None:
        res.metrics["risk"] = risk.describe() | risk_info
    if config.protection is not None or columns is not None:
        res.metrics["protection"] = protection_report(config.protection, columns is not None)
    res.metrics["exit_reasons"] = trades.reason_counts()
    return res


def with_sizing_stop(config: BacktestConfig, risk: Any) -> tuple[BacktestConfig, Any]:
    """``--stop-loss`` replaces the fixed_fractional sizing's stop, or that rule's stop is placed
    (``protection.with_sizing``): the run's config and risk with both in agreement."""
    sizing = getattr(risk, "sizing", None)
    if sizing is None:
        return config, risk
    protection, sizing = with_sizing(config.protection, sizing)
    return replace(config, protection=protection), replace(risk, sizing=sizing)


def protection_report(protection: Protection | None, strategy_levels: bool) -> dict[str, Any]:
    """What the report says of the run's protective exits: the levels and the intrabar rule."""
    return {**(protection.as_dict() if protection is not None else {}),
            "strategy_levels": strategy_levels, "intrabar_rule": INTRABAR_RULE}


def check_no_lookahead(strategy_factory: Any, data: Any, cut_points: list[int]) -> list[int]:
    """Bars where a strategy's decision changes when the future is removed (should be empty)."""
    full = strategy_factory().generate(data)
    bad = []
    for cut in cut_points:
        part = {k: np.asarray(data[k])[: cut + 1] for k in ("open", "high", "low", "close", "volume")}
        fr = strategy_factory().generate(part)
        if not np.array_equal(fr.target, full.target[: cut + 1]):
            bad.append(cut)
    return bad
