"""Protective orders: what a stop-loss and take-profit cost a backtest.

    .venv/bin/python benchmarks/bench_stops.py [--bars 1000000] [--runs 5] [--no-peer]

Backtest half (goal: a 1M-bar backtest with stop-loss and take-profit costs at most 1.5x the
same backtest without): synthetic 1-minute bars (bench_backtest's seeded random walk with
wicks), `sma_cross` 10/20 without fee (~27k trades; a fee would grind equity to ~0) and 50/200 with a
0.1 % fee (~3k), bench_backtest's two scenarios. Each figure is the whole
`run_backtest` (averages, crossovers, protective exits, fills, trades, metrics), the best of
``--runs`` runs, the variants interleaved so a busy machine slows them alike. Stops 0.2 % /
take-profit 0.4 % (they fire on most trades: the search does real work), then the same with a
0.3 % trailing stop. vectorbt (`pip install -e '.[bench]'`) is timed on the same bars with the
same levels (`Portfolio.from_signals` with ``sl_stop``/``tp_stop``/``sl_trail``), its own
with/without ratio beside ours; its stop rules are its own, so only its clock is compared.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_backtest import SCENARIOS, synthetic  # noqa: E402

GOAL = 1.5
SL, TP, TRAIL = 0.2, 0.4, 0.3  # percent


def best_times(runs: int, variants: dict[str, Any]) -> dict[str, tuple[float, Any]]:
    """Best wall time of each variant over ``runs`` rounds, the variants interleaved."""
    best: dict[str, tuple[float, Any]] = {k: (float("inf"), None) for k in variants}
    for _ in range(runs):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t0
            if dt < best[name][0]:
                best[name] = (dt, out)
    return best


def tps19_variants(d: dict[str, np.ndarray], fast: int, slow: int, fee: float) -> dict[str, Any]:
    from tps19.engine.backtest import BacktestConfig, run_backtest
    from tps19.engine.protection import Protection
    from tps19.engine.strategies import create

    def run(protection: Protection | None) -> Any:
        res = run_backtest(create("sma_cross", {"fast": fast, "slow": slow}), d,
                           BacktestConfig(cash=10_000.0, fee=fee, protection=protection))
        return res.metrics["exit_reasons"]

    return {"none": lambda: run(None),
            "sl+tp": lambda: run(Protection(stop_loss_pct=SL, take_profit_pct=TP)),
            "sl+tp+trail": lambda: run(Protection(stop_loss_pct=SL, take_profit_pct=TP, trailing_pct=TRAIL))}


def vectorbt_variants(d: dict[str, np.ndarray], fast: int, slow: int, fee: float) -> dict[str, Any]:
    import pandas as pd
    import vectorbt as vbt

    close = pd.Series(d["close"])
    ohlc = {"open": pd.Series(d["open"]), "high": pd.Series(d["high"]), "low": pd.Series(d["low"])}

    def run(**stops: float) -> Any:
        f = vbt.MA.run(close, fast, short_name="fast")
        s = vbt.MA.run(close, slow, short_name="slow")
        entries = f.ma_crossed_above(s).shift(1, fill_value=False)
        exits = f.ma_crossed_below(s).shift(1, fill_value=False)
        pf = vbt.Portfolio.from_signals(close, entries, exits, price=ohlc["open"], fees=fee, size=np.inf,
                                        init_cash=10_000.0, freq="1min", **ohlc, **stops)
        return int(pf.trades.count())

    return {"none": lambda: run(),
            "sl+tp": lambda: run(sl_stop=SL / 100, tp_stop=TP / 100),
            "sl+tp+trail": lambda: run(sl_stop=TRAIL / 100, sl_trail=True, tp_stop=TP / 100)}


def backtest_half(n: int, runs: int, peer: bool) -> None:
    d = synthetic(n)
    print(f"backtest, {n:,} synthetic 1m bars, best of {runs} (variants interleaved); "
          f"stop-loss {SL} %, take-profit {TP} %, trailing {TRAIL} %")
    for fast, slow, fee in SCENARIOS:
        ours = best_times(runs, tps19_variants(d, fast, slow, fee))
        base = ours["none"][0]
        print(f"  sma_cross {fast}/{slow}, fee {fee:.1%}")
        for name, (dt, reasons) in ours.items():
            ratio = dt / base
            verdict = "" if name == "none" else (f"  x{ratio:.2f} ({'meets' if ratio <= GOAL else 'misses'} the "
                                                 f"{GOAL}x goal)" if name == "sl+tp" else f"  x{ratio:.2f}")
            exits = ", ".join(f"{k} {v}" for k, v in reasons.items() if v)
            print(f"    TPS19 {name:<12} {dt:7.3f} s{verdict}   exits: {exits}")
        if peer:
            try:
                theirs = vectorbt_variants(d, fast, slow, fee)
                theirs["none"]()  # numba compiles on first use: not timed
                theirs["sl+tp"]()
                theirs["sl+tp+trail"]()
                got = best_times(runs, theirs)
            except ImportError:
                print("    vectorbt not installed (pip install -e '.[bench]')")
                continue
            vb = got["none"][0]
            for name, (dt, count) in got.items():
                extra = "" if name == "none" else f"  x{dt / vb:.2f}"
                print(f"    vectorbt {name:<9} {dt:7.3f} s{extra}   trades: {count}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-peer", action="store_true", help="skip vectorbt")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    backtest_half(args.bars, args.runs, not args.no_peer)


if __name__ == "__main__":
    main()
