"""The one strategy API used by backtests, paper trading and live trading.

A strategy turns closed bars into a *target position* (a fraction of equity) plus a
:class:`Signal` saying why. It has two paths that must agree exactly:

* ``generate(frame)`` — the vectorised fast path a backtest uses: numpy over whole arrays;
* ``on_bar(bar, portfolio)`` — the incremental path paper/live use: one closed bar at a time.

Subclasses implement ``events`` (vectorised) and ``step`` (incremental); each returns, per bar,
an *event target* (NaN when nothing happens at that bar), a reason code and a strength. The
base class turns events into a held target the same way in both paths: the target is the last
event target (0 before any event), clipped to the allowed range; a Signal is emitted on the
bars where the target changes.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from ..protection import Protection
from .params import ParamError, StrategyParams, validated
from .signals import Signal

__all__ = ["ParamError", "PortfolioView", "SignalFrame", "SimplePortfolio", "Strategy", "StrategyParams"]


class PortfolioView(Protocol):
    """What a strategy may read about the account (read-only)."""

    @property
    def equity(self) -> float: ...

    def position_fraction(self, symbol: str) -> float: ...


@dataclass(slots=True)
class SimplePortfolio:
    """A minimal PortfolioView (used by backtests and tests)."""

    equity: float = 0.0
    fractions: dict[str, float] = field(default_factory=dict)

    def position_fraction(self, symbol: str) -> float:
        return self.fractions.get(symbol, 0.0)


@dataclass(slots=True)
class SignalFrame:
    """The vectorised output: one entry per bar."""

    target: np.ndarray  # held target fraction after the bar's close
    emitted: np.ndarray  # bool: a Signal is emitted at this bar (target changed)
    direction: np.ndarray  # int8: sign of the target change
    strength: np.ndarray  # float, meaningful where emitted
    reason: np.ndarray  # int16 code into Strategy.reasons (-1 none)
    reasons: tuple[str, ...]

    def signal_at(self, i: int) -> Signal | None:
        if not self.emitted[i]:
            return None
        return Signal(
            direction=int(self.direction[i]),
            strength=float(self.strength[i]),
            reason=self.reasons[int(self.reason[i])] if self.reason[i] >= 0 else "",
            target=float(self.target[i]),
        )


class Strategy(ABC):
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = StrategyParams
    #: Human sentences for reason codes 0, 1, ...
    reasons: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: StrategyParams | Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        data = params.as_dict() if isinstance(params, StrategyParams) else dict(params or {})
        data.update(kwargs)
        self.params = validated(self.Params, data, self.name)
        self._check()
        self.reset()

    # --- hooks for subclasses ------------------------------------------------------------

    def _check(self) -> None:
        """Cross-field parameter checks; raise ParamError."""

    @abstractmethod
    def lookback(self) -> int:
        """How many most recent bars ``step`` needs."""

    @abstractmethod
    def events(
        self, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vectorised: (event_target with NaN for none, reason code int array, strength array)."""

    @abstractmethod
    def step(self) -> tuple[float, int, float]:
        """Incremental: the same triple for the newest bar in ``self.bars``."""

    # --- shared machinery ----------------------------------------------------------------

    @property
    def bounds(self) -> tuple[float, float]:
        return (-1.0 if self.params.allow_short else 0.0, 1.0)

    def reset(self) -> None:
        n = max(2, self.lookback() + 1)
        self.bars: dict[str, deque[float]] = {k: deque(maxlen=n) for k in ("open", "high", "low", "close", "volume")}
        self.target = 0.0
        self.state: dict[str, Any] = {}

    def generate(self, data: Any) -> SignalFrame:
        """Vectorised signals for a DataFrame (columns open/high/low/close/volume) or dict of arrays."""
        ev, code, strength = self._events_of(data)
        return frame_from_events(ev, code, strength, self.bounds, self.reasons)

    def target_changes(self, data: Any) -> tuple[np.ndarray, np.ndarray]:
        """(bars where the held target changes, the new targets): all a backtest needs, without
        the five per-bar columns of a SignalFrame (~20 bytes a bar on a long history). Equal to
        the changes of ``generate(data).target``, which a strategy overriding ``generate`` runs."""
        if type(self).generate is not Strategy.generate:
            return target_changes(self.generate(data).target)
        ev, _code, _strength = self._events_of(data)
        return event_changes(ev, self.bounds)

    def _events_of(self, data: Any) -> tuple[np.ndarray, Any, Any]:
        cols = {}
        for k in ("open", "high", "low", "close", "volume"):
            v = data[k] if k in data else data[k.capitalize()]
            cols[k] = np.asarray(v, dtype=float)
        ev, code, strength = self.events(cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"])
        return np.asarray(ev, dtype=float), code, strength

    def on_bar(self, bar: Any, portfolio: PortfolioView | None = None) -> Signal | None:
        """Incremental path: feed one *closed* bar; returns a Signal when the target changes."""
        for k in ("open", "high", "low", "close", "volume"):
            self.bars[k].append(float(getattr(bar, k)))
        ev, code, strength = self.step()
        if math.isnan(ev):
            return None
        lo, hi = self.bounds
        ev = min(max(ev, lo), hi)
        if ev == self.target:
            return None
        direction = 1 if ev > self.target else -1
        self.target = ev
        return Signal(
            direction=direction,
            strength=min(max(strength, 0.0), 1.0),
            reason=self.reasons[code] if code >= 0 else "",
            target=ev,
            protection=self.step_protection() if ev != 0 else None,
        )

    def protection_columns(self, data: Any) -> dict[str, np.ndarray] | None:
        """Optional: the protective levels an entry decided on each bar carries, as per-bar arrays
        keyed ``stop_loss_price``, ``take_profit_price`` (absolute), ``stop_loss_pct``,
        ``take_profit_pct``, ``trailing_pct`` (percent of the entry price), NaN where none; or
        None (the built-ins). ``step_protection`` must say the same for the newest bar."""
        return None

    def step_protection(self) -> Protection | None:
        """Optional: the live path's ``protection_columns`` for the newest bar in ``self.bars``."""
        return None

    def on_trades(self, trades: Any) -> None:  # optional hook
        """Optional: live trades; the built-ins ignore them."""

    def on_book(self, book: Any) -> None:  # optional hook
        """Optional: order book updates; the built-ins ignore them."""

    def clone(self) -> Strategy:
        """A fresh instance with the same parameters (no state): one per symbol when live."""
        return type(self)(self.params)

    def param_dict(self) -> dict[str, Any]:
        return self.params.as_dict()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.param_dict().items())
        return f"{type(self).__name__}({args})"


