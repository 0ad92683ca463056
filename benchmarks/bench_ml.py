"""ML: `tps19 train --model hgb` on 500,000 bars (wall time, peak memory), and the `ml` strategy's
live inference latency per bar (features + prediction; goal p99 < 5 ms).

    .venv/bin/python benchmarks/bench_ml.py [--bars 500000] [--model hgb] [--folds 5] [--jobs 1] [--live-bars 3000]

Synthetic 1-minute bars (seeded random walk whose 1-bar returns are slightly mean-reverting, so
there is something to learn). Training runs the real CLI as a child process on a CSV file: its
clock starts at the spawn and stops when the process has exited, i.e. after the model is
registered; peak memory is the child's maximum RSS. In the same run, the feature function alone
is timed on the same bars, and a plain scikit-learn fit of the same pipeline on the same feature
rows (no CV) is timed as the peer. Live latency: the registered model behind the `ml` strategy,
fed one closed bar at a time (`on_bar`, as the runner does), after the feature window is warm.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def synthetic(n: int, seed: int = 19) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, 0.0008, n)
    r = e.copy()
    r[1:] -= 0.1 * e[:-1]  # a little reversal: MA(1) returns
    close = 30_000.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate(([30_000.0], close[:-1]))
    wick = np.abs(rng.normal(0.0, 0.0004, (2, n)))
    return pd.DataFrame({"ts": 1_577_836_800_000 + np.arange(n, dtype=np.int64) * 60_000, "open": open_,
                         "high": np.maximum(open_, close) * (1 + wick[0]), "low": np.minimum(open_, close) * (1 - wick[1]),
                         "close": close, "volume": rng.lognormal(0.0, 1.0, n)})


def bench_train(csv: Path, db: Path, model: str, folds: int, jobs: int) -> dict:
    cmd = [str(ROOT / ".venv/bin/tps19"), "train", "--data", str(csv), "--model", model, "--horizon", "5",
           "--folds", str(folds), "--jobs", str(jobs), "--json", "--db", str(db)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"COLUMNS": "120"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"train failed: {proc.stderr.strip().splitlines()[-1:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_s": wall, "peak_rss_mb": peak_mb, "report": json.loads(proc.stdout)}


def bench_peer(df: pd.DataFrame, model: str) -> dict:
    from threadpoolctl import threadpool_limits

    from tps19.engine.ml.features import feature_frame
    from tps19.engine.ml.labels import make_labels
    from tps19.engine.ml.pipelines import build_pipeline

    t0 = time.perf_counter()
    x = feature_frame(df)
    t_feat = time.perf_counter() - t0
    y = make_labels(df["close"].to_numpy(), 5)
    ok = ~np.isnan(x).any(axis=1) & ~np.isnan(y)
    t1 = time.perf_counter()
    with threadpool_limits(1, user_api="openmp"):
        build_pipeline(model).fit(x[ok], y[ok].astype(int))
    return {"features_s": t_feat, "one_fit_s": time.perf_counter() - t1, "rows": int(ok.sum())}


def bench_live(db: Path, model_id: str, bars: pd.DataFrame) -> dict:
    from tps19.engine.events import BarEvent
    from tps19.engine.ml.features import LOOKBACK
    from tps19.engine.strategies import create

    strat = create("ml", {"model": model_id}, db=db)
    rows = list(bars.itertuples(index=False))
    lat = []
    for i, b in enumerate(rows):
        ev = BarEvent("BTC/USDT", "1m", int(b.ts), b.open, b.high, b.low, b.close, b.volume, True)
        t0 = time.perf_counter()
        strat.on_bar(ev)
        dt = time.perf_counter() - t0
        if i >= LOOKBACK:
            lat.append(dt * 1000)
    a = np.array(lat)
    return {"bars": len(a), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=500_000)
    ap.add_argument("--model", default="hgb")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--live-bars", type=int, default=3000)
    args = ap.parse_args()
    df = synthetic(args.bars + args.live_bars)
    train_df, live_df = df.iloc[: args.bars], df.iloc[args.bars:]
    with tempfile.TemporaryDirectory() as tmp:
        csv, db = Path(tmp) / "bars.csv", Path(tmp) / "bench.db"
        train_df.to_csv(csv, index=False)
        print(f"bars: {args.bars:,} synthetic 1m; model {args.model}, horizon 5, {args.folds} folds, --jobs {args.jobs}; "
              f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}", flush=True)
        tr = bench_train(csv, db, args.model, args.folds, args.jobs)
        rep = tr["report"]
        print(f"tps19 train: {tr['wall_s']:.1f} s wall (process start to exit, CSV read + features + CV + final fit + "
              f"registry), peak RSS {tr['peak_rss_mb']:.0f} MB; CV roc_auc {rep['cv']['roc_auc']:.4f}, "
              f"OOS return {rep['oos']['total_return'] * 100:.2f}% (buy&hold {rep['oos']['buy_and_hold'] * 100:.2f}%)",
              flush=True)
        peer = bench_peer(train_df, args.model)
        print(f"same bars in this process: features {peer['features_s']:.2f} s; one plain scikit-learn fit of the same "
              f"pipeline on all {peer['rows']:,} rows (the peer: no CV) {peer['one_fit_s']:.1f} s", flush=True)
        live = bench_live(db, rep["model_id"], live_df)
        goal = "meets" if live["p99_ms"] < 5 else "MISSES"
        print(f"live inference per bar (ml strategy on_bar: features + predict), {live['bars']} bars: "
              f"p50 {live['p50_ms']:.2f} ms, p99 {live['p99_ms']:.2f} ms, max {live['max_ms']:.2f} ms "
              f"({goal} the p99 < 5 ms goal)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
