"""ML: what `tps19 train` costs against a plain scikit-learn loop doing the same fits (CPU time),
its wall time and peak memory, and the `ml` strategy's live inference latency per bar (goal
p99 < 5 ms).

    .venv/bin/python benchmarks/bench_ml.py [--bars 100000] [--models hgb,auto] [--folds 5] [--jobs 1]
                                            [--repeat 2] [--live-bars 3000]

Synthetic 1-minute bars (seeded random walk whose 1-bar returns are slightly mean-reverting, so
there is something to learn). For each model, in the same run on the same bars:

* `tps19 train --model M` as a child process on a CSV file: CPU time (user + sys of the child,
  from process start to exit: imports, CSV read, features, CV, reports, final fit, registry),
  wall time and peak RSS;
* the peer, a plain scikit-learn loop as a child process: it loads the same feature rows and
  labels (written by this script), and for every candidate the run fitted (`auto`: logreg,
  lasso and hgb) fits the same pipeline on the same purged training rows of every fold,
  predicts the fold's test rows, then fits the kept model on all rows. Same thread limits
  (TPS19_ML__THREADS, default 1, for BLAS and OpenMP).

The figure is the ratio of the two CPU times (goal: at most 1.3); with --repeat the runs
alternate and the median is reported. Live latency: the registered model behind the `ml`
strategy, fed one closed bar at a time (`on_bar`, as the runner does), after the feature window
is warm.
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


def _child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def bench_train(csv: Path, db: Path, model: str, folds: int, jobs: int) -> dict:
    cmd = [str(ROOT / ".venv/bin/tps19"), "train", "--data", str(csv), "--model", model, "--horizon", "5",
           "--folds", str(folds), "--jobs", str(jobs), "--json", "--db", str(db)]
    c0, t0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | {"COLUMNS": "120"})
    wall, cpu = time.perf_counter() - t0, _child_cpu() - c0
    if proc.returncode != 0:
        raise SystemExit(f"train failed: {proc.stderr.strip().splitlines()[-1:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"cpu_s": cpu, "wall_s": wall, "peak_rss_mb": peak_mb, "report": json.loads(proc.stdout)}


PEER = """
import sys, numpy as np
from threadpoolctl import threadpool_limits
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

def pipeline(kind):  # the same estimators and settings as tps19/engine/ml/pipelines.py
    if kind == "logreg":
        return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(C=1.0, max_iter=1000))])
    if kind == "lasso":
        return Pipeline([("scale", StandardScaler()), ("model", LogisticRegression(
            C=0.01, l1_ratio=1.0, solver="liblinear", max_iter=1000))])
    return Pipeline([("model", HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=100, l2_regularization=1.0,
        early_stopping=False, random_state=19))])

d = np.load(sys.argv[1])
x, y, kept, threads = d["x"], d["y"], str(d["kept"]), int(d["threads"])
kinds = [str(k) for k in d["kinds"]]
with threadpool_limits(threads):
    for kind in kinds:
        for k in range(int(d["folds"])):
            pipeline(kind).fit(x[d[f"train{k}"]], y[d[f"train{k}"]]).predict_proba(x[d[f"test{k}"]])
    pipeline(kept).fit(x[d["all"]], y[d["all"]])
"""


def peer_inputs(df: pd.DataFrame, folds: int, kinds: list[str], kept: str, threads: int, path: Path) -> None:
    """The feature rows, labels and fold indices `tps19 train` uses, for the peer to load."""
    from tps19.engine.ml.cv import purged_splits
    from tps19.engine.ml.features import feature_frame
    from tps19.engine.ml.labels import make_labels

    x = feature_frame(df)
    y = make_labels(df["close"].to_numpy(), 5)
    has_x = ~np.isnan(x).any(axis=1)
    ok = has_x & ~np.isnan(y)
    arrays = {"x": x, "y": np.nan_to_num(y).astype(int), "all": np.flatnonzero(ok), "kinds": np.array(kinds),
              "kept": np.array(kept), "folds": np.array(folds), "threads": np.array(threads)}
    for k, f in enumerate(purged_splits(len(df), 5, folds, 0, usable=has_x)):
        arrays[f"train{k}"] = f.train[ok[f.train]]
        arrays[f"test{k}"] = f.test
    np.savez(path, **arrays)


def bench_peer(inputs: Path) -> dict:
    c0, t0 = _child_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-c", PEER, str(inputs)], check=True)
    return {"cpu_s": _child_cpu() - c0, "wall_s": time.perf_counter() - t0}


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
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--models", default="hgb,auto")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--live-bars", type=int, default=3000)
    args = ap.parse_args()
    threads = int(os.environ.get("TPS19_ML__THREADS", "1"))
    df = synthetic(args.bars + args.live_bars)
    train_df, live_df = df.iloc[: args.bars], df.iloc[args.bars:]
    with tempfile.TemporaryDirectory() as tmp:
        csv, db = Path(tmp) / "bars.csv", Path(tmp) / "bench.db"
        train_df.to_csv(csv, index=False)
        print(f"bars: {args.bars:,} synthetic 1m; horizon 5, {args.folds} folds, --jobs {args.jobs}, "
              f"TPS19_ML__THREADS={threads}; cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}", flush=True)
        model_id = None
        for model in args.models.split(","):
            ratios, ours, theirs = [], [], []
            for _ in range(args.repeat):
                tr = bench_train(csv, db, model, args.folds, args.jobs)
                rep = tr["report"]
                model_id = rep["model_id"]
                sel = rep["cv"].get("selection") or {}
                kinds = list(sel.get("candidates") or [rep["model"]])
                inputs = Path(tmp) / "peer.npz"
                peer_inputs(train_df, args.folds, kinds, rep["model"], threads, inputs)
                peer = bench_peer(inputs)
                ratios.append(tr["cpu_s"] / peer["cpu_s"])
                ours.append(tr)
                theirs.append(peer)
                print(f"  {model}: tps19 train {tr['cpu_s']:.1f} s CPU ({tr['wall_s']:.1f} s wall, peak RSS "
                      f"{tr['peak_rss_mb']:.0f} MB); plain scikit-learn loop, same {len(kinds)} x {args.folds} fold "
                      f"fits + final fit: {peer['cpu_s']:.1f} s CPU ({peer['wall_s']:.1f} s wall); ratio "
                      f"{ratios[-1]:.2f}", flush=True)
            r = float(np.median(ratios))
            rep = ours[-1]["report"]
            print(f"{model}: tps19 train / plain loop CPU time = {r:.2f} (median of {len(ratios)}; goal <= 1.3: "
                  f"{'meets' if r <= 1.3 else 'MISSES'}); kept {rep['model']}, CV roc_auc {rep['cv']['roc_auc']:.4f}, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
        if args.live_bars and model_id:
            live = bench_live(db, model_id, live_df)
            goal = "meets" if live["p99_ms"] < 5 else "MISSES"
            print(f"live inference per bar (ml strategy on_bar: features + predict), {live['bars']} bars: "
                  f"p50 {live['p50_ms']:.2f} ms, p99 {live['p99_ms']:.2f} ms, max {live['max_ms']:.2f} ms "
                  f"({goal} the p99 < 5 ms goal)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
