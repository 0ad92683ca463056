"""Training: features and labels from bars, purged walk-forward CV, the final fit.

CPU-bound and synchronous: callers run it in a worker thread (``asyncio.to_thread``). The fold
loop is one ``joblib.Parallel`` call over the module-level ``fit_fold``, so a joblib backend
(processes with ``--jobs``, or a Dask cluster) can run the folds anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .cv import purged_splits
from .drift import reference_bins
from .features import FEATURE_NAMES, FEATURE_VERSION, LOOKBACK, feature_frame
from .baselines import Segment, oos_figures
from .intervals import auc_interval, placements
from .labels import forward_return, make_labels
from .pipelines import MODEL_KINDS, build_pipeline, limit_threads, model_params
from .scoring import classification_scores, positions

Progress = Callable[[int, int], None]
# `--model auto` fits these on the same folds and keeps the one with the higher pooled CV AUC: a
# linear model finds a linear signal that boosted trees smear (AR(1) phi=0.5, horizon 5: AUC
# 0.575 for hgb against 0.634 at best), trees find interactions a linear model cannot.
AUTO_CANDIDATES = ("logreg", "lasso", "hgb")


@dataclass(frozen=True)
class TrainConfig:
    model: str = "auto"
    horizon: int = 5
    threshold_bps: float = 0.0
    folds: int = 5
    embargo: int = 0
    seed: int = 19
    fee: float = 0.001
    enter: float = 0.55
    exit: float = 0.5
    jobs: int = 1
    threads: int = 1  # TPS19_ML__THREADS: BLAS + OpenMP threads of each fit (and of the whole run)

    def __post_init__(self) -> None:
        if self.model not in (*MODEL_KINDS, "auto"):
            raise ValueError(f"unknown model {self.model!r} (choose from auto, {', '.join(MODEL_KINDS)})")
        if not 1 <= self.horizon <= 10_000:
            raise ValueError("horizon must be within 1..10000 bars")
        if not 1 <= self.folds <= 50:
            raise ValueError("folds must be within 1..50")
        if not 0 <= self.embargo <= 100_000:
            raise ValueError("embargo must be within 0..100000 bars")
        if not 0 <= self.fee < 0.1:
            raise ValueError("fee must be within 0..0.1 (a fraction of notional)")
        if not 0 < self.exit <= self.enter < 1:
            raise ValueError("need 0 < exit <= enter < 1")
        if not 1 <= self.threads <= 256:
            raise ValueError("threads must be within 1..256")


@dataclass
class TrainResult:
    pipeline: Any
    config: TrainConfig
    start_ms: int
    end_ms: int
    bars: int
    cv: dict[str, Any]
    oos: dict[str, Any]
    feature_stats: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    kind: str = ""  # the model kept (``config.model`` unless it is "auto")

    def __post_init__(self) -> None:
        if not self.kind:
            self.kind = self.config.model


def fit_fold(kind: str, seed: int, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
             threads: int = 1) -> np.ndarray:
    """Fit one fold's pipeline and return P(up) for its test rows (a worker runs this)."""
    if len(np.unique(y_train)) < 2:
        return np.full(len(x_test), float(y_train.mean()) if len(y_train) else 0.5)
    # ``threads`` OpenMP *and* BLAS threads (default one): on a busy machine HistGradientBoosting's
    # threads spin against each other (3,000 bars took 44 s with two threads, 0.9 s with one), and
    # idle OpenBLAS threads busy-wait: limiting OpenMP alone still cost 2x the CPU time of the fits
    # (100k bars: 14.6 s against 6.6 s). --jobs parallelises folds instead.
    limit_threads(threads)  # a no-op in the training process; once in a --jobs / cluster worker
    pipe = build_pipeline(kind, seed)
    pipe.fit(x_train, y_train)
    return np.asarray(pipe.predict_proba(x_test)[:, 1], dtype=float)


def _fit_final(kind: str, cfg: TrainConfig, x: np.ndarray, y: np.ndarray) -> Any:
    limit_threads(cfg.threads)
    pipe = build_pipeline(kind, cfg.seed)
    pipe.fit(x, y)
    return pipe


def _min_bars(cfg: TrainConfig) -> int:
    return LOOKBACK + cfg.horizon + 50 * (cfg.folds + 1)


