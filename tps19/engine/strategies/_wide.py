"""Exact window sums and sums of squares in numpy, O(bars) whatever the window length.

Every finite float is an integer multiple of the smallest value's ulp, so after one power-of-two
scale a window's sum ``T`` and ``D = n * sum(x**2) - T**2`` (n squared times the population
variance) are exact integers. numpy has no 128-bit integers, so each value is split into 20-bit
limbs held in int64: products of two limbs stay below 2**40 and a window sum of them below 2**63
for any window under ~2M bars. Window sums are differences of running sums (an int64 running sum
may wrap around: the difference of two is still exact while the window's own sum fits).

The exact integer is then rounded to a float *once*, correctly (round half to even, the same as
Python's ``float(int)``), so the live path can reproduce every bit with Python integers
(``mean_last``/``std_last`` in ``indicators``).
"""

from __future__ import annotations

import math

import numpy as np

BITS = 20
_MASK = (1 << BITS) - 1
_MAX_LIMBS = 6  # values spanning ~67 binary orders of magnitude in one chunk go to Python integers
_MAX_WINDOW = 1 << 20

Limbs = list[np.ndarray]


def scale(x: np.ndarray) -> tuple[int, int] | None:
    """(e, k): ``x * 2**-e`` are integers of at most k limbs; None when they need more (or
    every value is zero: e is 0 and k is 1 then, see below)."""
    if not len(x):
        return 0, 1
    lo, hi = float(x.min()), float(x.max())
    if lo > 0.0:  # prices: no absolute values needed
        smallest, largest = lo, hi
    else:
        ax = np.abs(x)
        largest = float(ax.max())
        if largest == 0.0:
            return 0, 1
        smallest = float(ax.min())
        if smallest == 0.0:
            smallest = float(ax[ax > 0].min())
    e = math.frexp(smallest)[1] - 53
    k = -(-(math.frexp(largest)[1] - e + 1) // BITS)  # +1: the top limb is signed
    if k > _MAX_LIMBS or not -1000 < e < 1000:
        return None
    return e, k


def split(x: np.ndarray, e: int, k: int) -> Limbs:
    """Limbs of ``x * 2**-e`` (exact float integers): the low ones in [0, 2**20), the top signed."""
    v = x * math.ldexp(1.0, -e)  # exact: a power of two
    if k <= 3:  # fits int64: bit operations are cheaper than float divisions
        i = v.astype(np.int64)
        return [(i >> (BITS * j)) & _MASK if j < k - 1 else i >> (BITS * j) for j in range(k)]
    out: Limbs = []
    for _ in range(k - 1):
        hi = np.floor(v * (1.0 / (1 << BITS)))
        out.append((v - hi * (1 << BITS)).astype(np.int64))
        v = hi
    out.append(v.astype(np.int64))
    return out


def running(a: np.ndarray) -> np.ndarray:
    c = np.empty(len(a) + 1, dtype=np.int64)
    c[0] = 0
    np.cumsum(a, out=c[1:])
    return c


def window(c: np.ndarray, n: int) -> np.ndarray:
    """Window sums of length n (ends n-1 .. len-1) from a running sum with a leading zero."""
    return c[n:] - c[: len(c) - n]


def normalise(limbs: Limbs, extra: int) -> Limbs:
    """Carry so every limb but the top is in [0, 2**20); ``extra`` more limbs take the carries.
    The given arrays are reused (callers pass temporaries)."""
    out: Limbs = []
    carry = None
    for a in limbs:
        if carry is not None:
            a += carry
        carry = a >> BITS
        a &= _MASK
        out.append(a)
    assert carry is not None
    for _ in range(extra):
        a = carry
        carry = a >> BITS
        a &= _MASK
        out.append(a)
    out[-1] += carry << BITS  # whatever is left (the sign) stays in the top limb
    return out


def square(t: Limbs) -> Limbs:
    """Coefficients of T**2 (not normalised) from limbs t."""
    k = len(t)
    twice = [a << 1 for a in t[:-1]]
    out: Limbs = []
    for j in range(2 * k - 1):
        acc = None
        for i in range(max(0, j - k + 1), j // 2 + 1):
            if i == j - i:
                p = t[i] * t[i]
            else:
                p = twice[i] * t[j - i]
            if acc is None:
                acc = p
            else:
                acc += p
        assert acc is not None
        out.append(acc)
    return out


def to_float(limbs: Limbs, exp: int) -> np.ndarray:
    """``sum(limbs[j] * 2**(20 j)) * 2**exp`` rounded once to the nearest float (ties to even).

    ``limbs`` normalised (the top one below 2**33 in magnitude); negative values are negated
    first. The four limbs from the leading one down hold at least 61 bits, more than a float:
    their value is formed as one float addition of two exact halves (a single correct rounding),
    with 0.5 added when any lower limb is nonzero (a sticky bit: it breaks a tie the way the exact
    value would, and cannot move past any other rounding boundary, which lie on integers)."""
    neg = limbs[-1] < 0
    any_neg = bool(neg.any())
    if any_neg:
        limbs = normalise([np.where(neg, -a, a) for a in limbs], 0)
    m = len(limbs[0])
    zero = np.zeros(m, dtype=np.int64)

    def limb(j: int) -> np.ndarray:
        return limbs[j] if j >= 0 else zero

    def value(lv: int) -> np.ndarray:
        """Every element's value taken as if its leading limb were lv."""
        top = ((limb(lv) << BITS) + limb(lv - 1)).astype(float)
        low = ((limb(lv - 2) << BITS) + limb(lv - 3)).astype(float)
        if lv >= 4:
            below = limbs[0].copy()
            for a in limbs[1 : lv - 3]:
                below |= a
            low += (below != 0) * 0.5
        top *= float(1 << (2 * BITS))
        top += low
        top *= math.ldexp(1.0, (lv - 3) * BITS + exp)
        return top

    # the common case: one leading limb for all (sums of similar prices)
    out = None
    for j in range(len(limbs) - 1, -1, -1):
        nz = limbs[j] != 0
        if nz.all():
            out = value(j)
            break
        if nz.any():
            break
    if out is None:
        lead = np.full(m, -1, dtype=np.int8)
        for j, a in enumerate(limbs):
            lead[a != 0] = j
        out = np.zeros(m)
        for lv in np.flatnonzero(np.bincount(lead.astype(np.intp) + 1, minlength=len(limbs) + 1)[1:]).tolist():
            out = np.where(lead == lv, value(lv), out)
    return np.where(neg, -out, out) if any_neg else out


def _extra(n: int) -> int:
    """Limbs added for the carries of a window sum. Below 4096 bars none: the top limb keeps them
    (a top limb's window sum stays below 2**31, its square and n times its squares' sum below 2**63)."""
    return 0 if n < 4096 else -(-(n.bit_length() + 2) // BITS) + 1


def window_stats(x: np.ndarray, n: int, e: int, k: int, squares: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Exactly rounded window sums of ``x`` (finite) and, with ``squares``, the exactly rounded
    ``n * sum(x**2) - sum(x)**2`` of each window, for windows ending at n-1 .. len-1."""
    xs = split(x, e, k)
    extra = _extra(n)
    t = normalise([window(running(a), n) for a in xs], extra)
    total = to_float(t, e)
    if not squares:
        return total, None
    q = [window(running(p), n) for p in square(xs)]  # per bar below 2**40 * (k + 1)
    if n >= 1024:  # n times a window's sum would not fit: carry first
        q = normalise(q, extra)
    u = square(t)
    d = []
    for j in range(max(len(q), len(u))):
        if j < len(q):
            v = q[j]
            v *= n
            if j < len(u):
                v -= u[j]
        else:
            v = -u[j]
        d.append(v)
    return total, to_float(normalise(d, 1), 2 * e)

