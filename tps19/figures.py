"""How a figure reads, one helper for the desk, the JSON lines, the API and the CLI.

* amounts at the market's amount precision, with their unit ("0.10000 BTC");
* prices at the market's price precision ("65105.73");
* money (equity, P&L, balances' values) at 2 decimals in a fiat or stablecoin, 8 otherwise;
* fees at 8 decimals in their currency (the precision venues charge them at).

``group=True`` groups thousands for people (desk, tables, messages); machine lines (JSON) never
group. Every function takes a Decimal, a float (read through ``repr``: no binary noise) or None
("--" for people, None for machines is the caller's choice: these return "--").
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

FIAT_LIKE = frozenset({"USD", "USDT", "USDC", "EUR", "GBP", "JPY", "CHF", "AUD", "CAD", "DAI", "FDUSD", "TUSD",
                       "BUSD", "PYUSD", "USDE"})
FEE_DECIMALS = 8
TICK_SIZE = 4  # ccxt.TICK_SIZE: a market's precision is a step (0.00001); else a count of decimals


def as_decimal(x: Any) -> Decimal | None:
    if x is None:
        return None
    if isinstance(x, Decimal):
        return x
    try:
        return Decimal(repr(x)) if isinstance(x, float) else Decimal(str(x))
    except (InvalidOperation, ValueError):
        return None


def places_of(precision: Any, precision_mode: int = TICK_SIZE) -> int | None:
    """Decimal places a market precision allows (a step 0.001 -> 3; a count -> itself)."""
    d = as_decimal(precision)
    if d is None or not d.is_finite() or d <= 0:
        return None
    if precision_mode == TICK_SIZE:
        exp = d.normalize().as_tuple().exponent
        return max(0, -exp) if isinstance(exp, int) else None
    return int(d)


def fixed(x: Any, places: int | None, *, group: bool = False, sign: bool = False) -> str:
    """``x`` at ``places`` decimals (all its digits when None), half-even; never "-0.00"."""
    d = as_decimal(x)
    if d is None or not d.is_finite():
        return "--"
    if places is not None:
        d = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    if d == 0:
        d = abs(d)
    spec = ("+" if sign else "") + ("," if group else "") + "f"
    return format(d, spec)


def money_places(currency: str | None) -> int:
    return 2 if (currency or "").upper() in FIAT_LIKE else 8


def money(x: Any, currency: str | None, *, group: bool = False, sign: bool = False) -> str:
    """Equity, P&L, a value: 2 decimals in a fiat or stablecoin, 8 in anything else."""
    return fixed(x, money_places(currency), group=group, sign=sign)


def fee(x: Any, currency: str | None = None, *, group: bool = False) -> str:
    return fixed(x, FEE_DECIMALS, group=group)


def _market_places(market: dict[str, Any] | None, kind: str, precision_mode: int) -> int | None:
    return places_of(((market or {}).get("precision") or {}).get(kind), precision_mode)


def amount(x: Any, market: dict[str, Any] | None, *, unit: bool = False, group: bool = False,
           precision_mode: int = TICK_SIZE) -> str:
    """An amount at the market's amount precision (``unit``: with its base currency)."""
    text = fixed(x, _market_places(market, "amount", precision_mode), group=group)
    base = (market or {}).get("base")
    return f"{text} {base}" if unit and base and text != "--" else text


def price(x: Any, market: dict[str, Any] | None, *, group: bool = False, precision_mode: int = TICK_SIZE) -> str:
    """A price at the market's price precision."""
    return fixed(x, _market_places(market, "price", precision_mode), group=group)
