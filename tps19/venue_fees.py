"""The simulated venues' fee schedules (maker, taker), in one place: the simulated exchange charges
them and a backtest modelled on a simulated venue charges its taker rate (tps19.cli.backtest), so
the two can never disagree. Kept free of imports: a `--data` backtest stays light."""

from __future__ import annotations

from decimal import Decimal

SIM_FEES: dict[str, tuple[Decimal, Decimal]] = {
    "sim": (Decimal("0.0004"), Decimal("0.0006")),  # the Crypto.com dialect
    "sim-binance": (Decimal("0.001"), Decimal("0.001")),  # the Binance dialect: Binance's base spot tier
}
SIM_NAMES = {"sim": "the simulated Crypto.com venue", "sim-binance": "the simulated Binance venue"}
