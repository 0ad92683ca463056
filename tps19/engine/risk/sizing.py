"""Position sizing: how much of equity a strategy's signal is worth, one rule for every mode.

A rule turns the strategy's target (direction and conviction, -1..1 of equity) into the
fraction of equity to hold. ``size_fraction`` is THE function: the backtest calls it on whole
arrays (``risk/backtest.py``), paper and live on one bar (``engine/targets.py``), so both size
identically. The result is always capped at ``cap`` (default 1: spot, no leverage); the order
that follows still passes every pre-trade limit.

Rules (``--sizing NAME --sizing-param k=v``):

* ``fixed`` (default): the target as given. ``fraction=1``.
* ``fixed_fractional``: risk ``risk`` of equity per trade with a stop ``stop`` away from the
  entry (both fractions): hold ``risk / stop`` of equity, so hitting the stop loses ``risk``.
* ``vol_target``: hold ``target / sigma_daily`` of equity, where sigma_daily is the realised
  daily volatility of simple returns over the last ``lookback`` bars (per-bar std x sqrt(bars
  a day)): the position's expected daily move is ``target`` of equity. Sigma moves every bar, so
  the size is held until the new one is off by more than ``band`` (default 0.1: 10 % of the
  target size; a change of side or to flat always trades): ``banded`` in backtests, the same
  threshold in paper/live (``engine/targets.py``). Without it a constant long signal re-sized on
  every bar (2,979 fills on 3,000 1m bars, 3 % of equity in fees).
* ``kelly``: fractional Kelly, ``fraction * (p - (1 - p) / b)`` for a win probability ``p`` and a
  payoff ratio ``b`` (average win / average loss); never below 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DAY_MS = 86_400_000

RULES: dict[str, dict[str, float]] = {
    "fixed": {"fraction": 1.0, "cap": 1.0},
    "fixed_fractional": {"risk": 0.01, "stop": 0.02, "cap": 1.0},
    "vol_target": {"target": 0.02, "lookback": 20.0, "band": 0.1, "cap": 1.0},
    "kelly": {"p": 0.55, "b": 1.0, "fraction": 0.5, "cap": 1.0},
}


class SizingError(ValueError):
    """A bad sizing rule or parameter, worded as one line."""


@dataclass(frozen=True)
class Sizing:
    name: str = "fixed"
    params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in RULES:
            raise SizingError(f"unknown sizing {self.name!r} (choose from {', '.join(RULES)})")
        unknown = set(self.params) - set(RULES[self.name])
        if unknown:
            raise SizingError(f"sizing {self.name} has no parameter {sorted(unknown)[0]!r} "
                              f"(it takes {', '.join(RULES[self.name])})")
        for k, v in self.params.items():
            if not math.isfinite(v):
                raise SizingError(f"sizing parameter {k} must be a finite number")
        p = self.p
        if not 0 < p["cap"] <= 1:
            raise SizingError("sizing parameter cap must be within (0, 1] of equity")
        checks = {"fixed": [("fraction", 0 <= p.get("fraction", 1) <= 1)],
                  "fixed_fractional": [("risk", 0 < p.get("risk", 1) < 1), ("stop", 0 < p.get("stop", 1) < 1)],
                  "vol_target": [("target", 0 < p.get("target", 1) < 1), ("lookback", p.get("lookback", 2) >= 2),
                                 ("band", 0 <= p.get("band", 0) < 1)],
                  "kelly": [("p", 0 <= p.get("p", 0) <= 1), ("b", p.get("b", 1) > 0),
                            ("fraction", 0 < p.get("fraction", 1) <= 1)]}
        for k, ok in checks[self.name]:
            if not ok:
                raise SizingError(f"sizing parameter {k}={p[k]} is out of range for {self.name} (docs/risk.md)")

    @property
    def p(self) -> dict[str, float]:
        return RULES[self.name] | self.params

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.p}


def parse_sizing(name: str | None, params: list[str] | None) -> Sizing:
    out: dict[str, float] = {}
    for item in params or []:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise SizingError(f"--sizing-param {item!r} is not key=value")
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise SizingError(f"--sizing-param {k.strip()} must be a number, not {v[:20]!r}") from None
    return Sizing(name or "fixed", out)


def size_fraction(sizing: Sizing, target: Any, *, sigma_daily: Any = None) -> Any:
    """The fraction of equity to hold (signed like ``target``), capped at ``cap``. ``target`` and
    ``sigma_daily`` are floats or arrays (elementwise); vol_target needs ``sigma_daily`` and holds
    nothing where it is unknown (NaN) or zero."""
    p = sizing.p
    t = np.asarray(target, dtype=float)
    if sizing.name == "fixed":
        f: Any = p["fraction"]
    elif sizing.name == "fixed_fractional":
        f = p["risk"] / p["stop"]
    elif sizing.name == "kelly":
        f = max(0.0, p["fraction"] * (p["p"] - (1.0 - p["p"]) / p["b"]))
    else:
        s = np.asarray(np.nan if sigma_daily is None else sigma_daily, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(np.isfinite(s) & (s > 0), p["target"] / s, 0.0)
    out = np.clip(t * f, -p["cap"], p["cap"])
    return float(out) if out.ndim == 0 else out


def banded(sized: np.ndarray, band: float) -> np.ndarray:
    """Sized targets held until a new one is off by more than ``band`` x its own size (a change
    of side, or to or from zero, always goes through)."""
    t = np.asarray(sized, dtype=float)
    if band <= 0 or not len(t):
        return t
    out = np.empty_like(t)
    held = 0.0
    for i, x in enumerate(t.tolist()):
        if x == 0.0 or held == 0.0 or (x > 0) != (held > 0) or abs(x - held) > band * abs(x):
            held = x
        out[i] = held
    return out


def outside_band(sizing: Sizing | None, target: float, held: float) -> bool:
    """Paper/live: whether ``held`` (a fraction of capital) is off the sized ``target`` by more
    than the rule's band (always true for rules without one)."""
    if sizing is None or "band" not in sizing.p or target == 0.0 or held == 0.0:
        return True
    return abs(target - held) > sizing.p["band"] * abs(target)


def bars_per_day(ts: np.ndarray) -> float:
    if len(ts) < 2:
        return 1.0
    step = float(np.median(np.diff(ts)))
    return DAY_MS / step if step > 0 else 1.0


def rolling_daily_vol(close: np.ndarray, ts: np.ndarray, lookback: int) -> np.ndarray:
    """Realised daily volatility known at each bar's close: std (ddof=1) of the last ``lookback``
    simple returns, scaled by sqrt(bars a day); NaN until ``lookback`` returns exist."""
    close = np.asarray(close, dtype=float)
    out = np.full(len(close), np.nan)
    if len(close) <= lookback:
        return out
    r = close[1:] / close[:-1] - 1.0
    win = np.lib.stride_tricks.sliding_window_view(r, lookback)
    out[lookback:] = win.std(axis=1, ddof=1) * math.sqrt(bars_per_day(ts))
    return out


def sigma_from_closes(closes: list[float], timeframe_ms: int, lookback: int) -> float | None:
    """The same figure for the latest bar of a live series (paper/live)."""
    if len(closes) <= lookback:
        return None
    c = np.asarray(closes[-(lookback + 1):], dtype=float)
    r = c[1:] / c[:-1] - 1.0
    return float(r.std(ddof=1) * math.sqrt(DAY_MS / timeframe_ms))
