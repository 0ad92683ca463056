"""Parameter search (grid / random) in parallel processes, and walk-forward analysis.

Walk-forward: the bars are cut into N+1 equal consecutive blocks; fold k optimises on block k
(in-sample) and then trades the chosen parameters on block k+1 (out-of-sample). Test blocks
never overlap each other nor their own training block. Out-of-sample signals may *read* the
training bars before the test window (indicator warm-up: the past, never the future), but
positions and the equity of every test window start flat at the test window's first bar. The
headline is the chained out-of-sample result.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ...numbers import NumberError, to_float
from ..strategies import ParamError, get
from ..strategies.base import target_changes
from .engine import BacktestConfig, BacktestResult, run_backtest
from .stops import simulate_target
from .metrics import bar_returns, compute_metrics
from .overfitting import BLOCKS, Overfitting, assess, pool as pool_sketches, sketch
from .shared import MappedBars, mapped_pool
from .trades import FillTable, TradeTable

METRICS = ("sharpe", "sortino", "total_return", "cagr", "calmar", "profit_factor", "win_rate", "final_equity", "max_drawdown")

ProgressFn = Callable[[int, int], None]
# A grid is enumerated in memory: bound it so a typo (step 1e-300) is an error, not a hang.
MAX_GRID_VALUES = 10_000
MAX_COMBINATIONS = 1_000_000


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """['fast=5:20:5', 'k=1.5,2,2.5'] -> {'fast': [5, 10, 15, 20], 'k': [1.5, 2.0, 2.5]} (stop inclusive)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, spec = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not spec:
            raise ParamError(f"bad --grid {item!r}: expected key=start:stop:step or key=a,b,c")
        try:
            if ":" in spec:
                parts = spec.split(":")
                if len(parts) not in (2, 3):
                    raise ValueError
                nums = [to_float(p, key) for p in parts]
                start, stop = nums[0], nums[1]
                step = nums[2] if len(nums) == 3 else 1.0
                if step <= 0 or stop < start:
                    raise ValueError
                span = (stop - start) / step
                if not span < MAX_GRID_VALUES:  # also catches an overflow to inf
                    raise ParamError(f"bad --grid {key}: more than {MAX_GRID_VALUES:,} values (use a larger step)")
                count = int(math.floor(span + 1e-9)) + 1
                vals: list[Any] = [start + i * step for i in range(count)]
                if all(p.lstrip("-").isdigit() for p in parts):
                    vals = [int(round(v)) for v in vals]
                else:
                    vals = [round(v, 10) for v in vals]
            else:
                raw = [p.strip() for p in spec.split(",") if p.strip()]
                vals = []
                for p in raw:
                    if p.lower() in ("true", "false"):
                        vals.append(p.lower() == "true")
                    elif p.lstrip("-").isdigit():
                        to_float(p, key)
                        vals.append(int(p))
                    else:
                        vals.append(to_float(p, key))
        except NumberError as err:
            raise ParamError(f"bad --grid {key}: {err.problem}") from None
        except ParamError:
            raise
        except ValueError:
            raise ParamError(f"bad --grid {item!r}: expected key=start:stop:step (step > 0) or key=a,b,c") from None
        if not vals:
            raise ParamError(f"bad --grid {item!r}: no values")
        grid[key] = vals
    return grid


def candidates(strategy: str, grid: dict[str, list[Any]], fixed: dict[str, Any] | None = None,
               n_random: int | None = None, seed: int = 19) -> list[dict[str, Any]]:
    """Valid parameter sets (invalid combinations such as fast >= slow are skipped)."""
    cls = get(strategy)
    unknown = set(grid) - set(cls.Params.names())
    if unknown:
        raise ParamError(f"unknown parameter(s) for {strategy!r}: {', '.join(sorted(unknown))}")
    keys = list(grid)
    if math.prod(len(v) for v in grid.values()) > MAX_COMBINATIONS:
        raise ParamError(f"the grid has more than {MAX_COMBINATIONS:,} combinations: narrow it")
    combos = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(grid[k] for k in keys))]
    out = []
    for c in combos:
        p = {**(fixed or {}), **c}
        try:
            cls(p)
        except ParamError:
            continue
        out.append(p)
    if n_random is not None and n_random < len(out):
        out = random.Random(seed).sample(out, n_random)
    if not out:
        raise ParamError("the grid has no valid parameter combination")
    return out


def score(metrics: dict[str, Any], metric: str) -> float:
    v = metrics.get(metric)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return -math.inf
    return float(v)


# --- worker side ---------------------------------------------------------------------------

_DATA: dict[str, np.ndarray] = {}


def _init_worker(data: dict[str, np.ndarray] | MappedBars) -> None:
    _DATA.clear()
    _DATA.update(data.open() if isinstance(data, MappedBars) else data)


