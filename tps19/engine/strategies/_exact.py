"""Which of two moving averages is above the other, decided exactly, in O(bars).

Every finite float is an integer multiple of the smallest value's ulp, so a window sum is an
exact integer: split into two int64 limbs (``hi * 2**32 + lo``), running sums of each limb give
every window sum with one subtraction, whatever the window length (int64 running sums may wrap
around; the difference of two of them is still exact while the window sum itself fits). The
sign of ``n2 * sum1 - n1 * sum2`` is then the sign of ``mean1 - mean2`` with no rounding at all:
two averages that are exactly equal compare equal (a tie, which is no crossover).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_CHUNK = 1 << 16  # bars per pass: the int64 temporaries stay in cache, and bounded on long histories
_LIMB = 2.0**32
_LOW = (1 << 32) - 1


def _limbs(x: np.ndarray, weight: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``x`` as integers ``hi * 2**32 + lo`` (times one power of two), or None when a weighted
    window sum could overflow int64 (prices spanning ~20 binary orders of magnitude)."""
    ax = np.abs(x)
    smallest, largest = float(ax.min()), float(ax.max())
    if smallest == 0.0:
        nz = ax[ax > 0]
        smallest = float(nz.min()) if len(nz) else 0.0
    if largest == 0.0:
        zero = np.zeros(len(x), dtype=np.int64)
        return zero, zero
    e_min = math.frexp(smallest)[1] - 53
    bits = math.frexp(largest)[1] - e_min
    if weight >= 1 << 29 or bits - 32 + weight.bit_length() + 1 >= 62 or not -1000 < e_min < 1000:
        return None
    scaled = x * math.ldexp(1.0, -e_min)  # exact: a power-of-two scale
    hi = np.floor(scaled * (1.0 / _LIMB))
    lo = scaled - hi * _LIMB  # exact integer in [0, 2**32)
    return hi.astype(np.int64), lo.astype(np.int64)


def _window_pair(a: np.ndarray, n1: int, n2: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums over the last n1 and the last n2 values at every position from m-1 on."""
    c = np.zeros(len(a) + 1, dtype=a.dtype)
    np.cumsum(a, out=c[1:])
    end = c[m:]
    return end - c[m - n1 : len(c) - n1], end - c[m - n2 : len(c) - n2]


def _compare_chunk(seg: np.ndarray, n1: int, n2: int, m: int) -> np.ndarray:
    finite = np.isfinite(seg)
    all_finite = bool(finite.all())
    limbs = _limbs(seg if all_finite else np.where(finite, seg, 0.0), n1 * n2)
    if limbs is None:
        return _compare_python(seg.tolist(), n1, n2, m)
    hi, lo = limbs
    h1, h2 = _window_pair(hi, n1, n2, m)
    l1, l2 = _window_pair(lo, n1, n2, m)
    d_lo = n2 * l1 - n1 * l2
    top = n2 * h1 - n1 * h2 + (d_lo >> 32)  # floor shift: d_lo = (d_lo >> 32) * 2**32 + (d_lo & _LOW)
    sign = np.sign(top).astype(float)
    tie = top == 0
    sign[tie] = (d_lo[tie] & _LOW) != 0
    if not all_finite:
        b1, b2 = _window_pair((~finite).astype(np.int64), n1, n2, m)
        sign[(b1 > 0) | (b2 > 0)] = np.nan
    return sign


def _compare_python(values: list[float], n1: int, n2: int, m: int) -> np.ndarray:
    """The same decision with Python integers (rare: extreme price ranges)."""
    return np.array([compare_means_last(values[i - m + 1 : i + 1], n1, n2) for i in range(m - 1, len(values))])


def compare_means(x: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Sign of (mean of the last n1) - (mean of the last n2) at every bar: 1.0, 0.0 (exactly equal)
    or -1.0; NaN where a window is incomplete or holds a non-finite value (float32: 4 bytes a bar)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    out = np.full(n, np.nan, dtype=np.float32)
    m = max(n1, n2)
    if min(n1, n2) < 1 or n < m:
        return out
    for start in range(m - 1, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        out[start:stop] = _compare_chunk(x[start - m + 1 : stop], n1, n2, m)
    return out


def compare_means_last(values: Sequence[float], n1: int, n2: int) -> float:
    """``compare_means`` for the newest bar of ``values`` (the live path)."""
    m = max(n1, n2)
    if min(n1, n2) < 1 or len(values) < m:
        return math.nan
    window = [float(v) for v in values[len(values) - m :]]
    if not all(math.isfinite(v) for v in window):
        return math.nan
    ratios = [v.as_integer_ratio() for v in window]  # denominators are powers of two
    den = max(d for _, d in ratios)
    ints = [num * (den // d) for num, d in ratios]
    diff = n2 * sum(ints[m - n1 :]) - n1 * sum(ints[m - n2 :])
    return float((diff > 0) - (diff < 0))

