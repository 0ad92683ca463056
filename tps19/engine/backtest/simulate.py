"""The fill simulator: a target vector in, fills, trades, positions and equity out.

Rules (docs/backtesting.md): the target decided on bar i's close fills at bar i+1's open (a
decision on the last bar never fills); changing side or going flat closes the whole position
first; opening spends ``|target| x equity`` fees included; shrinking sells the excess; fill
prices move against the order by the slippage; fees are ``fee x notional`` on every fill.

Two paths give the same fills:

* every sizing rule above is proportional to equity, so when each target change only closes a
  whole position and/or opens one from flat (the built-in strategies: targets in {-a, 0, a}),
  a round trip multiplies equity by a factor that depends on prices alone. The fast path
  computes all trades at once with numpy (a running product of those factors);
* any other target vector (resizing a position on the same side, or a ruined account) runs
  the step-by-step loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..protection import END, EXIT_REASONS, SIGNAL
from .config import BacktestConfig
from .trades import Fill, FillTable, Trade, TradeTable


@dataclass(frozen=True)
class SimConfig:
    """What the simulator needs of a BacktestConfig."""

    cash: float
    fee: float
    slippage_bps: float
    size: float


@dataclass(frozen=True)
class Changes:
    """The target changes that fill: decided at ``bar - 1``, filled at ``bar``'s open ``price``."""

    bar: np.ndarray
    target: np.ndarray  # held target after the change (size applied)
    before: np.ndarray  # held target before it
    price: np.ndarray  # the open, or a protective exit's level (before slippage)
    reason: np.ndarray | None = None  # int8 code (protection.EXIT_REASONS) of the position it closes; None: all signal


def target_changes(open_: np.ndarray, target: np.ndarray, size: float) -> Changes:
    """The fills of a dense target vector (one held target per bar)."""
    tgt = np.asarray(target, dtype=float)
    at = np.flatnonzero(tgt != np.concatenate(([0.0], tgt[:-1])))
    return sparse_changes(open_, len(tgt), at, tgt[at], size)


def sparse_changes(open_: np.ndarray, n: int, at: np.ndarray, held: np.ndarray, size: float) -> Changes:
    """The fills of the held target's changes: new value ``held[j]`` decided on bar ``at[j]``."""
    at = np.asarray(at, dtype=np.int64)
    new = np.asarray(held, dtype=float) * size
    if not np.isfinite(new).all():
        raise ValueError("the target vector holds NaN or infinite values")
    keep = (new != np.concatenate(([0.0], new[:-1]))) & (at + 1 < n)  # a decision on the last bar never fills
    at, new = at[keep], new[keep]
    before = np.concatenate(([0.0], new[:-1]))
    return Changes(at + 1, new, before, np.asarray(open_, dtype=float)[at + 1])


def simulate_arrays(ts: np.ndarray, open_: np.ndarray, close: np.ndarray, target: np.ndarray,
                    config: SimConfig, step_by_step: bool = False) -> tuple[np.ndarray, np.ndarray, FillTable, TradeTable]:
    """(equity at every close, units held at every close, fills, trades). ``step_by_step``
    forces the loop (the tests hold both paths to the same results)."""
    return simulate_changes(ts, close, target_changes(open_, target, config.size), config, step_by_step)


def simulate(
    ts: np.ndarray,
    open_: np.ndarray,
    close: np.ndarray,
    target: np.ndarray,
    config: BacktestConfig,
) -> tuple[np.ndarray, np.ndarray, FillTable, TradeTable]:
    """Fill target changes at the next open. Returns (equity, units per bar, fills, trades).

    ``target`` is the wanted position after each bar's close as a fraction of equity (scaled by
    ``config.size``); fills and trades are column tables (sequences of Fill / Trade)."""
    sim = SimConfig(config.cash, config.fee, config.slippage_bps, config.size)
    return simulate_arrays(np.asarray(ts, dtype=np.int64), np.asarray(open_, dtype=float),
                           np.asarray(close, dtype=float), target, sim)


def simulate_changes(ts: np.ndarray, close: np.ndarray, ch: Changes, config: SimConfig,
                     step_by_step: bool = False) -> tuple[np.ndarray, np.ndarray, FillTable, TradeTable]:
    same_side = (ch.before != 0) & (ch.target != 0) & (np.sign(ch.before) == np.sign(ch.target))
    out = None if step_by_step or same_side.any() else _round_trips(ts, close, ch, config)
    if out is None:
        out = _step_by_step(ts, close, ch, config)
    fill_bars, cash_after, units_after, fills, trades = out
    # cash and units are constant between fills: spread them over the bars, in place (a 20M-bar
    # run holds its data, the position and the equity, and one temporary)
    lengths = np.diff(np.concatenate(([0], fill_bars, [len(close)])))
    position = np.repeat(np.concatenate(([0.0], units_after)), lengths)
    equity = position * np.asarray(close, dtype=float)
    equity += np.repeat(np.concatenate(([float(config.cash)], cash_after)), lengths)
    return equity, position, fills, trades