def cluster_pool(client: Any, data: dict[str, np.ndarray]) -> Executor:
    """A Dask cluster (``--cluster``) as the worker pool: every worker gets its own copy of ``data``
    (no shared memory across machines)."""
    from ..distributed import executor

    return executor(client, _init_worker, (data,))


def _slice(data: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    return {k: v[lo:hi] for k, v in data.items()}


Task = tuple[str, dict[str, Any], BacktestConfig, int, int, int]


def _evaluate(args: Task) -> tuple[Any, ...]:
    """(params, metrics), plus the sketch of its per-bar returns in ``blocks`` blocks (overfitting.py)
    when ``blocks`` > 0."""
    name, params, config, lo, hi, blocks = args
    res = run_backtest(get(name)(params), _slice(_DATA, lo, hi), config)
    if blocks:
        return params, res.metrics, sketch(bar_returns(res.equity, config.cash), blocks)
    return params, res.metrics


def evaluate_many(
    name: str,
    param_sets: list[dict[str, Any]],
    data: dict[str, np.ndarray],
    config: BacktestConfig,
    lo: int = 0,
    hi: int | None = None,
    jobs: int = 1,
    progress: ProgressFn | None = None,
    pool: Executor | None = None,
    sketches: list[np.ndarray] | None = None,
    blocks: int = BLOCKS,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every parameter set backtested on bars lo:hi, in ``param_sets`` order. ``sketches``: a list
    that receives each trial's return sketch, in the same order (for the overfitting figures)."""
    hi = len(data["close"]) if hi is None else hi
    tasks: list[Task] = [(name, p, config, lo, hi, blocks if sketches is not None else 0) for p in param_sets]
    out: list[Any] = []
    if pool is None and jobs <= 1:
        _init_worker(data)
        for i, t in enumerate(tasks):
            out.append(_evaluate(t))
            if progress:
                progress(i + 1, len(tasks))
    elif pool is None:
        with mapped_pool(data, jobs, _init_worker) as own:
            out = _run_tasks(own, tasks, jobs, progress)
    else:
        out = _run_tasks(pool, tasks, jobs, progress)
    if sketches is not None:
        sketches.extend(r[2] for r in out)
        return [(r[0], r[1]) for r in out]
    return out


def _run_tasks(pool: Executor, tasks: list[Any], jobs: int, progress: ProgressFn | None) -> list[Any]:
    out = []
    for i, r in enumerate(pool.map(_evaluate, tasks, chunksize=max(1, len(tasks) // (4 * max(jobs, 1))))):
        out.append(r)
        if progress:
            progress(i + 1, len(tasks))
    return out


def rank(results: list[tuple[dict[str, Any], dict[str, Any]]], metric: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    if metric not in METRICS:
        raise ParamError(f"unknown metric {metric!r} (choose from {', '.join(METRICS)})")
    return sorted(results, key=lambda r: score(r[1], metric), reverse=True)


@dataclass
class SearchResult:
    """A grid/random search: the trials ranked in-sample, and how far its winner can be trusted."""

    ranked: list[tuple[dict[str, Any], dict[str, Any]]]
    overfitting: Overfitting


def search(name: str, param_sets: list[dict[str, Any]], data: dict[str, np.ndarray], config: BacktestConfig,
           metric: str, jobs: int = 1, progress: ProgressFn | None = None,
           pool: Executor | None = None, blocks: int = BLOCKS) -> SearchResult:
    """Every parameter set on all the bars, ranked by ``metric``; the winner's deflated Sharpe and
    the search's PBO (CSCV over ``blocks`` blocks of bars) count every trial."""
    if metric not in METRICS:
        raise ParamError(f"unknown metric {metric!r} (choose from {', '.join(METRICS)})")
    sketches: list[np.ndarray] = []
    results = evaluate_many(name, param_sets, data, config, jobs=jobs, progress=progress, pool=pool, sketches=sketches,
                            blocks=blocks)
    # sorted() is stable: ties keep the candidates' order, as rank() does
    order = sorted(range(len(results)), key=lambda i: score(results[i][1], metric), reverse=True)
    verdict = assess(sketches[order[0]], sketches, basis="per-bar returns of every trial over all the bars")
    return SearchResult([results[i] for i in order], verdict)


# --- walk-forward --------------------------------------------------------------------------


@dataclass
class Fold:
    index: int
    train: tuple[int, int]  # [lo, hi) bar indices
    test: tuple[int, int]
    best_params: dict[str, Any] = field(default_factory=dict)
    in_sample: dict[str, Any] = field(default_factory=dict)
    out_of_sample: dict[str, Any] = field(default_factory=dict)


def walk_forward_windows(n_bars: int, folds: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(train, test) index windows: N+1 equal consecutive blocks, test = the block after train."""
    if folds < 1:
        raise ParamError("--walk-forward needs at least 1 fold")
    size = n_bars // (folds + 1)
    if size < 2:
        raise ParamError(f"not enough bars ({n_bars}) for {folds} walk-forward folds")
    edges = [i * size for i in range(folds + 1)] + [n_bars]
    return [((edges[k], edges[k + 1]), (edges[k + 1], edges[k + 2])) for k in range(folds)]


def out_of_sample(name: str, params: dict[str, Any], data: dict[str, np.ndarray], config: BacktestConfig,
                  train: tuple[int, int], test: tuple[int, int]) -> BacktestResult:
    """Trade ``params`` on the test window only (signals may read earlier bars for warm-up)."""
    strat = get(name)(params)
    seen = _slice(data, train[0], test[1])
    frame = strat.generate(seen)
    off = test[0] - train[0]
    tgt = frame.target[off:].copy()
    d = _slice(data, test[0], test[1])
    columns = strat.protection_columns(seen)
    if columns is not None:
        columns = {k: np.asarray(v)[off:] for k, v in columns.items()}
    # a target already held at the window's first bar is a change there (the window starts flat)
    equity, units, fills, trades = simulate_target(d["ts"], d, tgt, config, target_changes(tgt)[0], columns)
    res = BacktestResult(name, strat.param_dict(), config, d["ts"], d["close"], equity, units, fills, trades)
    res.metrics = compute_metrics(res)
    return res


@dataclass
class WalkForwardResult:
    folds: list[Fold]
    equity: np.ndarray  # chained out-of-sample equity
    ts: np.ndarray
    metrics: dict[str, Any]
    trades: TradeTable
    overfitting: Overfitting | None = None


def walk_forward(name: str, param_sets: list[dict[str, Any]], data: dict[str, np.ndarray], config: BacktestConfig,
                 folds: int, metric: str, jobs: int = 1, progress: ProgressFn | None = None,
                 pool: Executor | None = None, blocks: int = BLOCKS) -> WalkForwardResult:
    """The folds in order; the overfitting figures pool the test windows: the chained out-of-sample
    path is judged against every candidate traded on the same test windows (each window from flat,
    as the in-sample search trades a window) -- fold k+1's in-sample run is exactly that for fold k's
    test window, so only the last test window costs one more pass."""
    windows = walk_forward_windows(len(data["close"]), folds)
    total = (len(windows) + 1) * len(param_sets)
    done = 0
    per_window: list[list[np.ndarray]] = []
    out_folds: list[Fold] = []
    eq_parts, ts_parts, pos_parts = [], [], []
    fills: list[FillTable] = []
    trades: list[TradeTable] = []
    cash = config.cash
    with ExitStack() as stack:
        if pool is None and jobs > 1:
            pool = stack.enter_context(mapped_pool(data, jobs, _init_worker))
        for k, (train, test) in enumerate(windows):
            def prog(i: int, n: int, base: int = done) -> None:
                if progress:
                    progress(base + i, total)

            sk: list[np.ndarray] = []
            ranked = rank(evaluate_many(name, param_sets, data, config, train[0], train[1], jobs, prog, pool, sk, blocks),
                          metric)
            per_window.append(sk)
            done += len(param_sets)
            best, is_metrics = ranked[0]
            cfg = replace(config, cash=cash)
            oos = out_of_sample(name, best, data, cfg, train, test)
            cash = oos.final_equity
            out_folds.append(Fold(k, train, test, best, is_metrics, oos.metrics))
            eq_parts.append(oos.equity)
            ts_parts.append(oos.ts)
            pos_parts.append(oos.position)
            fills.append(oos.fills)
            trades.append(oos.trades)
        last = windows[-1][1]

        def prog_last(i: int, n: int, base: int = done) -> None:
            if progress:
                progress(base + i, total)

        sk_last: list[np.ndarray] = []
        evaluate_many(name, param_sets, data, config, last[0], last[1], jobs, prog_last, pool, sk_last, blocks)
        per_window.append(sk_last)
    chained = BacktestResult(name, {}, config, np.concatenate(ts_parts), np.array([]), np.concatenate(eq_parts),
                             np.concatenate(pos_parts), FillTable.concat(fills), TradeTable.concat(trades))
    tests = per_window[1:]  # window k+1 is fold k's test window
    pooled = [pool_sketches([w[i] for w in tests], blocks) for i in range(len(param_sets))]
    verdict = assess(sketch(bar_returns(chained.equity, config.cash), blocks), pooled,
                     basis="per-bar returns of the chained test windows; trials: every candidate on the same windows")
    return WalkForwardResult(out_folds, chained.equity, chained.ts, compute_metrics(chained), chained.trades, verdict)
