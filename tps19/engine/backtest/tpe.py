"""``optimize --search tpe``: an Optuna study (TPE sampler) over a strategy's parameters.

Imported only by that command (optuna costs ~0.4 s to import).

A trial is one parameter set. Without walk-forward it is backtested on all the bars, as a grid
candidate is. With ``--walk-forward N`` the bars are cut into the grid's N+1 blocks; a trial is
backtested fold by fold on the first N blocks (each from flat, in time order), each fold's score
is reported to the pruner as the running mean, and a trial worse than the median of the completed
ones at the same fold is stopped there (pruned). The study's winner (best mean over the N folds)
is then traded on the last block, which no trial saw: that is the out-of-sample result.

Every parameter set evaluated -- pruned ones included -- is a trial of the deflated Sharpe ratio
(docs/backtesting.md, "Optuna search"). A proposal that repeats a set already evaluated runs
nothing and is not a new trial; one the strategy rejects (fast >= slow) is "invalid".

Run sequentially (``--jobs 1``, no cluster), a seed gives the same proposals, pruning decisions
and winner every time. In parallel, which trials finish first (and so what the sampler knows when
it proposes) depends on timing: such runs are not promised to repeat.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from ..strategies import ParamError, get
from .engine import BacktestConfig, BacktestResult
from .optimize import METRICS, Task, _evaluate, _init_worker, out_of_sample, score, walk_forward_windows
from .overfitting import BLOCKS, Overfitting, assess, moments, pool as pool_sketches
from .shared import mapped_pool
from .space import Dimension, check_trials

StudyProgress = Callable[[int, int, int], None]  # (trials evaluated, trials wanted, pruned so far)

# A sampler that keeps proposing sets already evaluated (a small space) or rejected ones is stopped
# after this many proposals per trial wanted: the study then reports the trials it has.
PROPOSALS_PER_TRIAL = 10
MIN_PROPOSALS = 100
# the pruner waits for this many completed trials before it stops any
PRUNER_STARTUP = 5


@dataclass
class TrialRecord:
    """One proposal of the sampler and what became of it."""

    number: int  # Optuna's trial number: the order of proposals
    params: dict[str, Any]
    state: str = "running"  # complete | pruned | invalid | repeat
    value: float | None = None  # complete: the mean of its folds' scores
    folds: list[float] = field(default_factory=list)  # each fold's score (the --metric), in time order
    metrics: list[dict[str, Any]] = field(default_factory=list)  # each fold's metrics
    sketches: list[np.ndarray] = field(default_factory=list, repr=False)
    repeat_of: int | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"number": self.number, "params": self.params, "state": self.state, "value": _finite(self.value),
                "folds": [_finite(v) for v in self.folds], "repeat_of": self.repeat_of, "error": self.error}


def _finite(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def _mean(values: list[float]) -> float:
    m = float(np.mean(values))
    return -math.inf if math.isnan(m) else m  # +inf and -inf folds (profit factor): not a number to rank


@dataclass
class StudyResult:
    log: list[TrialRecord]  # every proposal, in order
    ranked: list[TrialRecord]  # the completed trials, best first
    overfitting: Overfitting
    windows: list[tuple[int, int]]  # the folds every trial is scored on
    holdout: BacktestResult | None  # walk-forward: the winner on the last block
    holdout_window: tuple[int, int] | None
    wanted: int
    seed: int
    parallel: bool

    @property
    def winner(self) -> TrialRecord:
        return self.ranked[0]

    def count(self, state: str) -> int:
        return sum(r.state == state for r in self.log)

    @property
    def trials(self) -> int:
        """Parameter sets evaluated, pruned ones included: the deflated Sharpe's N."""
        return self.count("complete") + self.count("pruned")

    @property
    def shortfall(self) -> str | None:
        if self.trials >= self.wanted:
            return None
        return (f"the sampler found {self.trials} distinct valid parameter sets in {len(self.log)} proposals "
                f"(--trials {self.wanted}): the space is small or mostly rejected by the strategy")


