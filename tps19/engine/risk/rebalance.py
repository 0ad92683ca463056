"""The orders that move a spot account to target weights, sent through the broker (and so the
risk stage, like every order).

Capital is the quote currency held plus the value of the named symbols' base holdings at their
marks (holdings of other currencies are left alone). Each symbol's order moves its holding to
``weight x capital``: sells first, then buys; a buy spends at most the quote that is free after
the sells, less a fee margin. Orders smaller than ``min_value`` are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

FEE_MARGIN = Decimal("0.995")
STEP = Decimal("1e-8")


@dataclass(frozen=True)
class RebalanceOrder:
    symbol: str
    side: str
    amount: Decimal
    value: Decimal  # at the mark


def plan_orders(weights: dict[str, float], balances: dict[str, Decimal], marks: dict[str, Decimal | None],
                markets: dict[str, dict[str, Any]], *, min_value: Decimal = Decimal("10")) -> list[RebalanceOrder]:
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
    sells, buys = [], []
    for s, w in weights.items():
        mark = px[s]
        diff = Decimal(str(w)) * capital - held[s] * mark
        if abs(diff) < min_value:
            continue
        amount = (abs(diff) / mark).quantize(STEP, rounding=ROUND_DOWN)
        if diff < 0:
            sells.append(RebalanceOrder(s, "sell", min(amount, held[s]), abs(diff)))
        else:
            buys.append(RebalanceOrder(s, "buy", (amount * FEE_MARGIN).quantize(STEP, rounding=ROUND_DOWN), diff))
    return sells + buys


async def send_orders(broker: Any, orders: list[RebalanceOrder]) -> list[Any]:
    """Place each order at market through ``broker`` (its risk stage decides); returns the orders' states."""
    return [await broker.place_order(o.symbol, o.side, "market", o.amount) for o in orders]
