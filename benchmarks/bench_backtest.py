"""Backtest speed and memory: TPS19 beside vectorbt and backtesting.py on the same bars, in one run.

    .venv/bin/python benchmarks/bench_backtest.py [--bars 1000000] [--peer-bars N] [--runs 3]
        [--scale 1000000,5000000,20000000] [--no-peers] [--no-scale] [--no-optimize]

1. Peers: synthetic 1-minute bars (seeded geometric random walk), `sma_cross` long-only 10/20
   (fee-free: on a random walk it trades ~27k times per million bars and a fee grinds equity to
   ~0) and 50/200 with a 0.1% fee. Each engine computes the averages, the crossovers, the fills
   at the next open, the trade list and total return / Sharpe / max drawdown; its clock stops
   when those exist. vectorbt (`pip install -e .[bench]`) runs once on small data first so its
   numba compilation is not timed. The trades (entry/exit bar and price) are compared.
2. Optimize: a grid on the same bars with --jobs 1 and 2 (in process: evaluate_many).
3. Scaling: `tps19 backtest --data FILE --json --no-save` as a whole process on 1M / 5M / 20M
   bars from Parquet and from CSV (files cached in /tmp/tps19-bench): wall time and peak memory
   (the kernel's count); then `tps19 import FILE.csv` of --import-bars bars into a new database.
4. Start-up: the same command on 13.7k real bars against `python -c pass`, medians.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
REAL = Path(os.environ.get("TPS19_DATA", "/work/shared/data")) / "freqtrade_UNITTEST_BTC_1m.csv"
CACHE = Path("/tmp/tps19-bench")
SCENARIOS = [(10, 20, 0.0), (50, 200, 0.001)]


def synthetic(n: int, seed: int = 19, start: float = 30_000.0, first_bar: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n)))
    open_ = np.concatenate(([start], close[:-1]))
    wick = np.abs(rng.normal(0.0, 0.0004, (2, n)))
    return {"ts": 1_704_067_200_000 + (first_bar + np.arange(n, dtype=np.int64)) * 60_000, "open": open_,
            "high": np.maximum(open_, close) * (1 + wick[0]), "low": np.minimum(open_, close) * (1 - wick[1]),
            "close": close, "volume": rng.uniform(0.1, 5.0, n)}


def best_of(runs: int, fn: Any) -> tuple[Any, float]:
    best, out = float("inf"), None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


# --- the engines -------------------------------------------------------------------------------


def run_tps19(d: dict[str, np.ndarray], fast: int, slow: int, fee: float) -> Any:
    from tps19.engine.backtest import BacktestConfig, run_backtest
    from tps19.engine.strategies import create

    res = run_backtest(create("sma_cross", {"fast": fast, "slow": slow}), d, BacktestConfig(cash=10_000.0, fee=fee))
    t = res.trades
    closed = t.closed
    return {"entry": t.entry_bar[closed], "exit": t.exit_bar[closed], "entry_px": t.entry_price[closed],
            "exit_px": t.exit_price[closed], "final": res.final_equity, "sharpe": res.metrics["sharpe"]}


def run_vectorbt(d: dict[str, np.ndarray], fast: int, slow: int, fee: float) -> Any:
    import pandas as pd
    import vectorbt as vbt

    close = pd.Series(d["close"])
    f = vbt.MA.run(close, fast, short_name="fast")
    s = vbt.MA.run(close, slow, short_name="slow")
    # decided on bar i's close, filled at bar i+1's open: shift the signals, price = open
    entries = f.ma_crossed_above(s).shift(1, fill_value=False).to_numpy()
    exits = f.ma_crossed_below(s).shift(1, fill_value=False).to_numpy()
    pf = vbt.Portfolio.from_signals(close, entries, exits, price=d["open"], fees=fee, size=np.inf,
                                    init_cash=10_000.0, freq="1min")
    rec = pf.trades.records
    closed = rec["status"] == 1
    stats = (pf.total_return(), pf.sharpe_ratio(), pf.max_drawdown())
    return {"entry": rec["entry_idx"][closed], "exit": rec["exit_idx"][closed], "entry_px": rec["entry_price"][closed],
            "exit_px": rec["exit_price"][closed], "final": float(pf.final_value()), "sharpe": float(stats[1])}


def run_backtesting_py(d: dict[str, np.ndarray], fast: int, slow: int, fee: float) -> Any:
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover
    from backtesting.test import SMA

    class SmaLongOnly(Strategy):
        def init(self) -> None:
            self.s1 = self.I(SMA, self.data.Close, fast)
            self.s2 = self.I(SMA, self.data.Close, slow)

        def next(self) -> None:
            if crossover(self.s1, self.s2):
                self.buy()
            elif crossover(self.s2, self.s1):
                self.position.close()

    bdf = pd.DataFrame({"Open": d["open"], "High": d["high"], "Low": d["low"], "Close": d["close"], "Volume": d["volume"]},
                       index=pd.to_datetime(d["ts"], unit="ms"))
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        warnings.simplefilter("ignore")
        stats = FractionalBacktest(bdf, SmaLongOnly, cash=10_000.0, commission=fee, trade_on_close=False,
                                   exclusive_orders=True, fractional_unit=1e-8).run()
    t = stats["_trades"]
    return {"entry": t.EntryBar.to_numpy(), "exit": t.ExitBar.to_numpy(), "entry_px": t.EntryPrice.to_numpy(),
            "exit_px": t.ExitPrice.to_numpy(), "final": float(stats["Equity Final [$]"]),
            "sharpe": float(stats["Sharpe Ratio"])}


def same_trades(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (len(a["entry"]) == len(b["entry"]) and np.array_equal(a["entry"], b["entry"])
            and np.array_equal(a["exit"], b["exit"]) and np.allclose(a["entry_px"], b["entry_px"], rtol=1e-12)
            and np.allclose(a["exit_px"], b["exit_px"], rtol=1e-12))


# --- sections ----------------------------------------------------------------------------------


def peers(n: int, peer_n: int, runs: int) -> bool:
    d = synthetic(n)
    small = {k: v[:5_000] for k, v in d.items()}
    run_tps19(small, 10, 20, 0.001)  # imports, not timed
    engines: list[tuple[str, Any, int]] = [("tps19", run_tps19, runs)]
    try:
        import vectorbt  # noqa: F401

        run_vectorbt(small, 10, 20, 0.001)  # numba compiles here, not timed
        engines.append(("vectorbt", run_vectorbt, runs))
    except ImportError:
        print("vectorbt not installed (pip install -e '.[bench]'): left out")
    try:
        import backtesting  # noqa: F401

        engines.append(("backtesting.py", run_backtesting_py, 1))
    except ImportError:
        print("backtesting.py not installed: left out")
    ok = True
    for fast, slow, fee in SCENARIOS:
        print(f"\n{n:,} synthetic 1m bars, sma_cross {fast}/{slow} long-only, fee {fee}"
              + (f" (backtesting.py on the first {peer_n:,})" if peer_n < n else ""))
        sliced = {kk: v[:peer_n] for kk, v in d.items()}
        ref_full = None
        for name, fn, k in engines:
            data = sliced if name == "backtesting.py" else d
            out, secs = best_of(k, lambda fn=fn, data=data: fn(data, fast, slow, fee))
            if name == "tps19":
                ref_full = out
            ref = ref_full if data is d else run_tps19(data, fast, slow, fee)
            same = same_trades(ref, out)
            ok &= same
            print(f"  {name:15s} {secs:8.3f} s {len(data['close']) / secs:14,.0f} bars/s  trades={len(out['entry']):6d}"
                  f"  final equity={out['final']:14,.6f}  same trades as tps19: {same}")
    return ok


def optimize_speedup(n: int) -> None:
    from tps19.engine.backtest import BacktestConfig
    from tps19.engine.backtest import optimize as opt

    d = synthetic(n)
    cands = opt.candidates("sma_cross", {"fast": [5, 10, 15, 20, 25, 30], "slow": [40, 60, 80, 100]})
    cfg = BacktestConfig(fee=0.001)
    times = {}
    for jobs in (1, 2):
        t0 = time.perf_counter()
        opt.evaluate_many("sma_cross", cands, d, cfg, jobs=jobs)
        times[jobs] = time.perf_counter() - t0
    print(f"\noptimize: {len(cands)} sma_cross candidates on {n:,} bars: --jobs 1 {times[1]:.2f} s, --jobs 2 "
          f"{times[2]:.2f} s, speed-up {times[1] / times[2]:.2f}x on {os.cpu_count()} cores")


def parquet_bars(n: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = CACHE / f"bars_{n}.parquet"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    block, last = 1_000_000, 30_000.0
    schema = pa.schema([("ts", pa.int64())] + [(c, pa.float64()) for c in ("open", "high", "low", "close", "volume")])
    with pq.ParquetWriter(tmp, schema) as w:
        for s in range(0, n, block):
            part = synthetic(min(block, n - s), seed=19 + s, start=last, first_bar=s)
            last = float(part["close"][-1])
            w.write_table(pa.table(part, schema=schema))
    tmp.rename(path)
    return path


def csv_bars(n: int) -> Path:
    """The same bars as ``parquet_bars(n)``, as CSV (ts in ms, prices in full precision)."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = CACHE / f"bars_{n}.csv"
    if path.exists():
        return path
    src = pq.ParquetFile(parquet_bars(n))
    tmp = path.with_suffix(".tmp")
    with pcsv.CSVWriter(tmp, src.schema_arrow) as w:
        for g in range(src.num_row_groups):
            w.write_table(src.read_row_group(g))
    tmp.rename(path)
    return path


