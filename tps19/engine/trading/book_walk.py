"""What a taker order takes from one side of a book: shared by the paper broker's fills and the
order ticket's estimate, so the estimate a trader reviews is the fill paper trading books."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal


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