def _suggest(trial: optuna.Trial, space: dict[str, Dimension]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with warnings.catch_warnings():  # optuna's note that it moved `high` onto the steps (we already did)
        warnings.simplefilter("ignore")
        for d in space.values():
            if d.kind == "choice":
                out[d.name] = trial.suggest_categorical(d.name, list(d.choices))
            elif d.kind == "int":
                out[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), step=int(d.step or 1))
            else:
                v = trial.suggest_float(d.name, d.low, d.high, step=d.step)
                out[d.name] = round(v, 10) if d.step is not None else v  # 0.1 + 2 * 0.1, as the grid writes it
    return out


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def study(
    name: str,
    space: dict[str, Dimension],
    data: dict[str, np.ndarray],
    config: BacktestConfig,
    metric: str,
    trials: int,
    seed: int,
    fixed: dict[str, Any] | None = None,
    folds: int | None = None,
    jobs: int = 1,
    pool: Executor | None = None,
    width: int | None = None,
    progress: StudyProgress | None = None,
    blocks: int = BLOCKS,
) -> StudyResult:
    """``trials`` parameter sets proposed by a seeded TPE sampler and backtested (on ``jobs`` local
    processes or on ``pool``, ``width`` trials at a time), pruned fold by fold with ``folds``."""
    if metric not in METRICS:
        raise ParamError(f"unknown metric {metric!r} (choose from {', '.join(METRICS)})")
    if trials < 1:
        raise ParamError("--trials must be at least 1")
    if not space:
        raise ParamError("a TPE search needs at least one --grid range to search")
    check_trials(space, trials)
    n = len(data["close"])
    if folds:
        wins = walk_forward_windows(n, folds)
        windows = [w[0] for w in wins]  # blocks 0..N-1
        holdout: tuple[tuple[int, int], tuple[int, int]] | None = wins[-1]  # warm-up block, test block N
    else:
        windows, holdout = [(0, n)], None
    parallel = pool is not None or jobs > 1
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # constant_liar: in parallel, a trial still running counts as a poor one, so the sampler does
    # not propose its neighbourhood again and again meanwhile
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)
    pruner: optuna.pruners.BasePruner = (optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP)
                                         if len(windows) > 1 else optuna.pruners.NopPruner())
    st = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    log: list[TrialRecord] = []
    done: dict[str, TrialRecord] = {}
    running: dict[str, tuple[TrialRecord, optuna.Trial]] = {}
    followers: dict[str, list[tuple[TrialRecord, optuna.Trial]]] = {}
    inflight: dict[Future[Any], str] = {}
    cap = max(PROPOSALS_PER_TRIAL * trials, MIN_PROPOSALS)
    width = max(1, width or jobs) if parallel else 1
    evaluated = pruned = 0

    with ExitStack() as stack:
        executor: Executor | None = pool
        if pool is None and jobs > 1:
            executor = stack.enter_context(mapped_pool(data, jobs, _init_worker))
        elif pool is None:
            _init_worker(data)

        def submit(key: str) -> None:
            rec = running[key][0]
            lo, hi = windows[len(rec.folds)]
            task: Task = (name, rec.params, config, lo, hi, blocks)
            if executor is None:
                f: Future[Any] = Future()
                try:
                    f.set_result(_evaluate(task))
                except Exception as err:  # raised below, from f.result(), as a pool's would be
                    f.set_exception(err)
            else:
                f = executor.submit(_evaluate, task)
            inflight[f] = key

        def finish(key: str, state: str) -> None:
            nonlocal evaluated, pruned
            rec, trial = running.pop(key)
            rec.state = state
            if state == "complete":
                rec.value = _mean(rec.folds)
                st.tell(trial, rec.value)
            else:
                pruned += 1
                st.tell(trial, state=TrialState.PRUNED)
            evaluated += 1
            done[key] = rec
            for frec, ftrial in followers.pop(key, []):
                _replay(st, ftrial, frec, rec)
            if progress:
                progress(evaluated, trials, pruned)

        try:
            while True:
                waiting = sum(len(v) for v in followers.values())
                while len(running) + waiting < width and evaluated + len(running) < trials and len(log) < cap:
                    trial = st.ask()
                    rec = TrialRecord(trial.number, {**(fixed or {}), **_suggest(trial, space)})
                    log.append(rec)
                    try:
                        get(name)(rec.params)
                    except ParamError as err:
                        rec.state, rec.error = "invalid", str(err)
                        st.tell(trial, state=TrialState.FAIL)
                        continue
                    key = _key(rec.params)
                    if key in done:
                        _replay(st, trial, rec, done[key])
                    elif key in running:  # in parallel: the same set is being evaluated; wait for it
                        followers.setdefault(key, []).append((rec, trial))
                        waiting += 1
                    else:
                        running[key] = (rec, trial)
                        submit(key)
                if not inflight:
                    break
                ready, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for f in sorted(ready, key=lambda f: running[inflight[f]][0].number):
                    key = inflight.pop(f)
                    rec, trial = running[key]
                    _params, metrics, sk = f.result()
                    rec.folds.append(score(metrics, metric))
                    rec.metrics.append(metrics)
                    rec.sketches.append(sk)
                    step = len(rec.folds) - 1
                    if len(windows) > 1:
                        trial.report(_mean(rec.folds), step)
                    if len(rec.folds) == len(windows):
                        finish(key, "complete")
                    elif trial.should_prune():
                        finish(key, "pruned")
                    else:
                        submit(key)
        finally:
            for f in inflight:
                f.cancel()

    evaluated_recs = [r for r in log if r.state in ("complete", "pruned")]
    ranked = sorted((r for r in evaluated_recs if r.state == "complete"),
                    key=lambda r: (-(r.value if r.value is not None else -math.inf), r.number))
    if not ranked:
        errors = [r.error for r in log if r.error]
        raise ParamError("no proposed parameter set was valid for the strategy"
                         + (f" (last: {errors[-1]})" if errors else ""))
    if not any(r.value is not None and math.isfinite(r.value) for r in ranked):
        # e.g. --walk-forward 500 on 5,760 bars: folds of 11 bars, shorter than any window of the
        # strategy, so no trial trades; a "winner" of that (the first proposal) is no answer
        where = (f" on any of the {len(windows)} folds (the shortest {min(b - a for a, b in windows)} bars: "
                 "use fewer --walk-forward folds or more bars)" if folds else " on these bars")
        raise ParamError(f"no trial scored a {metric}{where}")
    sketches = {r.number: (pool_sketches(r.sketches, blocks) if len(r.sketches) > 1 else r.sketches[0])
                for r in evaluated_recs}
    # every evaluated set is a trial of the DSR (its N), a pruned one with its Sharpe over the folds
    # it ran put on the winner's footing (trial_sharpes); the CSCV ranks trials on the same bars,
    # so only the completed ones
    some_pruned = any(r.state == "pruned" for r in evaluated_recs)
    basis = ("per-bar returns of every trial over all the bars" if not folds else
             f"per-bar returns over the {len(windows)} folds the trials were scored on"
             + ("; a pruned trial's Sharpe over the folds it ran, its deviation from the trials' mean scaled by "
                "sqrt(its returns / the winner's); PBO over the completed trials" if some_pruned else ""))
    trial_sketches = [sketches[r.number] for r in evaluated_recs]
    verdict = assess(sketches[ranked[0].number], trial_sketches, basis=basis,
                     pbo_sketches=[sketches[r.number] for r in ranked] if some_pruned else None,
                     trial_sharpes=pruned_on_full_length(trial_sketches) if some_pruned else None)
    oos = None
    if holdout is not None:
        oos = out_of_sample(name, ranked[0].params, data, config, holdout[0], holdout[1])
    return StudyResult(log, ranked, verdict, windows, oos, holdout[1] if holdout else None, trials, seed, parallel)


