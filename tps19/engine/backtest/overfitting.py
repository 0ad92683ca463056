"""How much a search's winner can be trusted: the deflated Sharpe ratio and the probability of
backtest overfitting (formulas and a worked example in docs/backtesting.md).

* Deflated Sharpe ratio (Bailey & López de Prado, 2014): the probability that the winner's true
  Sharpe ratio is above zero, given that it is the best of ``trials`` whose Sharpe ratios vary
  by ``V``, and given the skew and kurtosis of its returns. The best of N lucky strategies is
  expected to reach ``SR0 = sqrt(V) * ((1 - g) * Z(1 - 1/N) + g * Z(1 - 1/(N e)))``; the DSR is
  ``Phi((SR - SR0) * sqrt(T - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2))``.
* Probability of backtest overfitting (CSCV, Bailey, Borwein, López de Prado & Zhu, 2015): the
  bars are cut into S blocks; for every way of choosing S/2 of them as "in-sample", the trial
  best in-sample is ranked among all trials on the other half. PBO is the share of those
  splits where it lands in the bottom half (logit of its relative rank <= 0).

Both work from *sketches*: per block, the count and the sums of r, r^2, r^3, r^4 of a trial's
per-bar returns. A worker sends 16 x 5 floats per trial instead of its equity curve, sums over
blocks are exact unions, and a walk-forward's test windows pool by concatenating their blocks.
Sharpe ratios here are per bar (not annualised) and use the sample standard deviation, so
``sharpe_per_bar * sqrt(bars per year)`` is the Sharpe the reports show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from statistics import NormalDist
from typing import Any

import numpy as np

BLOCKS = 16  # CSCV partitions (even); every sketch has this many blocks
EULER_GAMMA = 0.5772156649015329
CONFIDENCE = 0.95  # a winner below this DSR is "not distinguishable from luck"
# CSCV over S=16 blocks has C(16, 8) = 12,870 splits; with many trials the splits are sampled so
# the (splits x trials) arrays stay near this many cells (seeded: the same search gives the same PBO)
MAX_CELLS = 4_000_000

_N = NormalDist()


def sketch(returns: np.ndarray, blocks: int = BLOCKS) -> np.ndarray:
    """(blocks, 5) array: per consecutive block of ``returns``, [count, sum r, sum r^2, sum r^3, sum r^4]."""
    r = np.asarray(returns, dtype=float)
    edges = np.linspace(0, len(r), blocks + 1).astype(int)
    out = np.zeros((blocks, 5))
    out[:, 0] = np.diff(edges)
    if len(r):
        p = r.copy()
        for k in range(1, 5):
            c = np.concatenate(([0.0], np.cumsum(p)))
            out[:, k] = c[edges[1:]] - c[edges[:-1]]
            if k < 4:
                p *= r
    return out


def pool(sketches: list[np.ndarray], blocks: int = BLOCKS) -> np.ndarray:
    """One trial's sketches of consecutive windows (a walk-forward's test windows) as one sketch
    of ``blocks`` blocks: the windows' blocks in order, merged into ``blocks`` consecutive groups."""
    rows = np.concatenate(sketches)
    edges = np.linspace(0, len(rows), blocks + 1).astype(int)
    c = np.concatenate((np.zeros((1, 5)), np.cumsum(rows, axis=0)))
    return np.asarray(c[edges[1:]] - c[edges[:-1]])


@dataclass(frozen=True)
class Moments:
    n: int
    mean: float
    sd: float  # sample (ddof = 1)
    skew: float  # biased (population) estimates, as in the paper
    kurt: float  # not excess: 3 for a normal distribution

    @property
    def sharpe(self) -> float:
        """Per-bar Sharpe ratio; 0 for a trial whose returns never vary (it never traded)."""
        return self.mean / self.sd if self.sd > 0 else 0.0


def moments(sk: np.ndarray) -> Moments:
    n, s1, s2, s3, s4 = (float(x) for x in np.asarray(sk).sum(axis=0))
    if n < 2:
        return Moments(int(n), s1 / n if n else 0.0, 0.0, 0.0, 3.0)
    m = s1 / n
    m2 = max(s2 / n - m * m, 0.0)
    m3 = s3 / n - 3 * m * s2 / n + 2 * m**3
    m4 = s4 / n - 4 * m * s3 / n + 6 * m * m * s2 / n - 3 * m**4
    sd = math.sqrt(m2 * n / (n - 1))
    if m2 <= 0 or sd < 1e-12 * max(abs(m), 1e-300):
        return Moments(int(n), m, 0.0, 0.0, 3.0)
    return Moments(int(n), m, sd, m3 / m2**1.5, m4 / m2**2)


