"""Instrument definitions of the simulated exchange (spot CCY_PAIR only)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


MAX_UNITS = 10**15  # no price or quantity beyond this many ticks/lots

# Balances and fees are kept at each currency's precision, as the venue does (its balances carry
# at most 8 decimals): an unrounded fee (0.018208401) would leave balances with 17 significant
# digits, which a float cannot carry, and ccxt's `free + used == total` would then fail.
CURRENCY_DECIMALS: dict[str, int] = {"BTC": 8, "ETH": 8, "SOL": 8, "USDT": 8, "USD": 8, "USDC": 8}
DEFAULT_CURRENCY_DECIMALS = 8


def currency_step(ccy: str) -> Decimal:
    """The smallest amount of `ccy` a balance or fee holds."""
    return Decimal(1).scaleb(-CURRENCY_DECIMALS.get(ccy, DEFAULT_CURRENCY_DECIMALS))


def _grid(value: Decimal, step: Decimal) -> int | None:
    try:
        if not value.is_finite() or abs(value) > step * MAX_UNITS:
            return None
        q, r = divmod(value, step)
    except (ArithmeticError, ValueError):
        return None
    return int(q) if r == 0 else None


@dataclass(frozen=True)
class Instrument:
    symbol: str  # ccxt unified symbol, "BTC/USDT"
    base: str
    quote: str
    tick: Decimal  # price_tick_size
    lot: Decimal  # qty_tick_size
    min_qty: Decimal
    min_notional: Decimal
    start_price: Decimal
    # synthetic flow shape
    level_gap_ticks: int = 50  # typical distance between maker levels
    typical_qty: Decimal = Decimal("0.05")
    vol_per_event: float = 0.00004  # unconditional return std per flow event

    @property
    def id(self) -> str:  # exchange id, "BTC_USDT"
        return f"{self.base}_{self.quote}"

    @property
    def price_decimals(self) -> int:
        return max(0, -int(self.tick.normalize().as_tuple().exponent))

    @property
    def qty_decimals(self) -> int:
        return max(0, -int(self.lot.normalize().as_tuple().exponent))

    # integer <-> Decimal at the API boundary
    def price_str(self, ticks: int) -> str:
        return str((self.tick * ticks).quantize(self.tick))

    def qty_str(self, lots: int) -> str:
        return str((self.lot * lots).quantize(self.lot))

    def price(self, ticks: int) -> Decimal:
        return (self.tick * ticks).quantize(self.tick)

    def qty(self, lots: int) -> Decimal:
        return (self.lot * lots).quantize(self.lot)

    def to_ticks(self, price: Decimal) -> int | None:
        """Exact tick count, or None when the price is not on the tick grid (or absurd)."""
        return _grid(price, self.tick)

    def to_lots(self, qty: Decimal) -> int | None:
        return _grid(qty, self.lot)

    def as_api(self) -> dict:
        """The public/get-instruments row."""
        return {
            "symbol": self.id,
            "inst_type": "CCY_PAIR",
            "display_name": self.symbol,
            "base_ccy": self.base,
            "quote_ccy": self.quote,
            "quote_decimals": self.price_decimals,
            "quantity_decimals": self.qty_decimals,
            "price_tick_size": str(self.tick),
            "qty_tick_size": str(self.lot),
            "max_leverage": "1",
            "tradable": True,
            "expiry_timestamp_ms": 0,
            "beta_product": False,
            "margin_buy_enabled": False,
            "margin_sell_enabled": False,
            # not in the real payload's documented fields; ccxt ignores them
            "min_quantity": str(self.min_qty),
            "min_notional": str(self.min_notional),
        }


DEFAULT_INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument("BTC/USDT", "BTC", "USDT", Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"),
               Decimal("1"), Decimal("60000"), level_gap_ticks=60, typical_qty=Decimal("0.02"), vol_per_event=0.00001),
    Instrument("ETH/USDT", "ETH", "USDT", Decimal("0.01"), Decimal("0.0001"), Decimal("0.0001"),
               Decimal("1"), Decimal("3000"), level_gap_ticks=20, typical_qty=Decimal("0.3"), vol_per_event=0.000013),
    Instrument("SOL/USDT", "SOL", "USDT", Decimal("0.001"), Decimal("0.001"), Decimal("0.001"),
               Decimal("1"), Decimal("150"), level_gap_ticks=10, typical_qty=Decimal("5"), vol_per_event=0.00002),
)


def instruments_for(symbols: list[str] | None) -> list[Instrument]:
    if symbols is None:
        return list(DEFAULT_INSTRUMENTS)
    known = {i.symbol: i for i in DEFAULT_INSTRUMENTS}
    out: list[Instrument] = []
    for s in symbols:
        if isinstance(s, Instrument):
            out.append(s)
        elif s in known:
            out.append(known[s])
        else:
            raise ValueError(f"unknown simulated instrument {s!r}; known: {sorted(known)}")
    return out
