"""Portfolio weights from recent returns: minimum variance, risk parity, mean-variance.

Long-only, summing to 1, from a Ledoit-Wolf shrunk covariance (scikit-learn).

Mean-variance maximises ``mu'w - risk_aversion/2 w'Cw`` on annualised moments (per-bar mean and
covariance x bars a year; ``risk_aversion`` is stated on that scale and reported). A trailing
mean of a few hundred bars is mostly noise (t ~ 0.4 on a random walk): taken as is, it put 100 %
in whichever asset drifted up. The mean is therefore shrunk by its own estimation error towards
the minimum-variance portfolio's mean (Jorion's Bayes-Stein estimator, 1986): pure noise shrinks
to equal means (the minimum-variance weights), a mean many standard errors away keeps its edge. The covariance
handed to an optimiser gets a tiny ridge (1e-10 of its mean variance) so that a singular matrix
(two identical assets, a constant price) still has one answer; the reported covariance is the
shrunk one the weights were computed from, ridge included, so its risk contributions can be
checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS = ("min_variance", "risk_parity", "mean_variance")
NOISE_LEVEL = 0.95  # Bayes-Stein mean: spreads of the sample means below this chi-square quantile are noise


class OptimiseError(ValueError):
    """Input the optimiser cannot use, as one line."""


@dataclass
class Allocation:
    method: str
    symbols: list[str]
    weights: np.ndarray
    covariance: np.ndarray  # per-bar, the matrix the weights were computed from
    shrinkage: float | None = None
    # mean_variance: the annualised expected returns used (after Bayes-Stein shrinkage of the mean)
    expected_return_annual: np.ndarray | None = None
    mean_shrinkage: float | None = None  # the Bayes-Stein weight on the prior (0 = sample mean as is)
    risk_aversion: float | None = None
    bars_per_year: float | None = None

    def risk_contributions(self) -> np.ndarray:
        """Each asset's share of the portfolio variance: w_i (C w)_i / w'Cw."""
        cw = self.covariance @ self.weights
        total = float(self.weights @ cw)
        return self.weights * cw / total if total > 0 else np.full(len(self.weights), np.nan)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "symbols": self.symbols,
                "weights": {s: float(w) for s, w in zip(self.symbols, self.weights, strict=True)},
                "covariance": self.covariance.tolist(), "shrinkage": self.shrinkage,
                "risk_contributions": {s: float(c) for s, c in zip(self.symbols, self.risk_contributions(), strict=True)}} | (
            {} if self.expected_return_annual is None else {
                "expected_return_annual": {s: float(m) for s, m in
                                           zip(self.symbols, self.expected_return_annual, strict=True)},
                "mean_shrinkage": self.mean_shrinkage, "risk_aversion": self.risk_aversion,
                "bars_per_year": self.bars_per_year})


def shrunk_covariance(returns: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf covariance of a (bars x assets) return matrix, and its shrinkage."""
    from sklearn.covariance import LedoitWolf

    r = np.asarray(returns, dtype=float)
    if r.ndim != 2 or r.shape[0] < 2 or r.shape[1] < 1:
        raise OptimiseError("need at least 2 returns of at least 1 asset")
    if not np.isfinite(r).all():
        raise OptimiseError("the returns contain NaN or infinity")
    lw = LedoitWolf().fit(r)
    return np.asarray(lw.covariance_, dtype=float), float(lw.shrinkage_)


def _ridge(cov: np.ndarray) -> np.ndarray:
    c = np.asarray(cov, dtype=float)
    c = (c + c.T) / 2
    scale = float(np.mean(np.diag(c))) if len(c) else 0.0
    return c + np.eye(len(c)) * max(scale * 1e-10, 1e-18)


def _simplex_qp(cov: np.ndarray, mu: np.ndarray | None = None, risk_aversion: float = 1.0) -> np.ndarray:
    """argmin over the long-only simplex of w'Cw/2 * risk_aversion - mu'w (SLSQP)."""
    from scipy.optimize import minimize

    n = len(cov)
    m = np.zeros(n) if mu is None else np.asarray(mu, dtype=float)

    def f(w: np.ndarray) -> float:
        return float(0.5 * risk_aversion * w @ cov @ w - m @ w)

    def grad(w: np.ndarray) -> np.ndarray:
        return np.asarray(risk_aversion * cov @ w - m)

    # scale so that the solver's tolerance is meaningful for per-bar variances (~1e-6)
    res = minimize(lambda w: f(w) / _unit(cov), np.full(n, 1.0 / n), jac=lambda w: grad(w) / _unit(cov),
                   method="SLSQP", bounds=[(0.0, 1.0)] * n,
                   constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(n)}],
                   options={"ftol": 1e-15, "maxiter": 1000})
    return _clean(res.x)


