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

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..strategies.base import SignalFrame, Strategy
from .metrics import compute_metrics


@dataclass(frozen=True)
class BacktestConfig:
    cash: float = 10_000.0
    fee: float = 0.001
    slippage_bps: float = 0.0
    size: float = 1.0

    def __post_init__(self) -> None:
        if not self.cash > 0:
            raise ValueError("cash must be > 0")
        if not 0 <= self.fee < 0.1:
            raise ValueError("fee must be within 0..0.1 (a fraction of notional)")
        if not 0 <= self.slippage_bps < 1000:
            raise ValueError("slippage-bps must be within 0..1000")
        if not 0 < self.size <= 1:
            raise ValueError("size must be within 0..1 (fraction of equity)")


@dataclass
class Fill:
    bar: int
    ts: int
    side: str  # buy | sell
    units: float
    price: float
    fee: float


@dataclass
class Trade:
    side: str  # long | short
    entry_bar: int
    entry_ts: int
    entry_price: float  # average fill price of the increases
    units: float  # largest absolute position held
    exit_bar: int | None = None
    exit_ts: int | None = None
    exit_price: float | None = None  # average fill price of the reductions
    pnl: float = 0.0  # net of fees (open trades: marked at the last close)
    return_pct: float = 0.0  # pnl / entry cost
    fees: float = 0.0
    open: bool = False
    # bookkeeping
    _in_units: float = 0.0
    _in_value: float = 0.0
    _out_units: float = 0.0
    _out_value: float = 0.0
    _cash_flow: float = 0.0

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


@dataclass
class BacktestResult:
    strategy: str
    params: dict[str, Any]
    config: BacktestConfig
    ts: np.ndarray
    close: np.ndarray
    equity: np.ndarray
    position: np.ndarray  # units held at each bar's close
    fills: list[Fill]
    trades: list[Trade]
    metrics: dict[str, Any] = field(default_factory=dict)
    signals: SignalFrame | None = None

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else self.config.cash

    @property
    def closed_trades(self) -> list[Trade]:
        return [t for t in self.trades if not t.open]

    def drawdown(self) -> np.ndarray:
        peak = np.maximum.accumulate(self.equity)
        return self.equity / peak - 1.0


def simulate(
    ts: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    target: np.ndarray,
    config: BacktestConfig,
) -> tuple[np.ndarray, np.ndarray, list[Fill], list[Trade]]:
    """Fill target changes at the next open. Returns (equity, units per bar, fills, trades)."""
    n = len(close)
    target = np.asarray(target, dtype=float) * config.size
    prev = np.concatenate(([0.0], target[:-1]))
    change = np.flatnonzero(target != prev)
    change = change[change + 1 < n]  # a decision on the last bar never fills
    fee, slip = config.fee, config.slippage_bps / 10_000.0
    cash, units = float(config.cash), 0.0
    fills: list[Fill] = []
    trades: list[Trade] = []
    cur: Trade | None = None
    fill_bars: list[int] = []
    cash_after: list[float] = []
    units_after: list[float] = []

    def leg(k: int, side: str, dq: float, px: float, opening: bool) -> None:
        nonlocal cash, units, cur
        notional = dq * px
        f = notional * fee
        fills.append(Fill(k, int(ts[k]), side, dq, px, f))
        flow = (notional if side == "sell" else -notional) - f
        if side == "buy":
            cash -= notional + f
            units += dq
        else:
            cash += notional - f
            units -= dq
        if opening:
            if cur is None:
                cur = Trade(side="long" if side == "buy" else "short", entry_bar=k, entry_ts=int(ts[k]), entry_price=px, units=0.0)
            cur._in_units += dq
            cur._in_value += notional
            cur.entry_price = cur._in_value / cur._in_units
            cur.units = max(cur.units, abs(units))
        elif cur is not None:
            cur._out_units += dq
            cur._out_value += notional
            cur.exit_price = cur._out_value / cur._out_units
        if cur is not None:
            cur._cash_flow += flow
            cur.fees += f
        if not opening and cur is not None and units == 0.0:
            cur.exit_bar, cur.exit_ts = k, int(ts[k])
            cur.pnl = cur._cash_flow
            cur.return_pct = cur.pnl / cur._in_value if cur._in_value else 0.0
            trades.append(cur)
            cur = None

    held = 0.0  # target currently held
    for i in change.tolist():
        tgt = float(target[i])
        if tgt == held:
            continue
        held = tgt
        k = i + 1
        p = float(open_[k])
        if cash + units * p <= 0:
            break  # ruined: nothing left to trade
        # 1) leaving a side (to flat or to the other side): close the whole position first
        if units != 0.0 and (tgt == 0.0 or (tgt > 0) != (units > 0)):
            if units > 0:
                leg(k, "sell", units, p * (1.0 - slip), opening=False)
            else:
                leg(k, "buy", -units, p * (1.0 + slip), opening=False)
            units = 0.0
        # 2) move towards |tgt| of equity on tgt's side; buys/sells that open pay their fee
        #    out of the target notional, so a target of 1 never needs more than the equity
        if tgt != 0.0:
            equity = cash + units * p
            sgn = 1.0 if tgt > 0 else -1.0
            have = abs(units)
            want = abs(tgt) * equity / p
            if want > have:
                px = p * (1.0 + slip * sgn)
                dq = (abs(tgt) * equity - have * p) / (px * (1.0 + fee))
                if dq > 0:
                    leg(k, "buy" if sgn > 0 else "sell", dq, px, opening=True)
            elif want < have:
                px = p * (1.0 - slip * sgn)
                leg(k, "sell" if sgn > 0 else "buy", have - want, px, opening=False)
        fill_bars.append(k)
        cash_after.append(cash)
        units_after.append(units)
    # piecewise-constant cash/units -> equity curve at every close
    if fill_bars:
        seg = np.searchsorted(np.asarray(fill_bars), np.arange(n), side="right") - 1
        ca = np.concatenate(([float(config.cash)], cash_after))[seg + 1]
        ua = np.concatenate(([0.0], units_after))[seg + 1]
    else:
        ca = np.full(n, float(config.cash))
        ua = np.zeros(n)
    equity = ca + ua * close
    if cur is not None and n:
        last = float(close[-1])
        cur.open = True
        cur.exit_price = last
        cur.pnl = cur._cash_flow + units * last
        cur.return_pct = cur.pnl / cur._in_value if cur._in_value else 0.0
        trades.append(cur)
    return equity, ua, fills, trades


def run_backtest(strategy: Strategy, data: Any, config: BacktestConfig | None = None) -> BacktestResult:
    """Backtest ``strategy`` on a frame with columns ts, open, high, low, close, volume."""
    config = config or BacktestConfig()
    cols = {k: np.asarray(data[k], dtype=float) for k in ("open", "high", "low", "close", "volume")}
    ts = np.asarray(data["ts"], dtype=np.int64)
    frame = strategy.generate(cols)
    equity, units, fills, trades = simulate(ts, cols["open"], cols["close"], frame.target, config)
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
    return res


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
