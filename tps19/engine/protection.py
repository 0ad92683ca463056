"""Protective exits attached to a position: stop-loss, take-profit and trailing stop.

One description for every mode: ``--stop-loss PCT --take-profit PCT --trailing-stop PCT`` on
``backtest``, ``optimize``, ``backtest-portfolio``, ``paper`` and ``live`` make a
:class:`Protection` that applies to every entry of any strategy; a strategy's own signal may carry
one too (absolute prices or percentages). Percentages are of the entry price (``2`` is 2 %).

Precedence: a field given on the command line wins over the strategy's (``merged``), and
``--stop-loss`` wins over the ``fixed_fractional`` sizing rule's own ``stop`` (the sizing then
uses it); without ``--stop-loss`` that rule places the stop its size assumes (``with_sizing``).

Imports nothing heavy: the CLI, the backtest and the live runner all read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .risk.sizing import Sizing

#: Why a position was closed, in every report (backtest trades, ``--json``, the database).
EXIT_REASONS: tuple[str, ...] = ("signal", "stop_loss", "take_profit", "trailing_stop", "breaker", "end")
SIGNAL, STOP_LOSS, TAKE_PROFIT, TRAILING_STOP, BREAKER, END = range(6)

#: The backtest's intrabar rule, as reports state it.
INTRABAR_RULE = ("protective exits are evaluated inside each bar from the entry bar on (after the fill at "
                 "its open): a bar opening beyond a level exits at its open, otherwise at the level; "
                 "when one bar's range reaches both the stop and the take-profit, the stop wins "
                 "(pessimistic); trailing stops move with each bar's high (low for shorts) after "
                 "the bar is evaluated")


class ProtectionError(ValueError):
    """A bad protective level, worded as one line naming the flag."""


@dataclass(frozen=True, slots=True)
class Protection:
    """Protective exits for a position. ``*_pct`` are percent of the entry price (2.0 = 2 %),
    ``*_price`` absolute levels; a field left ``None`` is not placed. When both a percentage and
    a price are given for the same exit the price is used."""

    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_pct: float | None = None
    stop_loss_price: float | None = None
    take_profit_price: float | None = None

    def __post_init__(self) -> None:
        for name, flag, lo, hi in (("stop_loss_pct", "--stop-loss", 0.0, 100.0),
                                   ("take_profit_pct", "--take-profit", 0.0, 1_000_000.0),
                                   ("trailing_pct", "--trailing-stop", 0.0, 100.0)):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ProtectionError(f"{flag} must be a finite number of percent, not {v!r}")
            if not lo < v < hi:
                raise ProtectionError(f"{flag} {v:g} is out of range: give a percent of the entry price "
                                      f"above {lo:g} and below {hi:g}")
        for name in ("stop_loss_price", "take_profit_price"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)
                                  or not math.isfinite(v) or v <= 0):
                raise ProtectionError(f"{name.replace('_', ' ')} must be a positive price, not {v!r}")

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    @property
    def stop_loss(self) -> float | None:
        """The stop-loss distance as a fraction (``--stop-loss 2`` is 0.02)."""
        return None if self.stop_loss_pct is None else self.stop_loss_pct / 100.0

    @property
    def take_profit(self) -> float | None:
        return None if self.take_profit_pct is None else self.take_profit_pct / 100.0

    @property
    def trailing(self) -> float | None:
        return None if self.trailing_pct is None else self.trailing_pct / 100.0

    def merged(self, under: Protection | None) -> Protection:
        """This protection over ``under``: each field set here wins (the command line over a
        strategy's own levels). A percentage here also replaces a price there for the same exit."""
        if under is None:
            return self
        out = {f.name: getattr(under, f.name) for f in fields(under)}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = v
                if f.name == "stop_loss_pct":
                    out["stop_loss_price"] = None
                elif f.name == "take_profit_pct":
                    out["take_profit_price"] = None
        return Protection(**out)

    def levels(self, entry: float, side: int) -> tuple[float | None, float | None]:
        """(stop price, take-profit price) of a position entered at ``entry`` on ``side``
        (1 long, -1 short): a long's stop is below the entry, a short's above."""
        stop = self.stop_loss_price
        if stop is None and self.stop_loss is not None:
            stop = entry * (1.0 - side * self.stop_loss)
        tp = self.take_profit_price
        if tp is None and self.take_profit is not None:
            tp = entry * (1.0 + side * self.take_profit)
            if tp <= 0:
                tp = None  # a short's take-profit of 100 % or more is a price nothing trades at
        return stop, tp

    def trailing_level(self, extreme: float, side: int) -> float | None:
        """The trailing stop for the best price since entry (highest for a long, lowest for a short)."""
        if self.trailing is None:
            return None
        return extreme * (1.0 - side * self.trailing)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def parse_protection(stop_loss: float | None = None, take_profit: float | None = None,
                     trailing_stop: float | None = None) -> Protection | None:
    """The command line's flags as a Protection (None when none is given); ProtectionError
    (a ValueError) names the bad flag."""
    p = Protection(stop_loss_pct=stop_loss, take_profit_pct=take_profit, trailing_pct=trailing_stop)
    return None if p.empty else p


def with_sizing(protection: Protection | None, sizing: Sizing | None) -> tuple[Protection | None, Sizing | None]:
    """The protection and sizing a run uses. ``fixed_fractional`` sizes for a stop ``stop`` away
    from the entry: ``--stop-loss`` replaces that stop (the size follows it), otherwise the rule's
    stop is placed, so a stopped trade loses the promised ``risk`` (plus fees and any gap)."""
    if sizing is None or sizing.name != "fixed_fractional":
        return protection, sizing
    if protection is not None and protection.stop_loss is not None:
        from .risk.sizing import Sizing

        return protection, Sizing(sizing.name, dict(sizing.params) | {"stop": protection.stop_loss})
    placed = Protection(stop_loss_pct=sizing.p["stop"] * 100.0)
    if protection is not None:
        # the rule's stop as a percentage, in place of a strategy's own stop price too
        placed = replace(protection, stop_loss_pct=placed.stop_loss_pct, stop_loss_price=None)
    return placed, sizing

