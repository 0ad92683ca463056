"""Indicators with a vectorised form and a scalar form that agree bit for bit.

The backtest computes them over whole arrays with numpy; live trading computes one value per
closed bar. Both must give the *same* floats, or a crossover can flip between the two paths.
So every window sum is evaluated in one fixed order, ``((x0 + x1) + x2) + ...``, in both
forms (never a float running sum that adds and removes, whose rounding depends on history), and
recursive indicators (Wilder's RSI) use the same scalar formula in both paths.

Which of two moving averages is above the other is decided *exactly* (``compare_means``): a
float sum of ten 0.1s is 0.09999999999999999 per bar and of twenty 0.10000000000000002, so
rounded averages would see a cross on every flat stretch. The exact sums come from integer
running sums (every float is an integer multiple of the smallest value's ulp), so the cost does
not grow with the window length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._exact import compare_means as compare_means
from ._exact import compare_means_last as compare_means_last
from ._exact import sum_at as sum_at


def window_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of each length-``n`` window ending at i (NaN before n-1), fixed left-to-right order."""
    x = np.asarray(x, dtype=float)
    out = np.full(len(x), np.nan)
    m = len(x) - n + 1
    if n < 1 or m <= 0:
        return out
    acc = x[0:m].copy()
    for k in range(1, n):
        acc += x[k : k + m]
    out[n - 1 :] = acc
    return out


def sma(x: np.ndarray, n: int) -> np.ndarray:
    return window_sum(x, n) / n


def rolling_std(x: np.ndarray, n: int) -> np.ndarray:
    """Population standard deviation (ddof=0) of each window, two-pass, fixed order."""
    x = np.asarray(x, dtype=float)
    out = np.full(len(x), np.nan)
    m = len(x) - n + 1
    if n < 1 or m <= 0:
        return out
    mean = window_sum(x, n)[n - 1 :] / n
    d = x[0:m] - mean
    acc = d * d
    for k in range(1, n):
        d = x[k : k + m] - mean
        acc += d * d
    out[n - 1 :] = np.sqrt(acc / n)
    return out


def _rolling(x: np.ndarray, n: int, reduce: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    out = np.full(len(x), np.nan)
    if n < 1 or len(x) < n:
        return out
    out[n - 1 :] = getattr(np.lib.stride_tricks.sliding_window_view(x, n), reduce)(axis=1)
    return out


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    return _rolling(x, n, "max")


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    return _rolling(x, n, "min")


def shift(x: np.ndarray, k: int = 1) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


# --- scalar forms -------------------------------------------------------------------------


def seq_sum(values: Sequence[float]) -> float:
    it = iter(values)
    s = float(next(it))
    for v in it:
        s += v
    return s


def sma_last(values: Sequence[float], n: int) -> float:
    if len(values) < n:
        return math.nan
    return seq_sum(values[len(values) - n :]) / n


def std_last(values: Sequence[float], n: int) -> float:
    if len(values) < n:
        return math.nan
    w = values[len(values) - n :]
    mean = seq_sum(w) / n
    acc = (w[0] - mean) * (w[0] - mean)
    for v in w[1:]:
        d = v - mean
        acc += d * d
    return math.sqrt(acc / n)


class WilderRSI:
    """Wilder's RSI, one bar at a time. ``rsi_array`` runs exactly this over an array."""

    __slots__ = ("n", "prev", "count", "gain_sum", "loss_sum", "avg_gain", "avg_loss")

    def __init__(self, n: int) -> None:
        self.n = n
        self.prev: float | None = None
        self.count = 0
        self.gain_sum = 0.0
        self.loss_sum = 0.0
        self.avg_gain = math.nan
        self.avg_loss = math.nan

    def update(self, close: float) -> float:
        if self.prev is None or math.isnan(close):
            if self.prev is None:
                self.prev = close
            return math.nan
        change = close - self.prev
        self.prev = close
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        n = self.n
        self.count += 1
        if self.count < n:
            self.gain_sum += gain
            self.loss_sum += loss
            return math.nan
        if self.count == n:
            self.avg_gain = (self.gain_sum + gain) / n
            self.avg_loss = (self.loss_sum + loss) / n
        else:
            self.avg_gain = (self.avg_gain * (n - 1) + gain) / n
            self.avg_loss = (self.avg_loss * (n - 1) + loss) / n
        if self.avg_loss == 0.0:
            return 100.0 if self.avg_gain > 0.0 else 50.0
        rs = self.avg_gain / self.avg_loss
        return 100.0 - 100.0 / (1.0 + rs)


def rsi_array(close: np.ndarray, n: int) -> np.ndarray:
    r = WilderRSI(n)
    return np.array([r.update(c) for c in np.asarray(close, dtype=float).tolist()], dtype=float)
