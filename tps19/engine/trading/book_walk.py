"""What a taker order takes from one side of a book: shared by the paper broker's fills and the
order ticket's estimate, so the estimate a trader reviews is the fill paper trading books."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


def walk_levels(levels: Iterable[tuple[Decimal, Decimal]], side: str, amount: Decimal,
                limit: Decimal | None = None) -> list[tuple[Decimal, Decimal]]:
    """The (price, size) a `side` order of `amount` takes from `levels` (the far side, best first),
    never beyond `limit`."""
    out: list[tuple[Decimal, Decimal]] = []
    rem = amount
    for p, s in levels:
        if limit is not None and ((side == "buy" and p > limit) or (side == "sell" and p < limit)):
            break
        q = min(s, rem)
        out.append((p, q))
        rem -= q
        if rem <= 0:
            break
    return out


@dataclass(frozen=True)
class Estimate:
    """What an order would do against the visible book now (the order ticket shows it)."""

    avg_price: Decimal | None  # expected average fill price (None: rests, no fill expected now)
    taker_amount: Decimal  # part expected to execute at once
    notional: Decimal | None
    fee: Decimal | None
    fee_rate: Decimal  # the venue's rate the fee was computed with (trading/fees.py)
    slippage_bps: Decimal | None  # avg fill vs best price on the far side
    short_book: bool  # the visible book does not hold the whole amount


def estimate(side: str, otype: str, amount: Decimal, price: Decimal | None, book: Any,
             market: dict | None) -> Estimate:
    """Walk the visible book (a BookEvent) on the far side: what executes now, at what average,
    fee and slippage; the same walk and the same fee rates as a paper fill."""
    from .orders import fee_rate

    levels = (book.asks if side == "buy" else book.bids) if book is not None else ()
    exact = ((Decimal(repr(p)), Decimal(repr(q))) for p, q in levels)
    # a post-only order takes nothing; the rest take what the paper broker's fill would take
    takes = [] if otype == "post_only" else walk_levels(exact, side, amount, None if otype == "market" else price)
    cost = sum((p * q for p, q in takes), Decimal(0))
    filled = sum((q for _, q in takes), Decimal(0))
    short = otype == "market" and amount - filled > 0
    avg = cost / filled if filled else None
    rate_t, rate_m = fee_rate(market, "taker"), fee_rate(market, "maker")
    rest = amount - filled
    if otype == "market":
        notional = cost if filled else None
        fee = cost * rate_t if filled else None
        rate = rate_t
    else:
        notional = cost + (rest * price if price is not None else Decimal(0))
        fee = cost * rate_t + (rest * price * rate_m if price is not None else Decimal(0))
        rate = rate_t if filled else rate_m
    slip = None
    if avg is not None and levels:
        best = Decimal(repr(levels[0][0]))
        slip = ((avg - best) / best * 10_000) if side == "buy" else ((best - avg) / best * 10_000)
    return Estimate(avg, filled, notional, fee, rate, slip, short)
