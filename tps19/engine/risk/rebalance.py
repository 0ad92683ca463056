"""The orders that move a spot account to target weights, sent through the broker (and so the
risk stage, like every order).

Capital is the quote currency held plus the value of the named symbols' base holdings at their
marks (holdings of other currencies are left alone). Each symbol's order moves its holding to
``weight x capital``: sells first, then buys; a buy spends at most the quote that is free after
the sells, less a fee margin. Amounts are rounded down to the market's amount step; an order
worth more than the per-order cap is split into slices under it (``max_value``), so the risk
stage does not refuse a rebalance for its size. Orders smaller than ``min_value`` are skipped.
``preview`` asks the order entry (validation and the risk stage, nothing sent or counted) what
it would say of each order, before the trader confirms.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Any

FEE_MARGIN = Decimal("0.995")
# a market buy's value is checked at the ask, a little above the mark the plan prices at
CAP_MARGIN = Decimal("0.98")
STEP = Decimal("1e-8")


@dataclass(frozen=True)
class RebalanceOrder:
    symbol: str
    side: str
    amount: Decimal
    value: Decimal  # at the mark

    def as_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "side": self.side, "amount": f"{self.amount:f}", "value": f"{self.value:.2f}"}


def amount_step(market: dict[str, Any], precision_mode: int) -> Decimal:
    from ..trading.orders import _step

    return _step((market.get("precision") or {}).get("amount"), precision_mode) or STEP


def _slices(symbol: str, side: str, amount: Decimal, mark: Decimal, step: Decimal,
            max_value: Decimal | None) -> list[RebalanceOrder]:
    from ..trading.orders import round_to_step

    amount = round_to_step(amount, step, ROUND_DOWN)
    if amount <= 0:
        return []
    n = 1
    if max_value is not None and max_value > 0:
        per = max_value * CAP_MARGIN
        n = max(1, int((amount * mark / per).to_integral_value(rounding=ROUND_CEILING)))
    each = round_to_step(amount / n, step, ROUND_DOWN)
    if each <= 0:
        return []
    out = [RebalanceOrder(symbol, side, each, each * mark) for _ in range(n - 1)]
    last = amount - each * (n - 1)  # a multiple of the step: both terms are
    out.append(RebalanceOrder(symbol, side, last, last * mark))
    return out


def plan_orders(weights: dict[str, float], balances: dict[str, Decimal], marks: dict[str, Decimal | None],
                markets: dict[str, dict[str, Any]], *, min_value: Decimal = Decimal("10"),
                precision_mode: int = 4, max_value: Decimal | None = None) -> list[RebalanceOrder]:
    """``precision_mode``: ccxt's (4 = tick size); ``max_value``: the per-order cap in force."""
    quotes = {markets[s]["quote"] for s in weights}
    if len(quotes) != 1:
        raise ValueError(f"the symbols must share one quote currency, not {', '.join(sorted(quotes))}")
    quote = quotes.pop()
    px: dict[str, Decimal] = {s: m for s in weights if (m := marks.get(s))}
    missing = [s for s in weights if s not in px]
    if missing:
        raise ValueError(f"no price for {', '.join(missing)}: cannot value the holdings")
    held = {s: balances.get(markets[s]["base"], Decimal(0)) for s in weights}
    capital = balances.get(quote, Decimal(0)) + sum((held[s] * px[s] for s in weights), Decimal(0))
    sells: list[RebalanceOrder] = []
    buys: list[RebalanceOrder] = []
    for s, w in weights.items():
        mark = px[s]
        diff = Decimal(str(w)) * capital - held[s] * mark
        if abs(diff) < min_value:
            continue
        step = amount_step(markets[s], precision_mode)
        amount = abs(diff) / mark
        if diff < 0:
            sells += _slices(s, "sell", min(amount, held[s]), mark, step, max_value)
        else:
            buys += _slices(s, "buy", amount * FEE_MARGIN, mark, step, max_value)
    return sells + buys


def preview(broker: Any, orders: list[RebalanceOrder]) -> list[str | None]:
    """What the order entry would answer for each order now (None: accepted), nothing sent. A
    buy refused only for the quote that the plan's sells will free first is not a refusal."""
    from ..trading.orders import OrderRequest

    sells_first = any(o.side == "sell" for o in orders)
    out: list[str | None] = []
    for o in orders:
        why = broker.entry.admit(OrderRequest(o.symbol, o.side, "market", o.amount)).reason
        if why and o.side == "buy" and sells_first and why.startswith("not enough free"):
            why = None
        out.append(why)
    return out


async def send_orders(broker: Any, orders: list[RebalanceOrder]) -> list[Any]:
    """Place each order at market through ``broker`` (its risk stage decides); returns the orders' states."""
    return [await broker.place_order(o.symbol, o.side, "market", o.amount) for o in orders]
