"""Indicators with a vectorised form and a scalar form that agree bit for bit, O(bars) whatever
the window length.

The backtest computes them over whole arrays with numpy; live trading computes one value per
closed bar. Both must give the *same* floats, or a crossover can flip between the two paths.
So window sums are *exact*: every float is an integer multiple of the smallest value's ulp, so a
window's sum, and ``n * sum(x**2) - sum(x)**2`` for its deviation, are integers, taken from
integer running sums in numpy (``_wide``: 20-bit limbs in int64) and from Python integers on the
live path, then rounded to a float once (correctly, ties to even). Nothing depends on the order
of additions or on history, and the cost does not grow with the window. Rolling highs and lows
use the van Herk/Gil-Werman block method (three passes whatever the window). Recursive
indicators (Wilder's RSI) use the same scalar formula in both paths.

Which of two moving averages is above the other is decided *exactly* (``compare_means``): a
float sum of ten 0.1s is 0.09999999999999999 per bar and of twenty 0.10000000000000002, so
rounded averages would see a cross on every flat stretch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._exact import compare_means as compare_means
from ._exact import compare_means_last as compare_means_last
from . import _wide


_CHUNK = 1 << 15  # windows per pass: the int64 limbs stay in cache, and one scale fits a chunk's range


def _exact_window(w: Sequence[float], squares: bool) -> tuple[float, float]:
    """Python integers: the window's sum and ``n * sum(x**2) - sum(x)**2``, each rounded once."""
    ratios = [float(v).as_integer_ratio() for v in w]  # denominators are powers of two
    den = max(d for _, d in ratios)
    ints = [num * (den // d) for num, d in ratios]
    total = sum(ints)
    if not squares:
        return total / den, math.nan  # int / int: correctly rounded
    return total / den, (len(ints) * sum(i * i for i in ints) - total * total) / (den * den)


def _window_stats(x: np.ndarray, n: int, squares: bool) -> tuple[np.ndarray, np.ndarray]:
    """Exactly rounded window sums (and ``n * sum(x**2) - sum(x)**2``) ending at every bar; NaN
    where the window is incomplete or holds a non-finite value."""
    x = np.asarray(x, dtype=float)
    size = len(x)
    total = np.full(size, np.nan)
    dev = np.full(size, np.nan) if squares else total
    if n < 1 or size < n:
        return total, dev
    for start in range(n - 1, size, _CHUNK):
        stop = min(size, start + _CHUNK)
        seg = x[start - n + 1 : stop]
        finite = np.isfinite(seg)
        all_finite = bool(finite.all())
        if not all_finite:
            seg = np.where(finite, seg, 0.0)
        sc = _wide.scale(seg) if n <= _wide._MAX_WINDOW else None
        if sc is None:  # extreme ranges: Python integers (slow, rare)
            rows = [_exact_window(seg[i - n + 1 : i + 1].tolist(), squares) for i in range(n - 1, len(seg))]
            t = np.array([r[0] for r in rows])
            d = np.array([r[1] for r in rows]) if squares else None
        else:
            t, d = _wide.window_stats(seg, n, *sc, squares)
        if not all_finite:
            bad = _wide.window(_wide.running((~finite).astype(np.int64)), n) > 0
            t[bad] = np.nan
            if d is not None:
                d[bad] = np.nan
        total[start:stop] = t
        if squares and d is not None:
            dev[start:stop] = d
    return total, dev


def window_sum(x: np.ndarray, n: int) -> np.ndarray:
    """Sum of each length-``n`` window ending at i (NaN before n-1): the exact sum, rounded once."""
    return _window_stats(x, n, False)[0]


def sma(x: np.ndarray, n: int) -> np.ndarray:
    out = window_sum(x, n)
    out /= n
    return out


def sma_at(x: np.ndarray, n: int, at: np.ndarray) -> np.ndarray:
    """``sma(x, n)[at]`` for a strategy's events (see ``means_at``)."""
    return means_at(x, (n,), at)[0]


def means_at(x: np.ndarray, lengths: Sequence[int], at: np.ndarray) -> list[np.ndarray]:
    """``sma(x, n)[at]`` for each n of ``lengths``: the integer running sums are taken chunk by
    chunk (as ``sma``) and shared by the lengths, and only the windows ending at ``at`` are
    rounded."""
    x = np.asarray(x, dtype=float)
    at = np.asarray(at, dtype=np.int64)
    outs = [np.full(len(at), np.nan) for _ in lengths]
    if not len(at) or not lengths or min(lengths) < 1:
        return outs
    m = max(lengths)
    idx = np.flatnonzero((at >= 0) & (at < len(x)))
    idx = idx[np.argsort(at[idx], kind="stable")]
    pos = at[idx]
    for start in range(0, len(x), _CHUNK):
        stop = min(len(x), start + _CHUNK)
        lo, hi = np.searchsorted(pos, (start, stop))
        if lo == hi:
            continue
        first = max(0, start - m + 1)
        seg = x[first:stop]
        ends = pos[lo:hi] - first
        finite = np.isfinite(seg)
        all_finite = bool(finite.all())
        if not all_finite:
            seg = np.where(finite, seg, 0.0)
        sc = _wide.scale(seg) if m <= _wide._MAX_WINDOW else None
        bad = None if all_finite else _wide.running((~finite).astype(np.int64))
        limbs = None if sc is None else [_wide.running(a) for a in _wide.split(seg, *sc)]
        for out, n in zip(outs, lengths, strict=True):
            full = pos[lo:hi] >= n - 1  # a whole window behind the bar
            e = ends[full]
            if limbs is None or sc is None:  # extreme ranges: Python integers
                sums = np.array([_exact_window(seg[i - n + 1 : i + 1].tolist(), False)[0] for i in e.tolist()])
            else:
                sums = _wide.to_float(_wide.normalise([c[e + 1] - c[e + 1 - n] for c in limbs], _wide._extra(n)), sc[0])
            if bad is not None:
                sums[(bad[e + 1] - bad[e + 1 - n]) > 0] = np.nan
            out[idx[lo:hi][full]] = sums / n
    return outs


def sma_std(x: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation (ddof=0) of each window, from one exact pass: the
    mean is the rounded exact sum / n, the deviation sqrt(rounded exact n*sum(x**2) - sum(x)**2) / n."""
    total, dev = _window_stats(x, n, True)
    total /= n  # in place: these are new arrays, and a million-bar pass is worth saving
    np.sqrt(dev, out=dev)
    dev /= n
    return total, dev


def rolling_std(x: np.ndarray, n: int) -> np.ndarray:
    """Population standard deviation (ddof=0) of each window (see ``sma_std``)."""
    return sma_std(x, n)[1]


def _rolling_extreme(x: np.ndarray, n: int, op: np.ufunc, pad: float) -> np.ndarray:
    """van Herk/Gil-Werman: in blocks of n, running extremes from each block's start (g) and from
    its end (h); a window covers the tail of one block and the head of the next, so its extreme is
    op(h[i - n + 1], g[i]): three passes whatever n. A NaN in a window gives NaN (as numpy's max)."""
    x = np.asarray(x, dtype=float)
    size = len(x)
    out = np.full(size, np.nan)
    if n < 1 or size < n:
        return out
    blocks = -(-size // n)
    xp = np.full(blocks * n, pad)
    xp[:size] = x
    cols = xp.reshape(blocks, n).T  # one row per position in the block: accumulate over rows
    g = op.accumulate(cols, axis=0).T.ravel()
    h = op.accumulate(cols[::-1], axis=0)[::-1].T.ravel()
    out[n - 1 :] = op(h[: size - n + 1], g[n - 1 : size])
    return out


def rolling_max(x: np.ndarray, n: int) -> np.ndarray:
    return _rolling_extreme(x, n, np.maximum, -np.inf)


def rolling_min(x: np.ndarray, n: int) -> np.ndarray:
    return _rolling_extreme(x, n, np.minimum, np.inf)


def shift(x: np.ndarray, k: int = 1) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if k < len(x):
        out[k:] = x[: len(x) - k]
    return out


# --- scalar forms -------------------------------------------------------------------------


def sma_last(values: Sequence[float], n: int) -> float:
    """``sma`` for the newest bar of ``values`` (the live path: the same bits)."""
    if n < 1 or len(values) < n:
        return math.nan
    w = values[len(values) - n :]
    if not all(math.isfinite(v) for v in w):
        return math.nan
    return _exact_window(w, False)[0] / n


def std_last(values: Sequence[float], n: int) -> float:
    """``rolling_std`` for the newest bar of ``values`` (the live path: the same bits)."""
    if n < 1 or len(values) < n:
        return math.nan
    w = values[len(values) - n :]
    if not all(math.isfinite(v) for v in w):
        return math.nan
    return math.sqrt(_exact_window(w, True)[1]) / n


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
