"""Multi-symbol backtests with shared capital.

The same rules as the single-symbol engine (``engine.py``; docs/backtesting.md): a target is
decided on a bar's close and filled at the next bar's open, moved against us by the slippage,
with the fee on every fill. Here each symbol's target is a fraction of the WHOLE portfolio's
equity (valued at that open): at a fill bar every symbol whose target changed is moved to
``target x equity``; sells go first so the cash they free pays for the buys, and a buy that
opens spends ``value / (price x (1 + fee))`` units. Spot: cash never goes below zero — the buys
of a bar are scaled down together to the cash left after its sells (``simulate_portfolio``). Equity at every close is cash + sum(units x close). With one symbol and
long-only targets this is exactly the single-symbol simulator (a test checks it).

Strategies: each symbol runs its own copy of a single-symbol strategy, with an equal share of
equity (target / N), or ``rebalance`` (``RebalanceEvery``) holds weights from the optimiser
(``risk/optimize.py``) recomputed every ``period`` bars from the returns up to that close.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..protection import EXIT_REASONS
from .engine import BacktestConfig
from .metrics import compute_metrics
from .trades import Fill, FillTable, Trade, TradeTable


@dataclass
class PortfolioResult:
    symbols: list[str]
    config: BacktestConfig
    ts: np.ndarray
    equity: np.ndarray
    units: np.ndarray  # bars x symbols, held at each close
    targets: np.ndarray  # bars x symbols, as decided
    fills: dict[str, list[Fill]]
    cash: np.ndarray  # at each close; never below zero (spot)
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"symbols": self.symbols, "metrics": self.metrics,
                "fills": {s: len(f) for s, f in self.fills.items()},
                "final_units": {s: float(u) for s, u in zip(self.symbols, self.units[-1], strict=True)}
                if len(self.units) else {}}


@dataclass(frozen=True)
class PortfolioExits:
    """Protective exits inside bars: at ``bar``, symbol ``symbol`` is closed at ``price``
    (before slippage), after that bar's open fills; ``reason`` codes protection.EXIT_REASONS."""

    bar: np.ndarray
    symbol: np.ndarray
    price: np.ndarray
    reason: np.ndarray


def simulate_portfolio(ts: np.ndarray, opens: np.ndarray, closes: np.ndarray, targets: np.ndarray,
                       config: BacktestConfig, exits: PortfolioExits | None = None,
                       breaker: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict[int, list[Fill]], np.ndarray]:
    """(equity per bar, units per bar x symbol, fills per symbol index, cash per bar).

    Spot: cash never goes below zero. At a fill bar every order that frees cash goes first
    (long reductions, short opens), then the orders that cost cash (short covers, then long
    buys), each group scaled down together to the cash left, fees and slippage included. A
    symbol whose target did not change keeps its units (its drifted value is not re-priced), so
    a new target can want more than the cash: it gets what the cash pays for, never a loan.
    ``exits`` close whole positions inside their bars (``stops.guarded_targets``: the targets
    are then 0 after them until the strategy's own target changes). ``breaker``: bars x symbols,
    True where the drawdown breaker (not the strategy) changed the target: those fills' reason."""
    n, m = closes.shape
    targets = np.asarray(targets, dtype=float) * config.size
    fee, slip = config.fee, config.slippage_bps / 10_000.0
    prev = np.vstack([np.zeros((1, m)), targets[:-1]])
    changed = np.flatnonzero((targets != prev).any(axis=1))
    changed = changed[changed + 1 < n]
    inside: dict[int, list[tuple[int, float, str]]] = {}
    if exits is not None:
        for b, j, p, w in zip(exits.bar.tolist(), exits.symbol.tolist(), exits.price.tolist(), exits.reason.tolist(),
                              strict=True):
            inside.setdefault(b, []).append((j, p, EXIT_REASONS[w]))
    opening = set((changed + 1).tolist())
    cash, units = float(config.cash), np.zeros(m)
    fills: dict[int, list[Fill]] = {j: [] for j in range(m)}
    units_at = np.zeros((n, m))
    cash_at = np.full(n, float(config.cash))
    last = 0
    for k in sorted(opening | set(inside)):
        units_at[last:k], cash_at[last:k] = units, cash
        last = k
        if k in opening:
            i = k - 1
            px = opens[k]
            equity = cash + float(units @ px)
            if equity <= 0:
                break  # ruined
            want = targets[i] * equity / px
            move = [j for j in range(m) if targets[i, j] != prev[i, j]]
            by_breaker = {j: "breaker" for j in move if breaker is not None and breaker[i, j]}
            cash = _fill_bar(fills, k, int(ts[k]), cash, units, want, px, move, fee, slip, by_breaker)
        for j, p, reason in inside.get(k, ()):
            have = float(units[j])
            if have == 0.0:
                continue  # the cash paid for nothing at the entry
            side, price = ("sell", p * (1 - slip)) if have > 0 else ("buy", p * (1 + slip))
            f = abs(have) * price * fee
            cash += have * price - f
            units[j] = 0.0
            fills[j].append(Fill(k, int(ts[k]), side, abs(have), price, f, reason))
    units_at[last:], cash_at[last:] = units, cash
    equity = cash_at + (units_at * closes).sum(axis=1)
    return equity, units_at, fills, cash_at


