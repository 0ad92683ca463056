"""The L2 order book TPS19 keeps itself (paper broker, replay, feed checks).

Each side is a dict (price -> size) beside a sorted list of its prices. A delta that changes
the size of a known level (the common case on real venues) is one dict store; only a new or
removed level touches the sorted list (a C-level bisect and memmove). Reads of the best
levels are then slices, so a caller may read the top after every message.
A sequence gap or a crossed book raises, so a caller resyncs instead of trading on a
silently wrong book.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence

Level = tuple[float, float]


class BookError(Exception):
    """The book can no longer be trusted: resync from a snapshot."""


class SequenceGap(BookError):
    pass


class CrossedBook(BookError):
    pass


class L2Book:
    __slots__ = ("symbol", "bids", "asks", "seq", "ts", "_bid_keys", "_ask_keys", "deltas_applied")

    def __init__(self, symbol: str = "") -> None:
        self.symbol = symbol
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.seq: int | None = None
        self.ts: int | None = None
        self._bid_keys: list[float] = []  # ascending: best bid is the last
        self._ask_keys: list[float] = []  # ascending: best ask is the first
        self.deltas_applied = 0

    # -- writing -------------------------------------------------------------------
    def snapshot(
        self, bids: Iterable[Sequence[float]], asks: Iterable[Sequence[float]], seq: int | None = None, ts: int | None = None
    ) -> None:
        self.bids = {float(l[0]): float(l[1]) for l in bids if float(l[1]) > 0}
        self.asks = {float(l[0]): float(l[1]) for l in asks if float(l[1]) > 0}
        self.seq, self.ts = seq, ts
        self._bid_keys = sorted(self.bids)
        self._ask_keys = sorted(self.asks)

    def apply(
        self,
        bids: Iterable[Sequence[float]],
        asks: Iterable[Sequence[float]],
        seq: int | None = None,
        prev_seq: int | None = None,
        ts: int | None = None,
    ) -> None:
        """Apply absolute-size deltas (size 0 deletes). ``prev_seq`` must equal our last seq."""
        if prev_seq is not None and prev_seq != self.seq:
            raise SequenceGap(f"{self.symbol}: expected previous seq {self.seq}, got {prev_seq}")
        self.deltas_applied += _store(self.bids, self._bid_keys, bids) + _store(self.asks, self._ask_keys, asks)
        if seq is not None:
            self.seq = seq
        if ts is not None:
            self.ts = ts

    def apply_binance(self, first_id: int, final_id: int, bids: Iterable[Sequence], asks: Iterable[Sequence]) -> bool:
        """Binance diff-depth rules: drop events older than the book; U must follow the last u.

        Returns False when the event was older than the book and was dropped.
        """
        if self.seq is None:
            raise SequenceGap(f"{self.symbol}: no snapshot")
        if final_id <= self.seq:
            return False
        if not first_id <= self.seq + 1 <= final_id:
            raise SequenceGap(f"{self.symbol}: event {first_id}..{final_id} does not follow {self.seq}")
        self.apply(bids, asks, seq=final_id)
        return True

    # -- reading -------------------------------------------------------------------
    def top(self, depth: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        b, a = self.bids, self.asks
        bk = self._bid_keys
        return (
            tuple((p, b[p]) for p in reversed(bk[max(0, len(bk) - depth):])),
            tuple((p, a[p]) for p in self._ask_keys[:depth]),
        )

    def best_bid(self) -> Level | None:
        k = self._bid_keys
        return (k[-1], self.bids[k[-1]]) if k else None

    def best_ask(self) -> Level | None:
        k = self._ask_keys
        return (k[0], self.asks[k[0]]) if k else None

    def mid(self) -> float | None:
        bb, ba = self.best_bid(), self.best_ask()
        return (bb[0] + ba[0]) / 2 if bb and ba else None

    def is_crossed(self) -> bool:
        bb, ba = self.best_bid(), self.best_ask()
        return bool(bb and ba and bb[0] >= ba[0])

    def check(self) -> None:
        if self.is_crossed():
            raise CrossedBook(f"{self.symbol}: best bid {self.best_bid()} >= best ask {self.best_ask()}")

    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)


def _store(side: dict[float, float], keys: list[float], levels: Iterable[Sequence]) -> int:
    n = 0
    for level in levels:
        price = float(level[0])
        size = float(level[1])
        n += 1
        if size:
            if price not in side:
                insort(keys, price)
            side[price] = size
        elif side.pop(price, None) is not None:
            del keys[bisect_left(keys, price)]
    return n