def target_changes(target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bars where a dense held-target vector changes, the new values); 0 before the first bar."""
    t = np.asarray(target, dtype=float)
    at = np.flatnonzero(t != np.concatenate(([0.0], t[:-1])))
    return at, t[at]


def event_changes(ev: np.ndarray, bounds: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(bars where the held target changes, its new values) from event targets (NaN: no event):
    the held target is the last event's target, clipped to ``bounds``, 0 before any event."""
    at = np.flatnonzero(~np.isnan(ev))
    vals = np.clip(ev[at], *bounds)
    keep = vals != np.concatenate(([0.0], vals[:-1]))
    return at[keep], vals[keep]


def frame_from_events(ev: np.ndarray, code: Any, strength: Any, bounds: tuple[float, float],
                      reasons: tuple[str, ...]) -> SignalFrame:
    """The SignalFrame of ``event_changes``: built from the change bars only (a few per cent of
    the bars), then spread over the columns."""
    n = len(ev)
    at, vals = event_changes(ev, bounds)
    prev = np.concatenate(([0.0], vals[:-1]))
    target = np.repeat(np.concatenate(([0.0], vals)), np.diff(np.concatenate(([0], at, [n]))))
    emitted = np.zeros(n, dtype=bool)
    emitted[at] = True
    direction = np.zeros(n, dtype=np.int8)
    direction[at] = np.sign(vals - prev)
    reason = np.full(n, -1, dtype=np.int16)
    reason[at] = np.asarray(code)[at]
    out_strength = np.zeros(n)
    out_strength[at] = np.clip(np.asarray(strength, dtype=float)[at], 0.0, 1.0)
    return SignalFrame(target, emitted, direction, out_strength, reason, reasons)

