"""Indicator cost against the window length, beside pandas' rolling, in one run on the same bars.

    .venv/bin/python benchmarks/bench_indicators.py [--bars 1000000] [--runs 7] [--windows 20,200]

For each window: Bollinger's mean and population deviation (TPS19's exact integer sums against
pandas ``rolling(n).mean()`` + ``rolling(n).std(ddof=0)``), Donchian's channels (highest high and
lowest low: van Herk/Gil-Werman against ``rolling(n).max()/min()``), and the whole vectorised
strategy (``Strategy.generate``) of both. Runs alternate between the two engines and the best of
``--runs`` is kept (the machine is shared: the load average is printed). Values are compared:
the extremes must be identical; the bands differ from pandas' running float sums in the last
bits and more (pandas adds and removes in floats, and its deviation loses digits when the
deviation is small beside the mean): TPS19's are checked against exact rational arithmetic on
sampled windows, and the largest relative difference from pandas is printed.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def bars(n: int, seed: int = 19) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n)))
    open_ = np.concatenate(([30_000.0], close[:-1]))
    wick = np.abs(rng.normal(0.0, 0.0004, (2, n)))
    return {"ts": 1_704_067_200_000 + np.arange(n, dtype=np.int64) * 60_000, "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]), "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close, "volume": rng.uniform(0.1, 5.0, n)}


def duel(runs: int, ours: Callable[[], Any], peer: Callable[[], Any]) -> tuple[float, float, Any, Any]:
    best_a = best_b = float("inf")
    a = b = None
    for _ in range(runs):
        t0 = time.perf_counter()
        a = ours()
        best_a = min(best_a, time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = peer()
        best_b = min(best_b, time.perf_counter() - t0)
    return best_a, best_b, a, b


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b) & (b != 0)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return float("inf")
    return float(np.max(np.abs(a[ok] - b[ok]) / np.abs(b[ok]))) if ok.any() else 0.0


def exact_errors(x: np.ndarray, n: int, mean: np.ndarray, dev: np.ndarray, samples: int = 300) -> int:
    """Windows (of ``samples`` drawn) whose mean or deviation is not the exactly rounded value."""
    import math
    from fractions import Fraction

    bad = 0
    for i in np.random.default_rng(1).integers(n - 1, len(x), samples).tolist():
        w = [Fraction(v) for v in x[i - n + 1 : i + 1].tolist()]
        t = sum(w)
        d = n * sum(v * v for v in w) - t * t
        bad += mean[i] != float(t) / n or dev[i] != math.sqrt(float(d)) / n
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--windows", default="20,200")
    args = ap.parse_args()

    import pandas as pd

    from tps19.engine.strategies import create
    from tps19.engine.strategies import indicators as ind

    d = bars(args.bars)
    close, high, low = pd.Series(d["close"]), pd.Series(d["high"]), pd.Series(d["low"])
    frame = pd.DataFrame(d)
    print(f"{args.bars:,} bars, best of {args.runs} alternating runs; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    print(f"{'':28s} {'window':>6s} {'TPS19':>9s} {'pandas':>9s} {'ratio':>6s}  check")
    rows: dict[tuple[str, int], float] = {}
    ok = True
    for n in [int(w) for w in args.windows.split(",")]:
        ta, tb, a, b = duel(args.runs, lambda: ind.sma_std(d["close"], n),
                            lambda: (close.rolling(n).mean().to_numpy(), close.rolling(n).std(ddof=0).to_numpy()))
        diff = max(rel_diff(a[0], b[0]), rel_diff(a[1], b[1]))
        bad = exact_errors(d["close"], n, *a)
        print(f"{'Bollinger mean + deviation':28s} {n:6d} {ta * 1e3:7.1f}ms {tb * 1e3:7.1f}ms {ta / tb:6.2f}  "
              f"{'exact' if not bad else f'{bad} INEXACT'} (300 windows); pandas differs by {diff:.1e} at most")
        ok &= not bad
        rows[("bollinger", n)] = ta

        ta, tb, a, b = duel(args.runs, lambda: (ind.rolling_max(d["high"], n), ind.rolling_min(d["low"], n)),
                            lambda: (high.rolling(n).max().to_numpy(), low.rolling(n).min().to_numpy()))
        same = all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))
        print(f"{'Donchian high + low':28s} {n:6d} {ta * 1e3:7.1f}ms {tb * 1e3:7.1f}ms {ta / tb:6.2f}  "
              f"{'identical' if same else 'DIFFERENT'}")
        ok &= same
        rows[("donchian", n)] = ta

        for name, params in (("bollinger", {"period": n}), ("donchian_breakout", {"entry": n, "exit": max(1, n // 2)})):
            strat = create(name, params)
            t0 = time.perf_counter()
            best = float("inf")
            for _ in range(args.runs):
                t0 = time.perf_counter()
                strat.generate(frame)
                best = min(best, time.perf_counter() - t0)
            print(f"{'strategy ' + name:28s} {n:6d} {best * 1e3:7.1f}ms {'':>9s} {'':>6s}  (whole vectorised signal frame)")
            rows[(name, n)] = best
    ws = [int(w) for w in args.windows.split(",")]
    if len(ws) == 2:
        for what in ("bollinger", "donchian", "donchian_breakout"):
            print(f"{what}: window {ws[1]} / window {ws[0]} = {rows[(what, ws[1])] / rows[(what, ws[0])]:.2f}x")
    print("values agree" if ok else "VALUES DIFFER")


if __name__ == "__main__":
    main()
