"""The L2 order book TPS19 keeps itself (paper broker, replay, feed checks).

One dict per side (price -> size) makes applying a delta a single dict store; sorting
happens lazily, only when someone reads the levels, and is cached until the next change.
A sequence gap or a crossed book raises, so a caller resyncs instead of trading on a
silently wrong book.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Level = tuple[float, float]


class BookError(Exception):
    """The book can no longer be trusted: resync from a snapshot."""


class SequenceGap(BookError):
    pass


class CrossedBook(BookError):
    pass


class L2Book:
    __slots__ = ("symbol", "bids", "asks", "seq", "ts", "_bids_sorted", "_asks_sorted", "deltas_applied")

    def __init__(self, symbol: str = "") -> None:
        self.symbol = symbol
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.seq: int | None = None
        self.ts: int | None = None
        self._bids_sorted: list[float] | None = None
        self._asks_sorted: list[float] | None = None
        self.deltas_applied = 0

    # -- writing -------------------------------------------------------------------
    def snapshot(
        self, bids: Iterable[Sequence[float]], asks: Iterable[Sequence[float]], seq: int | None = None, ts: int | None = None
    ) -> None:
        self.bids = {float(l[0]): float(l[1]) for l in bids if float(l[1]) > 0}
        self.asks = {float(l[0]): float(l[1]) for l in asks if float(l[1]) > 0}
        self.seq, self.ts = seq, ts
        self._bids_sorted = self._asks_sorted = None

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
        n = _store(self.bids, bids) + _store(self.asks, asks)
        if n:
            self._bids_sorted = self._asks_sorted = None
        self.deltas_applied += n
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
    def _sorted_bids(self) -> list[float]:
        if self._bids_sorted is None:
            self._bids_sorted = sorted(self.bids, reverse=True)
        return self._bids_sorted

    def _sorted_asks(self) -> list[float]:
        if self._asks_sorted is None:
            self._asks_sorted = sorted(self.asks)
        return self._asks_sorted

    def top(self, depth: int) -> tuple[tuple[Level, ...], tuple[Level, ...]]:
        b, a = self.bids, self.asks
        return (
            tuple((p, b[p]) for p in self._sorted_bids()[:depth]),
            tuple((p, a[p]) for p in self._sorted_asks()[:depth]),
        )

    def best_bid(self) -> Level | None:
        s = self._sorted_bids()
        return (s[0], self.bids[s[0]]) if s else None

    def best_ask(self) -> Level | None:
        s = self._sorted_asks()
        return (s[0], self.asks[s[0]]) if s else None

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


def _store(side: dict[float, float], levels: Iterable[Sequence]) -> int:
    n = 0
    for level in levels:
        price = float(level[0])
        size = float(level[1])
        if size:
            side[price] = size
        else:
            side.pop(price, None)
        n += 1
    return n
