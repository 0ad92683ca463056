"""Signals a strategy emits: what it wants (a target position) and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..protection import Protection


@dataclass(slots=True, frozen=True)
class Signal:
    """A strategy's decision at one bar's close.

    ``target`` is the wanted position as a fraction of equity (-1..1; spot strategies 0..1).
    ``direction`` is the sign of the change it asks for: 1 buy, -1 sell (short, or flat from
    long), 0 no change. ``strength`` is 0..1, ``reason`` a short human sentence.
    ``protection``: the stop-loss / take-profit / trailing stop the entry carries (the
    strategy's own levels; the command line's ``--stop-loss`` etc. win over them), or None.
    """

    direction: int
    strength: float
    reason: str
    target: float
    protection: Protection | None = None

    def __post_init__(self) -> None:
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"direction must be -1, 0 or 1, not {self.direction!r}")
        if not -1.0 <= self.target <= 1.0:
            raise ValueError(f"target must be within -1..1, not {self.target!r}")


@dataclass(slots=True, frozen=True)
class SignalEvent:
    """A Signal as it travels on the EventBus (and into the TradingSignal table)."""

    strategy: str
    symbol: str
    timeframe: str
    ts: int  # open time (ms) of the bar whose close produced the signal
    signal: Signal
    params: dict[str, Any] = field(default_factory=dict)
    warmup: bool = False  # decided on history at start: shown, never traded

    @property
    def direction(self) -> int:
        return self.signal.direction

    @property
    def target(self) -> float:
        return self.signal.target


@dataclass(slots=True, frozen=True)
class DecisionEvent:
    """A model's prediction on a closed bar, the running strategy's or a shadow's: what it thinks
    (P(up)) and the position it would hold. A shadow's sends no order; this makes it visible (the
    desk's Signals pane, headless ``decision`` lines) beside the decisions stored for comparison."""

    model: str
    symbol: str
    timeframe: str
    ts: int  # open time of the bar whose close it decided on
    probability: float
    action: str  # buy | sell | hold
    target: float  # the position it holds after this bar (fraction of its capital)
    shadow: bool

    @property
    def direction(self) -> int:
        return {"buy": 1, "sell": -1}.get(self.action, 0)

    @property
    def reason(self) -> str:
        who = f"SHADOW {self.model} (no order)" if self.shadow else self.model
        return f"{who}: P(up) {self.probability:.3f}, would hold {self.target:.2f}"