_MEASURE = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, ru = os.wait4(p.pid, 0)
print(json.dumps([time.perf_counter() - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)]))
"""


def whole_process(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, cpu s, peak MiB) of one run, from the kernel's accounting of the child. A small
    helper process starts it: Linux carries a parent's peak memory into a forked child's count."""
    import json

    out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, cwd=ROOT, check=True)
    wall, cpu, peak, code = json.loads(out.stdout)
    if code != 0:
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}")
    return wall, cpu, peak


def tps19_cmd(data: Path, *params: str) -> list[str]:
    return [str(Path(sys.executable).parent / "tps19"), "backtest", "--strategy", "sma_cross", *params,
            "--data", str(data), "--json", "--no-save"]


def scaling(sizes: list[int], formats: list[str]) -> None:
    print("\nscaling: `tps19 backtest --data FILE --json --no-save`, sma_cross 50/200, whole process")
    print(f"  {'format':>8s} {'bars':>12s} {'wall s':>8s} {'cpu s':>8s} {'peak MiB':>9s} {'bytes/bar':>10s}")
    for n in sizes:
        for fmt in formats:
            path = parquet_bars(n) if fmt == "parquet" else csv_bars(n)
            wall, cpu, peak = whole_process(tps19_cmd(path, "--param", "fast=50", "--param", "slow=200"))
            print(f"  {fmt:>8s} {n:12,d} {wall:8.2f} {cpu:8.2f} {peak:9.0f} {peak * 1024 * 1024 / n:10.1f}")