_Out = tuple[np.ndarray, np.ndarray, np.ndarray, FillTable, TradeTable]


def _round_trips(ts: np.ndarray, close: np.ndarray, ch: Changes, config: SimConfig) -> _Out | None:
    """All changes at once when each one closes a whole position and/or opens one from flat.
    None when the account is ruined on the way (the loop then reproduces where it stops)."""
    fee, slip = config.fee, config.slippage_bps / 10_000.0
    if len(ch.bar) == 0:
        return _step_by_step(ts, close, ch, config)
    opens = ch.target != 0.0
    s = np.sign(ch.target)
    a = np.abs(ch.target)
    px_in = ch.price * (1.0 + slip * s)
    per_equity = np.where(opens, a / (px_in * (1.0 + fee)), 0.0)  # units bought per unit of equity
    cash_left = np.where(s > 0, 1.0 - a, 1.0 + a * (1.0 - fee) / (1.0 + fee))  # cash per unit of equity
    # each open is closed by the next change, at that change's price
    k = len(ch.bar)
    nxt = ch.price[1:]
    px_out = nxt * (1.0 - slip * s[:-1])
    growth = np.where(s[:-1] > 0, cash_left[:-1] + per_equity[:-1] * px_out * (1.0 - fee),
                      cash_left[:-1] - per_equity[:-1] * px_out * (1.0 + fee))
    growth = np.where(opens[:-1], growth, 1.0)
    mark = cash_left[:-1] + s[:-1] * per_equity[:-1] * nxt  # equity per unit, at the next open, before closing
    if k and ((opens[:-1] & (mark <= 0)).any() or (growth <= 0).any()):
        return None
    equity = float(config.cash) * np.concatenate(([1.0], np.cumprod(growth)))  # after each change's close leg
    units = per_equity * equity
    cash_after = np.where(opens, cash_left * equity, equity)
    units_after = s * units
    fills = _round_trip_fills(ts, ch, s, units, px_in, px_out, fee)
    trades = _round_trip_trades(ts, close, ch, s, units, px_in, px_out, equity, cash_after, fee)
    return ch.bar, cash_after, units_after, fills, trades


def _round_trip_fills(ts: np.ndarray, ch: Changes, s: np.ndarray, units: np.ndarray, px_in: np.ndarray,
                      px_out: np.ndarray, fee: float) -> FillTable:
    """Per change: the closing fill (if a position was held), then the opening one (if any)."""
    k = len(ch.bar)
    closing = ch.before != 0.0
    close_units = np.concatenate(([0.0], units[:-1]))
    close_px = np.concatenate(([0.0], px_out))
    close_side = -np.concatenate(([0.0], s[:-1]))
    # slot 2j: the close leg of change j, slot 2j+1: its open leg
    present = np.empty(2 * k, dtype=bool)
    present[0::2], present[1::2] = closing, ch.target != 0.0
    bar = np.repeat(ch.bar, 2)[present]
    side = np.empty(2 * k)
    side[0::2], side[1::2] = close_side, s
    qty = np.empty(2 * k)
    qty[0::2], qty[1::2] = close_units, units
    price = np.empty(2 * k)
    price[0::2], price[1::2] = close_px, px_in
    qty, price = qty[present], price[present]
    return FillTable(bar, np.asarray(ts)[bar], side[present].astype(np.int8), qty, price, qty * price * fee)


def _round_trip_trades(ts: np.ndarray, close: np.ndarray, ch: Changes, s: np.ndarray, units: np.ndarray,
                       px_in: np.ndarray, px_out: np.ndarray, equity: np.ndarray, cash_after: np.ndarray,
                       fee: float) -> TradeTable:
    ts = np.asarray(ts)
    j = np.flatnonzero(ch.target != 0.0)  # the changes that open a trade
    k = len(ch.bar)
    is_open = j == k - 1  # only the last change's position is never closed
    jc = np.minimum(j, max(k - 2, 0))  # the opening change's index into px_out
    after = np.minimum(j + 1, k - 1)  # the closing change
    last = float(close[-1])
    entry_value = units[j] * px_in[j]
    exit_price = np.where(is_open, last, px_out[jc] if len(px_out) else last)
    exit_bar = np.where(is_open, -1, ch.bar[after])
    pnl = np.where(is_open, cash_after[j] - equity[j] + s[j] * units[j] * last, equity[after] - equity[j])
    fees = entry_value * fee + np.where(is_open, 0.0, units[j] * exit_price * fee)
    reason = (ch.reason[after] if ch.reason is not None else np.full(len(j), SIGNAL, dtype=np.int8))
    return TradeTable(
        s[j].astype(np.int8), ch.bar[j], ts[ch.bar[j]], px_in[j], units[j], exit_bar,
        np.where(is_open, -1, ts[ch.bar[after]]), exit_price, pnl, pnl / entry_value, fees, is_open,
        np.where(is_open, END, reason).astype(np.int8),
    )


