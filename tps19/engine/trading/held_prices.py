"""Marks for what the account holds outside the traded symbols.

The feed streams books only for the symbols traded (``--symbol BTC/USDT``), yet equity, exposure,
leverage and the loss limit count every currency held. A currency whose pricing markets
(``Portfolio.price_path``: ``X/VAL``, or ``X/USDT`` x ``USDT/VAL``) are not streamed is marked
from a slow REST ticker poll instead (mid of bid/ask, else the last price). A currency with no
path at all is excluded (``Portfolio.excluded``) and the desk and headless lines say so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...aio import cancel_and_wait

if TYPE_CHECKING:
    from .portfolio import Portfolio

log = logging.getLogger(__name__)
INTERVAL_S = 15.0


def ticker_mark(t: dict[str, Any]) -> Decimal | None:
    """Mid of a ccxt ticker's bid and ask, else its last price (None if it has neither)."""
    bid, ask = t.get("bid"), t.get("ask")
    if bid and ask:
        return (Decimal(str(bid)) + Decimal(str(ask))) / 2
    last = t.get("last")
    return Decimal(str(last)) if last else None


class HeldPrices:
    def __init__(self, portfolio: Portfolio, client: Any, streamed: Iterable[str], *,
                 interval_s: float = INTERVAL_S) -> None:
        self.portfolio = portfolio
        self.client = client
        self.streamed = set(streamed)
        self.interval_s = interval_s
        self.polls = 0
        self.failures = 0
        self._task: asyncio.Task | None = None

    def wanted(self) -> list[str]:
        return sorted(self.portfolio.price_symbols() - self.streamed)

    async def poll_once(self) -> int:
        """Mark every wanted symbol from its ticker; returns how many were marked."""
        done = 0
        for sym in self.wanted():
            try:
                m = ticker_mark(await self.client.fetch_ticker(sym))
            except Exception as e:  # reported, counted, tried again next round
                self.failures += 1
                log.warning("ticker of held currency %s failed: %s: %s", sym, type(e).__name__, e)
                continue
            if m is not None and self.portfolio.marks.get(sym) != m:
                self.portfolio.marks[sym] = m
                if self.portfolio.publisher is not None:
                    self.portfolio.publisher.touch()
            done += m is not None
        self.polls += 1
        return done

    async def run(self) -> None:
        while True:
            if self.wanted():
                await self.poll_once()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="portfolio-held-prices")

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            await cancel_and_wait([task])
