"""The fee schedule paper fills, live estimates and the order ticket all use: the venue's own.

ccxt's static table for a venue is often not what the account pays (cryptocom: 0.25 % / 0.5 %
in ccxt, 0.04 % / 0.06 % on the simulated venue). At trading start the venue's schedule is
fetched (``fetch_trading_fees``) when the venue offers it, else taken from settings
(``TPS19_FEES__MAKER`` / ``TAKER``), else ccxt's figure stays (and a warning says so). The chosen
rates are written into ccxt's market dicts, the one place every fee computation reads
(``orders.fee_rate``), so the ticket's estimate and a paper fill can never disagree.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .orders import D_or_none

log = logging.getLogger(__name__)
SOURCE_KEY = "tps19_fee_source"  # written into each market dict: "venue" | "settings" | "ccxt"


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    maker: Decimal
    taker: Decimal
    source: str  # venue | settings | ccxt


def _rate(x: Any) -> Decimal | None:
    d = D_or_none(x)
    return d if d is not None and d.is_finite() and Decimal(0) <= d < 1 else None


async def fetch_venue_fees(client: Any, symbols: list[str]) -> dict[str, FeeSchedule]:
    """The venue's maker/taker rates per symbol, or {} when it does not offer them."""
    if client is None or not (getattr(client, "has", None) or {}).get("fetchTradingFees"):
        return {}
    try:
        fees = await client.fetch_trading_fees()
    except Exception as err:  # not offered, no permission, network: settings or ccxt's table decide
        log.warning("venue fee schedule unavailable (%s: %s); using settings or ccxt's table",
                    type(err).__name__, str(err)[:200])
        return {}
    out = {}
    for s in symbols:
        row = fees.get(s) if isinstance(fees, dict) else None
        maker, taker = _rate((row or {}).get("maker")), _rate((row or {}).get("taker"))
        if maker is not None and taker is not None:
            out[s] = FeeSchedule(maker, taker, "venue")
    return out


def choose(markets: dict[str, dict[str, Any]], venue: dict[str, FeeSchedule], maker: Decimal | None,
           taker: Decimal | None) -> dict[str, FeeSchedule]:
    """Per symbol: the venue's schedule, else the settings' (both rates set), else ccxt's."""
    out = {}
    for s, m in markets.items():
        if s in venue:
            out[s] = venue[s]
        elif maker is not None and taker is not None:
            out[s] = FeeSchedule(maker, taker, "settings")
        else:
            out[s] = FeeSchedule(_rate(m.get("maker")) or Decimal(0), _rate(m.get("taker")) or Decimal(0), "ccxt")
    return out


def apply(markets: dict[str, dict[str, Any]], schedules: dict[str, FeeSchedule]) -> None:
    """Write the schedules into ccxt's market dicts (floats, as ccxt keeps them; fee_rate reads
    them back exactly through their repr)."""
    for s, f in schedules.items():
        m = markets.get(s)
        if m is None:
            continue
        m["maker"], m["taker"], m[SOURCE_KEY] = float(f.maker), float(f.taker), f.source


async def install_fee_schedule(client: Any, markets: dict[str, dict[str, Any]], *, maker: Decimal | None = None,
                               taker: Decimal | None = None) -> dict[str, FeeSchedule]:
    """Fetch (or fall back), write into ``markets``, and return what each symbol now charges."""
    venue = await fetch_venue_fees(client, list(markets))
    schedules = choose(markets, venue, maker, taker)
    apply(markets, schedules)
    sources = sorted({f.source for f in schedules.values()})
    if "ccxt" in sources:
        log.warning("fees for some markets come from ccxt's static table (the venue did not say; "
                    "set TPS19_FEES__MAKER and TPS19_FEES__TAKER)")
    return schedules


def fee_source(market: dict[str, Any] | None) -> str:
    return str((market or {}).get(SOURCE_KEY, "ccxt"))


__all__ = ["FeeSchedule", "SOURCE_KEY", "apply", "choose", "fee_source", "fetch_venue_fees", "install_fee_schedule"]
