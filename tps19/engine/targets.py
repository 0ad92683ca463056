"""Turn a strategy's target position into orders through the broker (and so its risk checks).

Spot sizing: each running symbol gets the value of its base holding plus an equal share of the
quote currency it shares with the other running symbols. The target is a fraction of that
capital held in the base currency; the difference to what is held now becomes one market order.
Buys never spend more quote than is free (less a fee margin), sells never sell more than is held.
"""

from __future__ import annotations

from collections import Counter
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from ..numbers import MAX_DECIMALS
from .events import LogEvent

if TYPE_CHECKING:
    from .bus import EventBus
    from .strategies.signals import Signal
    from .trading import Broker, Portfolio

FEE_MARGIN = Decimal("0.995")  # leave room for the taker fee on a buy


class TargetExecutor:
    def __init__(self, broker: Broker, portfolio: Portfolio, markets: dict[str, dict[str, Any]], symbols: list[str],
                 bus: EventBus | None = None,
                 *, min_change: Decimal = Decimal("0.02"), max_order_notional: Decimal | None = None) -> None:
        self.broker = broker
        self.portfolio = portfolio
        self.markets = markets
        self.bus = bus
        self.min_change = min_change  # ignore re-balances smaller than 2% of the symbol's capital
        # A strategy order larger than the trader's per-order cap is cut to the cap (and logged),
        # rather than refused: the cap is a limit on size, not a veto on the strategy.
        self.max_order_notional = max_order_notional
        quotes = Counter(markets[s]["quote"] for s in symbols if s in markets)
        self.quote_share = {s: Decimal(1) / quotes[markets[s]["quote"]] for s in symbols if s in markets}
        self.orders_sent = 0
        self.skipped = 0

    def _log(self, level: str, message: str, **fields: Any) -> None:
        if self.bus is not None:
            self.bus.publish(LogEvent(level=level, message=message, fields=fields))

    def plan(self, symbol: str, target_fraction: float) -> tuple[str, Decimal] | None:
        """The (side, amount) that moves the holding to the target, or None when no order is due."""
        mark = self.portfolio.mark(symbol)
        if mark is None or mark <= 0:
            return None
        m = self.markets[symbol]
        balances = self.portfolio.balances
        base_qty = balances.get(m["base"], Decimal(0))
        quote_qty = balances.get(m["quote"], Decimal(0))
        capital = base_qty * mark + quote_qty * self.quote_share.get(symbol, Decimal(1))
        if capital <= 0:
            return None
        target = Decimal(str(max(0.0, min(1.0, target_fraction))))  # spot: no shorts, no leverage
        change_value = target * capital - base_qty * mark
        if abs(change_value) < self.min_change * capital:
            return None
        if change_value > 0:
            spend = min(change_value, quote_qty * FEE_MARGIN)
            return ("buy", spend / mark) if spend > 0 else None
        amount = min(-change_value / mark, base_qty)
        return ("sell", amount) if amount > 0 else None

    async def submit_target(self, symbol: str, target_fraction: float, signal: Signal) -> None:
        if self.broker.open_orders(symbol):
            self.skipped += 1
            self._log("info", "target not acted on: orders still working", symbol=symbol, target=target_fraction)
            return
        planned = self.plan(symbol, target_fraction)
        if planned is None:
            self.skipped += 1
            return
        side, amount = planned
        mark = self.portfolio.mark(symbol)
        cap = self.max_order_notional
        if cap is not None and mark and amount * mark > cap:
            self._log("warning", "strategy order cut to the per-order cap", symbol=symbol, wanted=str(amount),
                      cap=str(cap))
            amount = cap * Decimal("0.999") / mark
        # A quotient of Decimals carries 28 digits; orders take at most MAX_DECIMALS (the broker then
        # rounds to the market's step). Round down: never trade more than the plan allows.
        amount = amount.quantize(Decimal(1).scaleb(-MAX_DECIMALS), rounding=ROUND_DOWN)
        order = await self.broker.place_order(symbol, side, "market", amount)
        self.orders_sent += 1
        self._log("info", "strategy order", symbol=symbol, side=side, amount=str(amount), target=target_fraction,
                  status=order.status.value, reason=order.reason or "")
