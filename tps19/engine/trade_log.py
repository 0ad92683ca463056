"""Orders and fills as log lines: every figure a trader checks (ids, price, amount, fee), with
amounts at the market's precision and their unit ("0.10000 BTC", "50001.00 USDT"), never a
float's noise or a Decimal's 28 digits."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .trading.events import FillEvent, OrderUpdate

TICK_SIZE = 4  # ccxt.TICK_SIZE: market precision is a step (0.00001); else a number of decimals
FEE_DECIMALS = 8  # fees are charged at a currency's precision (8 decimals on Crypto.com)


def decimals_of(precision: Any, precision_mode: int = TICK_SIZE) -> int | None:
    """Decimal places a market precision allows (a step such as 0.001 -> 3; a count -> itself)."""
    if precision is None:
        return None
    try:
        d = Decimal(repr(precision)) if isinstance(precision, float) else Decimal(str(precision))
    except ArithmeticError:
        return None
    if not d.is_finite() or d <= 0:
        return None
    if precision_mode == TICK_SIZE:
        return max(0, -d.normalize().as_tuple().exponent)  # type: ignore[operator]
    return int(d)


def with_unit(x: Decimal | None, places: int | None, unit: str | None) -> str | None:
    """``x`` rounded to ``places`` (all its digits when unknown), then its unit."""
    if x is None:
        return None
    if places is not None:
        x = x.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    text = f"{x:f}"
    return f"{text} {unit}" if unit else text


class TradeFormatter:
    def __init__(self, markets: dict[str, dict[str, Any]], precision_mode: int = TICK_SIZE) -> None:
        self.markets = markets
        self.precision_mode = precision_mode

    def _market(self, symbol: str) -> tuple[str, str, int | None, int | None]:
        m = self.markets.get(symbol) or {}
        base, _, quote = symbol.partition("/")
        prec = m.get("precision") or {}
        return (m.get("base") or base, m.get("quote") or quote.split(":")[0],
                decimals_of(prec.get("amount"), self.precision_mode), decimals_of(prec.get("price"), self.precision_mode))

    def order(self, e: OrderUpdate) -> dict[str, Any]:
        base, quote, amt, px = self._market(e.symbol)
        out: dict[str, Any] = {"client_order_id": e.client_order_id, "venue_order_id": e.venue_order_id, "mode": e.mode,
               "symbol": e.symbol, "side": e.side, "type": e.type, "status": e.status,
               "previous_status": e.previous_status, "amount": with_unit(e.amount, amt, base),
               "price": with_unit(e.price, px, quote), "filled": with_unit(e.filled, amt, base),
               "avg_price": with_unit(e.avg_price, px, quote), "fee": with_unit(e.fee, FEE_DECIMALS, quote)}
        if e.reason:
            out["reason"] = e.reason
        if e.adopted:
            out["adopted"] = True
        if e.trigger_state is not None:  # a protective order (docs/orders.md)
            out.update(trigger_price=with_unit(e.trigger_price, px, quote), trigger_state=e.trigger_state,
                       placement=e.placement)
            for k in ("oco_group", "parent_id"):
                if getattr(e, k):
                    out[k] = getattr(e, k)
            if e.trailing_pct is not None:
                out["trailing_pct"] = str(e.trailing_pct)
            if e.trailing_distance is not None:
                out["trailing_distance"] = with_unit(e.trailing_distance, px, quote)
        for k in ("stop_loss_price", "take_profit_price"):  # a bracket entry's protection
            if getattr(e, k) is not None:
                out[k] = with_unit(getattr(e, k), px, quote)
        return out

    def fill(self, e: FillEvent) -> dict[str, Any]:
        base, quote, amt, px = self._market(e.symbol)
        return {"fill_id": e.fill_id, "client_order_id": e.client_order_id, "venue_order_id": e.venue_order_id,
                "mode": e.mode, "symbol": e.symbol, "side": e.side, "price": with_unit(e.price, px, quote),
                "amount": with_unit(e.amount, amt, base),
                "fee": with_unit(e.fee, FEE_DECIMALS, e.fee_currency or quote), "liquidity": e.liquidity}


__all__ = ["TradeFormatter", "decimals_of", "with_unit"]