def expected_max_sharpe(variance: float, trials: int) -> float:
    """SR0: the Sharpe ratio the best of ``trials`` skill-less trials is expected to show."""
    if trials < 2 or not variance > 0:
        return 0.0
    a = _N.inv_cdf(1 - 1 / trials)
    b = _N.inv_cdf(1 - 1 / (trials * math.e))
    return math.sqrt(variance) * ((1 - EULER_GAMMA) * a + EULER_GAMMA * b)


def probabilistic_sharpe(sr: float, benchmark: float, n: int, skew: float, kurt: float) -> float | None:
    """P(true Sharpe > benchmark) for an observed per-bar ``sr`` over ``n`` returns."""
    if n < 2:
        return None
    var = 1 - skew * sr + (kurt - 1) / 4 * sr * sr
    if not var > 0:
        return None
    return _N.cdf((sr - benchmark) * math.sqrt(n - 1) / math.sqrt(var))


def deflated_sharpe(winner: Moments, trial_sharpes: np.ndarray) -> tuple[float | None, float]:
    """(DSR of ``winner`` among ``trial_sharpes`` (per bar, every trial including the winner), SR0)."""
    srs = np.asarray(trial_sharpes, dtype=float)
    var = float(np.var(srs, ddof=1)) if len(srs) > 1 else 0.0
    sr0 = expected_max_sharpe(var, len(srs))
    return probabilistic_sharpe(winner.sharpe, sr0, winner.n, winner.skew, winner.kurt), sr0


