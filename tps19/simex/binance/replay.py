"""Recorded Binance depth through the Binance dialect: the venue's matching-engine book is set to a
recorded REST snapshot, then each recorded ``depthUpdate`` sets the levels it names, and the
dialect publishes it under the recorded update ids (``U``/``u``). A client (ccxt, TPS19's feed)
synchronises with the venue exactly as it does with Binance: REST snapshot + diff stream.

The levels are resting orders of no account in the shared engine's books (one per level), so
``GET /api/v3/depth`` and every stream answer from the engine like for the synthetic market.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from ..engine import Book, Order
from ..instruments import Instrument
from .server import BinanceSimExchange

EIGHT = Decimal("0.00000001")  # Binance prints every price and size with 8 decimals
QUOTES = ("USDT", "BUSD", "USDC", "ETH", "BTC", "BNB", "EUR")
_ids = itertools.count(1)


def instrument_for(market_id: str, price: str | Decimal) -> Instrument:
    """A recorded market as an instrument on Binance's 8-decimal grid (no flow of its own)."""
    quote = next(q for q in QUOTES if market_id.endswith(q) and len(market_id) > len(q))
    base = market_id[: -len(quote)]
    return Instrument(f"{base}/{quote}", base, quote, EIGHT, EIGHT, EIGHT, Decimal(0), Decimal(price))


def recorded_venue(snapshots: dict[str, Any], **kwargs: Any) -> BinanceSimExchange:
    """A paused Binance-dialect venue listing the recorded markets, each book set to its snapshot
    (``snapshots``: market id -> REST depth body with ``lastUpdateId``)."""
    insts = []
    for mid, body in snapshots.items():
        top = (body.get("bids") or body.get("asks"))[0][0]
        insts.append(instrument_for(mid, top))
    sim = BinanceSimExchange(symbols=insts, autoplay=False, **kwargs)  # type: ignore[arg-type]
    for inst in insts:
        body = snapshots[f"{inst.base}{inst.quote}"]
        book = sim.engine.books[inst.symbol]
        _clear(book)
        _set_levels(book, inst, "BUY", body["bids"])
        _set_levels(book, inst, "SELL", body["asks"])
        sim._bn_published[inst.symbol] = sim._bn_book_state(inst.symbol)  # the snapshot is no update
        sim._bn_last_u[inst.symbol] = int(body["lastUpdateId"])
    sim._dirty_books.clear()
    return sim


def apply_diff(sim: BinanceSimExchange, event: dict[str, Any]) -> bool:
    """Apply one recorded ``depthUpdate`` to the venue's book and publish it with its own ``U``/``u``.
    An event the book already holds (``u`` <= the book's last update id) is dropped, as Binance's
    own snapshot/stream rule says. Returns whether it was applied."""
    inst = sim._bn_by_id[event["s"]]
    sym = inst.symbol
    if int(event["u"]) <= sim._bn_last_u[sym]:
        return False
    book = sim.engine.books[sym]
    _set_levels(book, inst, "BUY", event.get("b") or [])
    _set_levels(book, inst, "SELL", event.get("a") or [])
    sim._bn_last_u[sym] = int(event["U"]) - 1
    sim._bn_forced_u[sym] = int(event["u"])
    sim._dirty_books.add(sym)
    sim._flush()
    return True


def _clear(book: Book) -> None:
    for side in ("BUY", "SELL"):
        for price in list(book.prices[side]):
            level = book.orders_at(side, price)
            for o in list(level or ()):
                book.remove(o)


def _set_levels(book: Book, inst: Instrument, side: str, levels: Iterable[Sequence[str]]) -> None:
    """Set each named level to its quantity (0 deletes it), as a single resting order of no account."""
    for price_s, qty_s in levels:
        ticks, lots = inst.to_ticks(Decimal(price_s)), inst.to_lots(Decimal(qty_s))
        if ticks is None or lots is None:
            raise ValueError(f"{inst.symbol}: level {price_s} x {qty_s} is off Binance's 8-decimal grid")
        level = book.orders_at(side, ticks)
        for o in list(level or ()):
            book.remove(o)
        if lots > 0:
            book.add(Order(id=f"rec-{next(_ids)}", inst=inst, account=None, side=side, type="LIMIT",
                           tif="GOOD_TILL_CANCEL", post_only=False, price=ticks, qty=lots, client_oid=None,
                           create_time=0, status="ACTIVE"))