def _fill_bar(fills: dict[int, list[Fill]], k: int, t: int, cash: float, units: np.ndarray, want: np.ndarray,
              px: np.ndarray, move: list[int], fee: float, slip: float, why: dict[int, str] | None = None) -> float:
    """Move ``units[j]`` towards ``want[j]`` for each j in ``move`` at bar ``k``'s opens ``px``
    (``units`` is updated in place); returns the cash after."""
    def fill(j: int, side: str, dq: float, price: float) -> None:
        nonlocal cash
        f = dq * price * fee
        cash += (dq * price if side == "sell" else -dq * price) - f
        units[j] += dq if side == "buy" else -dq
        fills[j].append(Fill(k, t, side, dq, price, f, (why or {}).get(j, "signal")))

    start = units.copy()  # a symbol either shrinks or grows (a flip: closes, then opens)
    # 1) orders that free cash: reduce or close longs, then open or grow shorts
    for j in move:
        p, have, w = float(px[j]), float(units[j]), float(want[j])
        if have > 0 and w < have:
            fill(j, "sell", have - max(w, 0.0), p * (1 - slip))
    for j in move:
        p, have, w = float(px[j]), float(units[j]), float(want[j])
        if w < 0 and w < start[j]:  # have is <= 0 here: the long (if any) is closed
            # the fee comes out of the target value, as when a long opens
            bp = p * (1 - slip)
            fill(j, "sell", (abs(w) - abs(have)) * p / (bp * (1 + fee)), bp)
    # 2) orders that cost cash: cover shorts, then buy longs, each group scaled to the cash left
    covers = {j: min(float(want[j]), 0.0) - float(units[j]) for j in move if units[j] < 0 and want[j] > units[j]}
    bp_of = {j: float(px[j]) * (1 + slip) for j in move}
    cost = sum(dq * bp_of[j] * (1 + fee) for j, dq in covers.items())
    scale = min(1.0, cash / cost) if cost > 0 else 1.0
    for j, dq in covers.items():
        if dq * scale > 0:
            fill(j, "buy", dq * scale, bp_of[j])
    # a long buy spends its value at the open, the fee out of it: (want - have) x open
    buys = {j: (float(want[j]) - max(float(units[j]), 0.0)) * float(px[j])
            for j in move if want[j] > 0 and want[j] > start[j] and units[j] >= 0}
    spend = sum(buys.values())
    scale = min(1.0, max(cash, 0.0) / spend) if spend > 0 else 1.0
    for j, value in buys.items():
        if value * scale > 0:
            fill(j, "buy", value * scale / (bp_of[j] * (1 + fee)), bp_of[j])
    if -1e-9 * (abs(cash) + 1.0) < cash < 0:
        cash = 0.0  # rounding of a buy that spent all the cash, not a loan
    return cash