def import_memory(n: int) -> None:
    """`tps19 import FILE.csv` into a fresh SQLite file: time and peak memory of the whole process."""
    import tempfile

    print(f"\nimport: `tps19 import FILE.csv --db NEW.db`, {n:,} bars, whole process")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(Path(sys.executable).parent / "tps19"), "import", str(csv_bars(n)), "--symbol", "BTC/USDT",
               "--db", str(Path(tmp) / "bars.db")]
        wall, cpu, peak = whole_process(cmd)
    print(f"  wall {wall:.2f} s  cpu {cpu:.2f} s  peak {peak:.0f} MiB  ({peak * 1024 * 1024 / n:.0f} bytes/bar)")


def startup(runs: int) -> None:
    a, b = tps19_cmd(REAL), [sys.executable, "-c", "pass"]
    whole_process(a)  # a warm-up: .pyc files, page cache
    ra, rb = [], []
    for _ in range(runs):
        ra.append(whole_process(a))
        rb.append(whole_process(b))
    med = [statistics.median(x) for x in zip(*ra, strict=True)]
    base = [statistics.median(x) for x in zip(*rb, strict=True)]
    print(f"\nstart-up: `tps19 backtest --data {REAL.name} --json --no-save` (13,681 bars), median of {runs}")
    print(f"  tps19 backtest : wall {med[0]:.3f} s  cpu {med[1]:.3f} s  peak {med[2]:.0f} MiB")
    print(f"  python -c pass : wall {base[0]:.3f} s  cpu {base[1]:.3f} s  peak {base[2]:.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--peer-bars", type=int, default=None, help="bars for backtesting.py (slow); default --bars")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scale", default="1000000,5000000,20000000")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-optimize", action="store_true")
    ap.add_argument("--no-scale", action="store_true")
    ap.add_argument("--formats", default="parquet,csv", help="file formats of the scaling runs")
    ap.add_argument("--import-bars", type=int, default=1_000_000, help="bars for `tps19 import` (0: skip)")
    args = ap.parse_args()
    ok = True
    if not args.no_peers:
        ok = peers(args.bars, args.peer_bars or args.bars, args.runs)
    if not args.no_optimize:
        optimize_speedup(args.bars)
    if not args.no_scale:
        scaling([int(x) for x in args.scale.split(",") if x], args.formats.split(","))
    if args.import_bars:
        import_memory(args.import_bars)
    if REAL.exists():
        startup(max(5, args.runs))
    print("\nresults match" if ok else "\nRESULTS DIFFER")


if __name__ == "__main__":
    main()