def pruned_on_full_length(trial_sketches: list[np.ndarray]) -> np.ndarray:
    """The per-bar Sharpe ratios of a study's trials as if every one had run all the folds.

    A trial pruned after T_i of the T returns the completed trials have shows a Sharpe ratio whose
    standard error is about 1/sqrt(T_i), not 1/sqrt(T): taken raw, its noise alone would widen the
    trials' variance V and so raise the bar the winner is held to (SR0). Under the DSR's null (no
    skill) its deviation from the trials' mean shrinks by sqrt((T_i - 1) / (T - 1)) when measured
    over T returns, which is what it contributes here; it counts in N like any trial."""
    ms = [moments(s) for s in trial_sketches]
    sr = np.array([m.sharpe for m in ms])
    n = np.array([m.n for m in ms], dtype=float)
    full = n.max()
    if len(sr) < 2 or full < 2:
        return sr
    mean = float(sr.mean())
    return np.asarray(mean + (sr - mean) * np.sqrt(np.maximum(n - 1, 0.0) / (full - 1)))


def _replay(st: optuna.Study, trial: optuna.Trial, rec: TrialRecord, orig: TrialRecord) -> None:
    """A proposal of a set already evaluated: told the same outcome, nothing run again."""
    rec.state, rec.repeat_of, rec.value, rec.folds = "repeat", orig.number, orig.value, list(orig.folds)
    if len(orig.folds) > 1 or orig.state == "pruned":
        for i in range(len(orig.folds)):
            trial.report(_mean(orig.folds[: i + 1]), i)
    if orig.state == "complete":
        st.tell(trial, orig.value)
    else:
        st.tell(trial, state=TrialState.PRUNED)
