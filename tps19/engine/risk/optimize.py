"""Portfolio weights from recent returns: minimum variance, risk parity, mean-variance.

Long-only, summing to 1, from a Ledoit-Wolf shrunk covariance (scikit-learn). The covariance
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


class OptimiseError(ValueError):
    """Input the optimiser cannot use, as one line."""


@dataclass
class Allocation:
    method: str
    symbols: list[str]
    weights: np.ndarray
    covariance: np.ndarray  # per-bar, the matrix the weights were computed from
    shrinkage: float | None = None

    def risk_contributions(self) -> np.ndarray:
        """Each asset's share of the portfolio variance: w_i (C w)_i / w'Cw."""
        cw = self.covariance @ self.weights
        total = float(self.weights @ cw)
        return self.weights * cw / total if total > 0 else np.full(len(self.weights), np.nan)

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "symbols": self.symbols,
                "weights": {s: float(w) for s, w in zip(self.symbols, self.weights, strict=True)},
                "covariance": self.covariance.tolist(), "shrinkage": self.shrinkage,
                "risk_contributions": {s: float(c) for s, c in zip(self.symbols, self.risk_contributions(), strict=True)}}


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


def allocate(method: str, symbols: list[str], returns: np.ndarray, *, risk_aversion: float = 1.0) -> Allocation:
    """Weights by ``method`` from a (bars x assets) return matrix whose columns are ``symbols``."""
    if method not in METHODS:
        raise OptimiseError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")
    cov, shrink = shrunk_covariance(returns)
    used = _ridge(cov)
    if method == "min_variance":
        w = min_variance(cov)
    elif method == "risk_parity":
        w = risk_parity(cov)
    else:
        w = mean_variance(cov, np.asarray(returns, dtype=float).mean(axis=0), risk_aversion)
    return Allocation(method, list(symbols), w, used, shrink)
