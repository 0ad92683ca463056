"""Figures a trader reviews before a protective order goes in: how far a trigger is from the
market, and what a bracket loses at worst (the order ticket shows both; one computation)."""

from __future__ import annotations

from decimal import Decimal

from .orders import fee_rate

HUNDRED = Decimal(100)


def trigger_distance(level: Decimal, ref: Decimal) -> tuple[Decimal, Decimal]:
    """(percent, basis points) from ``ref`` to ``level``, signed: negative below the market."""
    pct = (level - ref) / ref * HUNDRED
    return pct, pct * HUNDRED


def bracket_worst_loss(side: str, amount: Decimal, entry: Decimal, stop: Decimal, market: dict | None,
                       *, entry_taker: bool) -> Decimal:
    """What a bracket loses if its stop-loss fills at its level, in the quote currency: the move
    from entry to stop, the entry's fee (taker when it takes liquidity, else maker) and the stop's
    taker fee. A gap through the stop loses more: this is the loss at the level."""
    move = (entry - stop) if side == "buy" else (stop - entry)
    fees = amount * entry * fee_rate(market, "taker" if entry_taker else "maker") + amount * stop * fee_rate(market, "taker")
    return amount * move + fees