def _step_by_step(ts: np.ndarray, close: np.ndarray, ch: Changes, config: SimConfig) -> _Out:
    """Any target vector, one change at a time (resizing positions, ruin)."""
    book = _Book(ts, config.fee, float(config.cash))
    slip = config.slippage_bps / 10_000.0
    fill_bars: list[int] = []
    cash_after: list[float] = []
    units_after: list[float] = []
    reasons = ch.reason.tolist() if ch.reason is not None else [SIGNAL] * len(ch.bar)
    for k, p, tgt, why in zip(ch.bar.tolist(), ch.price.tolist(), ch.target.tolist(), reasons, strict=True):
        if book.cash + book.units * p <= 0:
            break  # ruined: nothing left to trade
        book.reason = EXIT_REASONS[why]
        book.move(k, p, tgt, slip)
        fill_bars.append(k)
        cash_after.append(book.cash)
        units_after.append(book.units)
    book.mark_open(float(close[-1]) if len(close) else 0.0)
    return (np.asarray(fill_bars, dtype=np.int64), np.asarray(cash_after, dtype=float),
            np.asarray(units_after, dtype=float), FillTable.from_fills(book.fills), TradeTable.from_trades(book.trades))


class _Book:
    """Cash, units and the trade being built, for the step-by-step path."""

    def __init__(self, ts: np.ndarray, fee: float, cash: float) -> None:
        self.ts, self.fee, self.cash, self.units = ts, fee, cash, 0.0
        self.fills: list[Fill] = []
        self.trades: list[Trade] = []
        self.cur: Trade | None = None
        self.reason = EXIT_REASONS[SIGNAL]  # why the change being filled closes a position

    def move(self, k: int, p: float, tgt: float, slip: float) -> None:
        units = self.units
        # 1) leaving a side (to flat or to the other side): close the whole position first
        if units != 0.0 and (tgt == 0.0 or (tgt > 0) != (units > 0)):
            if units > 0:
                self.leg(k, "sell", units, p * (1.0 - slip), opening=False)
            else:
                self.leg(k, "buy", -units, p * (1.0 + slip), opening=False)
            self.units = units = 0.0
        if tgt == 0.0:
            return
        # 2) move towards |tgt| of equity on tgt's side; opening pays its fee out of the target
        #    notional, so a target of 1 never needs more than the equity
        equity = self.cash + units * p
        sgn = 1.0 if tgt > 0 else -1.0
        have, want = abs(units), abs(tgt) * equity / p
        if want > have:
            px = p * (1.0 + slip * sgn)
            dq = (abs(tgt) * equity - have * p) / (px * (1.0 + self.fee))
            if dq > 0:
                self.leg(k, "buy" if sgn > 0 else "sell", dq, px, opening=True)
        elif want < have:
            self.leg(k, "sell" if sgn > 0 else "buy", have - want, p * (1.0 - slip * sgn), opening=False)

    def leg(self, k: int, side: str, dq: float, px: float, opening: bool) -> None:
        notional = dq * px
        f = notional * self.fee
        ts = int(self.ts[k])
        self.fills.append(Fill(k, ts, side, dq, px, f))
        flow = (notional if side == "sell" else -notional) - f
        self.cash += flow
        self.units += dq if side == "buy" else -dq
        cur = self.cur
        if opening:
            if cur is None:
                cur = self.cur = Trade("long" if side == "buy" else "short", k, ts, px, 0.0)
            cur._in_units += dq
            cur._in_value += notional
            cur.entry_price = cur._in_value / cur._in_units
            cur.units = max(cur.units, abs(self.units))
        elif cur is not None:
            cur._out_units += dq
            cur._out_value += notional
            cur.exit_price = cur._out_value / cur._out_units
        if cur is None:
            return
        cur._cash_flow += flow
        cur.fees += f
        if not opening and self.units == 0.0:
            cur.exit_bar, cur.exit_ts, cur.exit_reason = k, ts, self.reason
            self.close_trade(cur._cash_flow)

    def close_trade(self, pnl: float, open_: bool = False) -> None:
        cur = self.cur
        assert cur is not None
        cur.pnl, cur.open = pnl, open_
        cur.return_pct = pnl / cur._in_value if cur._in_value else 0.0
        self.trades.append(cur)
        self.cur = None

    def mark_open(self, last: float) -> None:
        """A position still open at the end: marked at the last close, no exit fee."""
        if self.cur is not None:
            self.cur.exit_price, self.cur.exit_reason = last, EXIT_REASONS[END]
            self.close_trade(self.cur._cash_flow + self.units * last, open_=True)