@dataclass(frozen=True)
class RebalanceEvery:
    """Hold optimiser weights, recomputed every ``period`` bars from the last ``lookback`` returns."""

    method: str = "risk_parity"
    period: int = 24
    lookback: int = 120

    def targets(self, closes: np.ndarray, bars_per_year: float = 365.25 * 24) -> np.ndarray:
        from ..risk.optimize import allocate

        n, m = closes.shape
        out = np.zeros((n, m))
        rets = closes[1:] / closes[:-1] - 1.0
        w = np.zeros(m)
        for i in range(n):
            if i >= self.lookback and (i - self.lookback) % self.period == 0:
                # returns known at bar i's close: rets[:i] (rets[i-1] is close[i] / close[i-1] - 1)
                w = allocate(self.method, [str(j) for j in range(m)], rets[i - self.lookback:i],
                             bars_per_year=bars_per_year).weights
            out[i] = w
        return out


@dataclass(frozen=True)
class _Guard:
    """What the portfolio's protective exits need: each symbol's bars and raw change bars."""

    highs: np.ndarray
    lows: np.ndarray
    raw_at: list[np.ndarray]

    def apply(self, opens: np.ndarray, targets: np.ndarray, config: BacktestConfig) -> tuple[np.ndarray, PortfolioExits | None]:
        """The targets with each exit's flat span, and the exits (None without protection)."""
        if config.protection is None:
            return targets, None
        from .stops import guarded_targets

        cols, bars, syms, prices, reasons = [], [], [], [], []
        for j in range(targets.shape[1]):
            g = guarded_targets(opens[:, j], self.highs[:, j], self.lows[:, j], targets[:, j], self.raw_at[j],
                                config.slippage_bps, config.protection)
            cols.append(g.target)
            bars.append(g.bar)
            syms.append(np.full(len(g.bar), j))
            prices.append(g.price)
            reasons.append(g.reason)
        exits = PortfolioExits(np.concatenate(bars), np.concatenate(syms), np.concatenate(prices),
                               np.concatenate(reasons).astype(np.int8))
        return np.column_stack(cols), exits


