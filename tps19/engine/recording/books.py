"""Books and prints rebuilt from recorded frames (the replay's view of the venue)."""

from __future__ import annotations

import json
from bisect import bisect_left, insort
from typing import Any

from ..events import Level, Trade


class SideBook:
    """One side of an L2 book: price -> size, with the prices kept sorted (ascending)."""

    __slots__ = ("size", "prices")

    def __init__(self) -> None:
        self.size: dict[float, float] = {}
        self.prices: list[float] = []

    def reset(self, px: list[float], qty: list[float]) -> None:
        self.size = {p: q for p, q in zip(px, qty) if q > 0}
        self.prices = sorted(self.size)

    def apply(self, px: list[float], qty: list[float]) -> None:
        size, prices = self.size, self.prices
        for p, q in zip(px, qty):
            if q > 0:
                if p not in size:
                    insort(prices, p)
                size[p] = q
            elif p in size:
                del size[p]
                del prices[bisect_left(prices, p)]

    # zip/map rather than a generator: these run for every book a replay publishes and were half
    # of a divergence's CPU time
    def top_desc(self, depth: int) -> tuple[Level, ...]:
        top = self.prices[-depth:]
        top.reverse()
        return tuple(zip(top, map(self.size.__getitem__, top)))

    def top_asc(self, depth: int) -> tuple[Level, ...]:
        top = self.prices[:depth]
        return tuple(zip(top, map(self.size.__getitem__, top)))


class Book:
    __slots__ = ("bids", "asks", "seq", "ts")

    def __init__(self) -> None:
        self.bids = SideBook()
        self.asks = SideBook()
        self.seq: int | None = None
        self.ts: int | None = None

    def snapshot(self, bp: list[float], bq: list[float], ap: list[float], aq: list[float], seq: int | None,
                 ts: int | None) -> None:
        self.bids.reset(bp, bq)
        self.asks.reset(ap, aq)
        self.seq, self.ts = seq, ts

    def apply(self, bp: list[float] | None, bq: list[float] | None, ap: list[float] | None, aq: list[float] | None,
              seq: int | None, ts: int | None) -> None:
        if bp:
            self.bids.apply(bp, bq or [])
        if ap:
            self.asks.apply(ap, aq or [])
        self.seq = seq
        if ts is not None:
            self.ts = ts

    def levels(self, depth: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        return self.bids.top_desc(depth), self.asks.top_asc(depth)


def prints_of(raw: str, exchange_id: str) -> list[Trade]:
    """The prints of one recorded trade frame, as the feed publishes them (ccxt's parse)."""
    try:
        msg = json.loads(raw)
    except ValueError:
        return []
    out: list[Trade] = []
    if exchange_id in ("cryptocom", "sim"):
        for d in (msg.get("result") or {}).get("data") or ():
            try:
                out.append(Trade(ts=int(d["t"]), side=str(d.get("s", "")).lower(), price=float(d["p"]),
                                 amount=float(d["q"]), id=str(d["d"])))
            except (KeyError, TypeError, ValueError):
                continue
        # the venue sends the newest first; ccxt appends them oldest first
        out.sort(key=lambda t: t.ts)
        return out
    data: Any = msg.get("data", msg) if isinstance(msg, dict) else {}
    if isinstance(data, dict) and data.get("e") in ("trade", "aggTrade"):
        try:
            out.append(Trade(ts=int(data["T"]), side="sell" if data.get("m") else "buy", price=float(data["p"]),
                             amount=float(data["q"]), id=str(data.get("t", data.get("a")))))
        except (KeyError, TypeError, ValueError):
            pass
    return out