def _unit(cov: np.ndarray) -> float:
    d = float(np.mean(np.diag(cov)))
    return d if d > 0 else 1.0


def _clean(w: np.ndarray) -> np.ndarray:
    w = np.clip(np.asarray(w, dtype=float), 0.0, None)
    s = w.sum()
    return w / s if s > 0 else np.full(len(w), 1.0 / len(w))


def min_variance(cov: np.ndarray) -> np.ndarray:
    return _simplex_qp(_ridge(cov))


def mean_variance(cov: np.ndarray, mu: np.ndarray, risk_aversion: float = 1.0) -> np.ndarray:
    if not risk_aversion > 0:
        raise OptimiseError("risk aversion must be > 0")
    return _simplex_qp(_ridge(cov), np.asarray(mu, dtype=float), risk_aversion)


def risk_parity(cov: np.ndarray, *, tol: float = 1e-14, max_sweeps: int = 10_000) -> np.ndarray:
    """Equal risk contributions: cyclical coordinate descent on Spinu's convex problem
    min y'Cy/2 - sum(log y)/n (y > 0), then w = y / sum(y)."""
    c = _ridge(cov)
    n = len(c)
    b = 1.0 / n
    y = 1.0 / np.sqrt(np.diag(c))
    for _ in range(max_sweeps):
        prev = y.copy()
        for i in range(n):
            others = float(c[i] @ y - c[i, i] * y[i])
            y[i] = (-others + np.sqrt(others * others + 4.0 * c[i, i] * b)) / (2.0 * c[i, i])
        if np.max(np.abs(y - prev) / prev) < tol:
            break
    return _clean(y)


def bayes_stein_mean(returns: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, float]:
    """Jorion's (1986) Bayes-Stein mean of per-bar returns and its shrinkage weight: the sample
    mean pulled towards the minimum-variance portfolio's mean, the more the less the sample
    means differ beyond their estimation error."""
    r = np.asarray(returns, dtype=float)
    t, n = r.shape
    mu = r.mean(axis=0)
    c = _ridge(cov)
    inv = np.linalg.pinv(c)
    ones = np.ones(n)
    w0 = inv @ ones / float(ones @ inv @ ones)
    mu0 = float(w0 @ mu)
    d = mu - mu0
    spread = t * float(d @ inv @ d)  # ~ chi-square with n - 1 degrees of freedom when the means are noise
    if n < 2 or spread <= 0:
        return np.full(n, mu0), 1.0
    from scipy.stats import chi2

    # positive part: a spread that noise alone exceeds 1 time in 20 or more is all noise
    shrink = min(1.0, max((n + 2) / ((n + 2) + spread), float(chi2.ppf(NOISE_LEVEL, n - 1)) / spread))
    return (1.0 - shrink) * mu + shrink * mu0, float(shrink)


def allocate(method: str, symbols: list[str], returns: np.ndarray, *, risk_aversion: float = 1.0,
             bars_per_year: float = 365.25 * 24) -> Allocation:
    """Weights by ``method`` from a (bars x assets) return matrix whose columns are ``symbols``.
    ``bars_per_year`` annualises mean_variance's moments (default: hourly bars)."""
    if method not in METHODS:
        raise OptimiseError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    cov, shrink = shrunk_covariance(returns)
    used = _ridge(cov)
    if method == "min_variance":
        return Allocation(method, list(symbols), min_variance(cov), used, shrink)
    if method == "risk_parity":
        return Allocation(method, list(symbols), risk_parity(cov), used, shrink)
    if not bars_per_year > 0:
        raise OptimiseError("bars a year must be > 0 to annualise the moments")
    mu, mean_shrink = bayes_stein_mean(np.asarray(returns, dtype=float), cov)
    mu_y, cov_y = mu * bars_per_year, cov * bars_per_year
    w = mean_variance(cov_y, mu_y, risk_aversion)
    return Allocation(method, list(symbols), w, used, shrink, mu_y, mean_shrink, risk_aversion, bars_per_year)
