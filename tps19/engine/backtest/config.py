"""A backtest's costs and size: below the simulator and the risk transforms that both take it."""

from __future__ import annotations

from dataclasses import dataclass

from ..protection import Protection


@dataclass(frozen=True)
class BacktestConfig:
    cash: float = 10_000.0
    fee: float = 0.001
    slippage_bps: float = 0.0
    size: float = 1.0
    protection: Protection | None = None  # --stop-loss/--take-profit/--trailing-stop on every entry

    def __post_init__(self) -> None:
        if not self.cash > 0:
            raise ValueError("cash must be > 0")
        if not 0 <= self.fee < 0.1:
            raise ValueError("fee must be within 0..0.1 (a fraction of notional)")
        if not 0 <= self.slippage_bps < 1000:
            raise ValueError("slippage-bps must be within 0..1000")
        if not 0 < self.size <= 1:
            raise ValueError("size must be within 0..1 (fraction of equity)")