def portfolio_risk(risk: Any, ts: np.ndarray, opens: np.ndarray, closes: np.ndarray, targets: np.ndarray,
                   config: BacktestConfig, guard: _Guard | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Sizing per symbol, then the drawdown breaker on the portfolio's equity (the rules of
    ``risk/backtest.py``, on the shared-capital simulator, protective exits included)."""
    from ..risk.backtest import halted, sized_targets, trip_bar

    t = np.array(targets, dtype=float)
    if risk.sizing is not None:
        t = np.column_stack([sized_targets(risk.sizing, t[:, j], closes[:, j], ts) for j in range(t.shape[1])])
    info: dict[str, Any] = {"halted_at_bar": None, "halted_at_ts": None}
    if risk.max_drawdown_pct is not None and len(ts):
        guarded, exits = guard.apply(opens, t, config) if guard is not None else (t, None)
        k = trip_bar(simulate_portfolio(ts, opens, closes, guarded, config, exits)[0], risk.max_drawdown_pct)
        if k is not None:
            t = np.column_stack([halted(t[:, j], k, risk.flatten) for j in range(t.shape[1])])
            info = {"halted_at_bar": k, "halted_at_ts": int(ts[k])}
    return t, risk.describe() | info


def run_portfolio(symbols: list[str], frames: dict[str, Any], config: BacktestConfig, *,
                  strategy: Any = None, rebalance: RebalanceEvery | None = None, risk: Any = None) -> PortfolioResult:
    """Backtest several symbols sharing ``config.cash``, on the bar times they all have.
    ``strategy(symbol)`` makes one single-symbol strategy per symbol; or ``rebalance``. ``risk``
    (``risk/backtest.py``'s BacktestRisk) sizes the targets and applies the drawdown breaker;
    ``config.protection`` places protective exits on every entry (flat after one until that
    symbol's own target changes)."""
    from ..risk.metrics import align_closes
    from ..strategies.base import target_changes
    from .engine import with_sizing_stop

    config, risk = with_sizing_stop(config, risk)
    ts, closes_by = align_closes(frames)
    n = len(ts)
    cols: dict[str, dict[str, np.ndarray]] = {}
    for s in symbols:
        df = frames[s]
        idx = np.searchsorted(np.asarray(df["ts"], dtype=np.int64), ts)
        cols[s] = {k: np.asarray(df[k], dtype=float)[idx] for k in ("open", "high", "low", "close", "volume")}
    opens = np.column_stack([cols[s]["open"] for s in symbols])
    closes = np.column_stack([cols[s]["close"] for s in symbols])
    if rebalance is not None:
        from ..risk.metrics import bars_per_year

        targets = rebalance.targets(closes, bars_per_year(ts) or 365.25 * 24)
    else:
        # each bar's time too: the `ml` strategy's features and its training-range check need it
        targets = np.column_stack([np.asarray(strategy(s).generate(cols[s] | {"ts": ts}).target, dtype=float)
                                   / len(symbols) for s in symbols])
    guard = _Guard(np.column_stack([cols[s]["high"] for s in symbols]), np.column_stack([cols[s]["low"] for s in symbols]),
                   [target_changes(targets[:, j])[0] for j in range(len(symbols))])  # before sizing
    risk_info, breaker = None, None
    if risk is not None:
        before = targets
        targets, risk_info = portfolio_risk(risk, ts, opens, closes, targets, config, guard)
        if risk_info.get("halted_at_bar") is not None:
            sized = portfolio_risk(replace(risk, max_drawdown_pct=None), ts, opens, closes, before, config)[0]
            breaker = _changed(targets) & ~_changed(sized)
    guarded, exits = guard.apply(opens, targets, config)
    equity, units, fills, cash = simulate_portfolio(ts, opens, closes, guarded, config, exits, breaker)
    res = PortfolioResult(symbols, config, ts, equity, units, targets, {s: fills[j] for j, s in enumerate(symbols)},
                          cash)
    every = [f for j in range(len(symbols)) for f in fills[j]]
    trades = [t for j in range(len(symbols)) for t in round_trips(fills[j], ts, float(closes[-1, j]) if n else 0.0,
                                                                   config.fee)]
    table = TradeTable.from_trades(sorted(trades, key=lambda t: t.entry_bar))
    view = _MetricsView(equity, ts, config, FillTable.from_fills(every), np.abs(units).sum(axis=1), table)
    res.metrics = compute_metrics(view)
    res.metrics["min_cash"] = float(cash.min()) if len(cash) else float(config.cash)
    res.metrics["exit_reasons"] = table.reason_counts()
    if config.protection is not None:
        from .engine import protection_report

        res.metrics["protection"] = protection_report(config.protection, False)
    if risk_info is not None:
        res.metrics["risk"] = risk_info
    return res


def _changed(targets: np.ndarray) -> np.ndarray:
    """Bars x symbols: True where a symbol's target changes on that bar's decision."""
    return targets != np.vstack([np.zeros((1, targets.shape[1])), targets[:-1]])


def round_trips(fills: list[Fill], ts: np.ndarray, last_close: float, fee: float) -> list[Trade]:
    """One symbol's round trips (flat to flat) from its fills, booked as the single-symbol
    simulator books them; a position still open is marked at ``last_close``."""
    from .simulate import _Book

    book = _Book(ts, fee, 0.0)
    for f in fills:
        grows = (f.side == "buy") == (book.units >= 0) if book.units != 0 else True
        book.reason = f.reason
        book.leg(f.bar, f.side, f.units, f.price, opening=grows)
    book.mark_open(last_close)
    return book.trades


@dataclass
class _MetricsView:
    """What ``compute_metrics`` reads: the portfolio's equity, every symbol's fills and round trips."""

    equity: np.ndarray
    ts: np.ndarray
    config: BacktestConfig
    fills: FillTable
    position: np.ndarray
    trades: TradeTable
