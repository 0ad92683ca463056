"""Trading the out-of-fold predictions the way the backtest fills, and a random baseline that
could win: random entries with the model's own number of trades and holding times.

Fill rule (the backtest's): a position decided on row i's close fills at row i+1's open; a
position still held after a fold's last row is closed at that row's close. Every entry and every
exit pays ``fee``. A fold is then a list of trades (entry index, exit index) into the fold's
*fill prices* ``P = [open_0 .. open_{n-1}, close_{n-1}]``: a trade decided on row i enters at
``P[i+1]``; the trade's growth is ``P[exit] / P[entry] * (1 - fee)^2``.

The baseline keeps what drives cost and exposure fixed -- the number of trades and each one's
holding time, per fold -- and puts them at random places in the fold (in random order, never
overlapping, at least one bar flat between two), ``draws`` times. Where the model falls in that
distribution is a one-sided p-value: (1 + draws at least as good) / (1 + draws).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Segment:
    """One CV fold's test rows: the model's positions (decided at each close) and the bars."""

    position: np.ndarray  # 0/1 per row, decided on the row's close
    open: np.ndarray
    close: np.ndarray


def fill_prices(seg: Segment) -> np.ndarray:
    return np.concatenate((np.asarray(seg.open, dtype=float), np.asarray(seg.close[-1:], dtype=float)))


def trades_of(position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(entry, exit) indices into the fill prices of each long run of ``position``."""
    pos = (np.asarray(position) > 0).astype(np.int8)
    d = np.diff(np.concatenate(([0], pos, [0])))
    starts = np.flatnonzero(d == 1)  # first row held -> fills at the next open
    ends = np.flatnonzero(d == -1)  # first row flat again -> fills at the next open (or the last close)
    return starts + 1, np.minimum(ends + 1, len(pos))


def _drop_unfilled(entry: np.ndarray, exit_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = exit_ > entry  # a position decided on the last row never fills
    return entry[keep], exit_[keep]


def log_growth(seg: Segment, fee: float) -> tuple[float, np.ndarray]:
    """(log growth of trading ``seg.position``, the holding time of each trade in bars)."""
    entry, exit_ = _drop_unfilled(*trades_of(seg.position))
    lp = np.log(fill_prices(seg))
    g = float(np.sum(lp[exit_] - lp[entry])) + 2 * len(entry) * math.log1p(-fee)
    return g, exit_ - entry


def random_log_growth(seg: Segment, holds: np.ndarray, fee: float, rng: np.random.Generator, draws: int) -> np.ndarray:
    """Log growth of ``draws`` random placements of trades with these holding times."""
    k = len(holds)
    if k == 0:
        return np.zeros(draws)
    lp = np.log(fill_prices(seg))
    n = len(lp) - 1  # fill indices 1..n
    slack = (n - 1) - int(holds.sum()) - (k - 1)
    if slack < 0:  # cannot happen for the model's own trades; guard a hand-made call
        raise ValueError("the holding times do not fit in the segment")
    out = np.empty(draws)
    chunk = max(1, 2_000_000 // k)  # draws per pass: bounded memory whatever the number of trades
    for lo in range(0, draws, chunk):
        m = min(chunk, draws - lo)
        h = rng.permuted(np.broadcast_to(holds, (m, k)), axis=1)  # the trades in a random order
        # k sorted uniform offsets in 0..slack without a sort: normalised sums of exponential gaps
        c = np.cumsum(rng.exponential(size=(m, k + 1)), axis=1)
        u = np.minimum((c[:, :k] / c[:, k:] * (slack + 1)).astype(np.int64), slack)
        entry = 1 + u + (np.cumsum(h, axis=1) - h) + np.arange(k)  # one flat bar at least between trades
        out[lo:lo + m] = (lp[entry + h] - lp[entry]).sum(axis=1)
    return out + 2 * k * math.log1p(-fee)


def buy_and_hold_log_growth(seg: Segment, fee: float) -> float:
    """Bought at the first fill (row 0's decision, row 1's open), sold at the last close."""
    lp = np.log(fill_prices(seg))
    if len(lp) < 3:
        return 0.0
    return float(lp[-1] - lp[1]) + 2 * math.log1p(-fee)


def oos_figures(segments: list[Segment], fee: float, enter: float, exit_: float, seed: int = 19,
                draws: int = 400) -> dict[str, Any]:
    """The model's out-of-fold trading, buy-and-hold, and the turnover-matched random baseline."""
    rng = np.random.default_rng(seed)
    model = hold = 0.0
    rand = np.zeros(draws)
    bars = trades = held = 0
    for seg in segments:
        g, holds = log_growth(seg, fee)
        model += g
        hold += buy_and_hold_log_growth(seg, fee)
        rand += random_log_growth(seg, holds, fee, rng, draws)
        bars += len(seg.position)
        trades += len(holds)
        held += int(holds.sum())
    total = math.expm1(model)
    r = np.expm1(rand)
    return {
        "total_return": total, "buy_and_hold": math.expm1(hold), "trades": trades,
        "mean_hold_bars": held / trades if trades else None, "exposure": held / bars if bars else 0.0,
        "random_entries": {
            "draws": draws, "mean": float(r.mean()), "p05": float(np.quantile(r, 0.05)),
            "median": float(np.median(r)), "p95": float(np.quantile(r, 0.95)),
            # ties count against the model: a model that cannot beat any placement gets p = 1
            "p_value": float((1 + np.count_nonzero(rand >= model - 1e-12)) / (1 + draws)),
        },
        "fill": "next bar's open (as the backtest); a position held at a fold's end is closed at its last close",
        "bars": bars, "fee": fee, "enter": enter, "exit": exit_,
    }