def train(df: Any, cfg: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Cross-validate, then fit on every labelled row. ``df``: ts/open/high/low/close/volume."""
    # the whole run, not just the fits: numpy's BLAS threads spin between the report's array ops too
    limit_threads(cfg.threads)
    return _train(df, cfg, progress)


def _train(df: Any, cfg: TrainConfig, progress: Progress | None = None) -> TrainResult:
    import joblib

    n = len(df["close"])  # a DataFrame or a dict of columns
    if n < _min_bars(cfg):
        raise ValueError(f"not enough bars to train: {n} (need at least {_min_bars(cfg)} for "
                         f"{cfg.folds} folds, horizon {cfg.horizon} and {LOOKBACK} bars of feature warm-up)")
    x = feature_frame(df)
    close = np.asarray(df["close"], dtype=float)
    ts = np.asarray(df["ts"], dtype=np.int64)
    y = make_labels(close, cfg.horizon, cfg.threshold_bps)
    has_x = ~np.isnan(x).any(axis=1)
    labelled = has_x & ~np.isnan(y)
    if labelled.sum() < 100 or len(np.unique(y[labelled])) < 2:
        raise ValueError("too few labelled rows with both outcomes: lower --threshold-bps or give more bars")
    folds = purged_splits(n, cfg.horizon, cfg.folds, cfg.embargo, usable=has_x)
    kinds = AUTO_CANDIDATES if cfg.model == "auto" else (cfg.model,)
    total = len(kinds) * len(folds) + 1
    done = 0
    if progress:
        progress(done, total)
    # a generator: each fold's training rows are copied only when joblib dispatches it, not all
    # folds' copies at once (on 500,000 bars that is ~150 MB less at the peak)
    tasks = (joblib.delayed(fit_fold)(kind, cfg.seed, x[tr], y[tr].astype(int), x[f.test], cfg.threads)
             for kind in kinds for f in folds for tr in (f.train[labelled[f.train]],))
    flat: list[np.ndarray] = []
    for p in joblib.Parallel(n_jobs=cfg.jobs, return_as="generator")(tasks):
        flat.append(p)
        done += 1
        if progress:
            progress(done, total)
    reports = {kind: _cv_report(folds, flat[i * len(folds):(i + 1) * len(folds)], y, labelled, ts, cfg)
               for i, kind in enumerate(kinds)}
    kind = max(kinds, key=lambda k: -1.0 if reports[k]["roc_auc"] is None else reports[k]["roc_auc"])
    preds = flat[kinds.index(kind) * len(folds):(kinds.index(kind) + 1) * len(folds)]
    cv = reports[kind]
    cv["selection"] = {"by": "roc_auc", "chosen": kind, "auto": cfg.model == "auto",
                       "candidates": {k: {m: r[m] for m in ("roc_auc", "roc_auc_ci95", "log_loss", "accuracy")}
                                      for k, r in reports.items()}}
    # what --threshold-bps left out of the scores: test rows with an outcome inside +-threshold
    fwd = forward_return(close, cfg.horizon)
    dropped = has_x & ~np.isnan(fwd) & np.isnan(y)
    test_rows = np.concatenate([f.test for f in folds])
    n_drop = int(dropped[test_rows].sum())
    cv["threshold"] = {"bps": cfg.threshold_bps, "test_rows_dropped": n_drop, "test_rows_scored": int(cv["rows"]),
                       "share_dropped": n_drop / (n_drop + cv["rows"]) if n_drop + cv["rows"] else 0.0}
    open_ = np.asarray(df["open"], dtype=float)
    segments = [Segment(positions(p, cfg.enter, cfg.exit), open_[f.test], close[f.test])
                for f, p in zip(folds, preds, strict=True)]
    oos = oos_figures(segments, cfg.fee, cfg.enter, cfg.exit, seed=cfg.seed)
    pipe = _fit_final(kind, cfg, x[labelled], y[labelled].astype(int))
    if progress:
        progress(total, total)
    return TrainResult(pipeline=pipe, config=cfg, start_ms=int(ts[0]), end_ms=int(ts[-1]), bars=n, cv=cv, oos=oos,
                       feature_stats=reference_bins(x[has_x], FEATURE_NAMES),
                       params={"horizon": cfg.horizon, "threshold_bps": cfg.threshold_bps, "folds": cfg.folds,
                               "embargo": cfg.embargo, "seed": cfg.seed, "fee": cfg.fee, "enter": cfg.enter,
                               "exit": cfg.exit, "model": model_params(pipe), "feature_version": FEATURE_VERSION,
                               "model_choice": cfg.model},
                       kind=kind)


def _cv_report(folds: list[Any], preds: list[np.ndarray], y: np.ndarray, labelled: np.ndarray,
               ts: np.ndarray, cfg: TrainConfig) -> dict[str, Any]:
    per_fold = []
    ys, ps = [], []
    for f, p in zip(folds, preds, strict=True):
        keep = labelled[f.test]
        yt, pt = y[f.test][keep].astype(int), p[keep]
        ys.append(yt)
        ps.append(pt)
        per_fold.append({"fold": f.index, "train_rows": int(len(f.train)), "test_rows": int(len(f.test)),
                         "test_start_ms": int(ts[f.test_start]), "test_end_ms": int(ts[f.test_end - 1]),
                         **classification_scores(yt, pt)})
    y_all, p_all = np.concatenate(ys), np.concatenate(ps)
    both = 0 < int(y_all.sum()) < len(y_all)
    # one ranking for the pooled AUC and its interval (of the clipped probabilities, as the scores use)
    placed = placements(y_all == 1, np.clip(p_all, 1e-12, 1 - 1e-12)) if both else None
    pooled = classification_scores(y_all, p_all, auc=placed[0] if placed else None)
    ci = auc_interval(y_all, p_all, cfg.horizon, seed=cfg.seed, placed=placed)
    return {**pooled, "roc_auc_ci95": [ci["low"], ci["high"]],
            "auc_interval": {k: ci[k] for k in ("block", "draws", "effective_rows", "level")}, "folds": per_fold}