def _sharpe_of(n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        var = (s2 - n * mean * mean) / (n - 1)
        sr = mean / np.sqrt(var)
    return np.where((var > 0) & (n > 1), sr, 0.0)


def splits(blocks: int, trials: int, max_cells: int = MAX_CELLS, seed: int = 19) -> np.ndarray:
    """The in-sample halves CSCV uses, as a (splits, blocks) 0/1 matrix: all C(S, S/2), or a
    seeded sample of them when there are too many trials to use all."""
    from itertools import combinations

    half = blocks // 2
    total = math.comb(blocks, half)
    keep = max(100, max_cells // max(trials, 1))
    if keep >= total:
        chosen = list(combinations(range(blocks), half))
    else:
        rng = np.random.default_rng(seed)
        picks = sorted(rng.choice(total, size=keep, replace=False).tolist())
        chosen, want = [], 0
        for i, c in enumerate(combinations(range(blocks), half)):
            if i == picks[want]:
                chosen.append(c)
                want += 1
                if want == len(picks):
                    break
    m = np.zeros((len(chosen), blocks))
    for i, c in enumerate(chosen):
        m[i, list(c)] = 1.0
    return m


def probability_of_overfitting(sketches: list[np.ndarray], seed: int = 19) -> dict[str, Any] | None:
    """CSCV over the trials' sketches (same blocks for all). None with fewer than 2 trials or
    too few bars for every block to hold two."""
    if len(sketches) < 2:
        return None
    sk = np.stack(sketches)  # trials x blocks x 5
    counts = sk[0, :, 0]
    if counts.min() < 2:
        return None
    m = splits(sk.shape[1], sk.shape[0], seed=seed)
    out_m = 1.0 - m
    n_is, n_oos = m @ counts, out_m @ counts
    is_sr = _sharpe_of(n_is[:, None], m @ sk[:, :, 1].T, m @ sk[:, :, 2].T)  # splits x trials
    oos_sr = _sharpe_of(n_oos[:, None], out_m @ sk[:, :, 1].T, out_m @ sk[:, :, 2].T)
    best = np.argmax(is_sr, axis=1)
    x = oos_sr[np.arange(len(best)), best][:, None]
    # the in-sample winner's out-of-sample rank (1 = worst; ties share their average rank)
    rank = (oos_sr < x).sum(axis=1) + ((oos_sr == x).sum(axis=1) + 1) / 2
    w = rank / (sk.shape[0] + 1)
    logit = np.log(w / (1 - w))
    return {"pbo": float(np.mean(logit <= 0)), "splits": int(len(m)), "blocks": int(sk.shape[1]),
            "median_logit": float(np.median(logit))}


@dataclass(frozen=True)
class Overfitting:
    """What the report says about a search's winner."""

    trials: int
    deflated_sharpe: float | None
    pbo: float | None
    sharpe_per_bar: float
    expected_max_sharpe: float  # SR0, per bar
    trial_sharpe_sd: float  # per bar, across trials
    returns: int  # T: the winner's returns the DSR is computed on
    skew: float
    kurtosis: float
    splits: int | None
    basis: str
    pbo_trials: int | None = None  # trials in the CSCV when not all of them (a study's unpruned ones)

    @property
    def trusted(self) -> bool:
        return self.deflated_sharpe is not None and self.deflated_sharpe >= CONFIDENCE

    @property
    def deflated_sharpe_text(self) -> str:
        """The DSR as the table and the verdict show it: 4 decimals rounded down, so the text is on
        the same side of 0.95 as the figure (0.94995 rounded read `0.950 < 0.95`) and a near-certainty
        never reads as 1."""
        if self.deflated_sharpe is None:
            return "n/a"
        return str(Decimal(repr(self.deflated_sharpe)).quantize(Decimal("0.0001"), rounding=ROUND_FLOOR))

    @property
    def verdict(self) -> str:
        if self.deflated_sharpe is None:
            return "deflated Sharpe not computable (too few returns, or none vary)"
        if self.trusted:
            return (f"deflated Sharpe {self.deflated_sharpe_text} >= {CONFIDENCE}: the winner is unlikely to be "
                    f"luck among {self.trials} trials")
        return (f"deflated Sharpe {self.deflated_sharpe_text} < {CONFIDENCE}: the winner is not distinguishable "
                f"from luck among {self.trials} trials")

    def as_dict(self) -> dict[str, Any]:
        return {"trials": self.trials, "deflated_sharpe": self.deflated_sharpe, "pbo": self.pbo,
                "distinguishable_from_luck": self.trusted, "verdict": self.verdict,
                "sharpe_per_bar": self.sharpe_per_bar, "expected_max_sharpe_per_bar": self.expected_max_sharpe,
                "trial_sharpe_sd_per_bar": self.trial_sharpe_sd, "returns": self.returns, "skew": self.skew,
                "kurtosis": self.kurtosis, "cscv_splits": self.splits,
                "cscv_trials": self.trials if self.pbo_trials is None else self.pbo_trials, "basis": self.basis}


def assess(winner: np.ndarray, trial_sketches: list[np.ndarray], basis: str, seed: int = 19,
           pbo_sketches: list[np.ndarray] | None = None, trial_sharpes: np.ndarray | None = None) -> Overfitting:
    """The winner's sketch judged against every trial's (the winner's own among them, unless the
    winner is a walk-forward's chained path, which is judged against the candidates).
    ``pbo_sketches``: the trials the CSCV ranks when not all of them can be (CSCV needs every
    trial on the same bars: a study's pruned trials stopped early). ``trial_sharpes``: the per-bar
    Sharpe ratios the DSR's trial variance uses, when not the sketches' own (a study's pruned trials)."""
    w = moments(winner)
    srs = (np.array([moments(s).sharpe for s in trial_sketches]) if trial_sharpes is None
           else np.asarray(trial_sharpes, dtype=float))
    dsr, sr0 = deflated_sharpe(w, srs)
    p = probability_of_overfitting(trial_sketches if pbo_sketches is None else pbo_sketches, seed)
    return Overfitting(trials=len(trial_sketches), deflated_sharpe=dsr, pbo=p["pbo"] if p else None,
                       sharpe_per_bar=w.sharpe, expected_max_sharpe=sr0,
                       trial_sharpe_sd=float(np.std(srs, ddof=1)) if len(srs) > 1 else 0.0,
                       returns=w.n, skew=w.skew, kurtosis=w.kurt, splits=p["splits"] if p else None, basis=basis,
                       pbo_trials=None if pbo_sketches is None else len(pbo_sketches))
