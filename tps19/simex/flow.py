"""Seeded synthetic order flow: market makers quoting a ladder around a GARCH fair value,
Poisson takers lifting/hitting it. Everything is drawn from one seeded RNG so a run driven by
``step(n)`` with an injected clock is reproducible."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from .engine import MatchingEngine, Order
from .instruments import Instrument

LADDER_LEVELS = 70  # maker levels per side the flow aims for
# With an anchor (another venue's fair value of the same instrument), each move pulls this share
# of the log distance back toward it: arbitrageurs keep two venues within a few bp of each other
# (stationary basis ~ vol_per_event / sqrt(2 * ANCHOR_PULL), a few ticks) instead of two random
# walks drifting apart.
ANCHOR_PULL = 0.02


class SymbolFlow:
    def __init__(self, inst: Instrument, engine: MatchingEngine, rng: random.Random, fair: float,
                 anchor: Callable[[], float | None] | None = None) -> None:
        self.inst = inst
        self.anchor = anchor
        self.engine = engine
        self.rng = rng
        self.book = engine.books[inst.symbol]
        self.fair = fair
        self.v0 = inst.vol_per_event ** 2
        self.alpha, self.beta = 0.08, 0.90
        self.omega = self.v0 * (1 - self.alpha - self.beta)
        self.var = self.v0
        self.last_r = 0.0
        self.makers: list[Order] = []
        self.tick = float(inst.tick)
        self.gap = inst.level_gap_ticks
        self.typ_lots = max(1, int(inst.typical_qty / inst.lot))

    # -- helpers --------------------------------------------------------------------------
    def fair_ticks(self) -> int:
        return int(round(self.fair / self.tick))

    def half_spread(self) -> int:
        scale = math.sqrt(self.var / self.v0)
        return max(1, int(self.gap * 0.15 * scale))

    def _size(self, mult: float = 1.0) -> int:
        return max(1, int(self.typ_lots * mult * math.exp(self.rng.gauss(-0.3, 0.8))))

    def _place(self, side: str, price: int) -> None:
        if price <= 0:
            return
        bb, ba = self.book.best_bid(), self.book.best_ask()
        if side == "BUY" and ba is not None and price >= ba:
            price = ba - 1
        if side == "SELL" and bb is not None and price <= bb:
            price = bb + 1
        if price <= 0:
            return
        o = self.engine.new_order(None, self.inst.symbol, side, "LIMIT", self._size(), price)
        if o.is_open:
            self.makers.append(o)

    def _level_price(self, side: str, k: int) -> int:
        f, hs = self.fair_ticks(), self.half_spread()
        jitter = self.rng.randint(0, max(0, self.gap // 3))
        if side == "BUY":
            return f - hs - k * self.gap - jitter
        return f + hs + k * self.gap + jitter

    def _prune(self) -> None:
        if len(self.makers) > 4 * LADDER_LEVELS:
            self.makers = [o for o in self.makers if o.is_open]

    # -- lifecycle ------------------------------------------------------------------------
    def seed_book(self) -> None:
        for k in range(LADDER_LEVELS):
            for side in ("BUY", "SELL"):
                for _ in range(1 + (self.rng.random() < 0.5)):
                    self._place(side, self._level_price(side, k))

    def event(self) -> None:
        u = self.rng.random()
        if u < 0.40:
            self._move()
        elif u < 0.72:
            side = "BUY" if self.rng.random() < 0.5 else "SELL"
            k = min(LADDER_LEVELS - 1, int(self.rng.expovariate(1 / 12)))
            # keep the ladder full: top up the thinner side
            nb, na = len(self.book.prices["BUY"]), len(self.book.prices["SELL"])
            if nb < LADDER_LEVELS * 0.8 or na < LADDER_LEVELS * 0.8:
                side = "BUY" if nb < na else "SELL"
                k = self.rng.randint(0, LADDER_LEVELS - 1)
            self._place(side, self._level_price(side, k))
        elif u < 0.86:
            self._cancel_random()
        else:
            self._taker()
        self._prune()

    def _move(self) -> None:
        self.var = self.omega + self.alpha * self.last_r ** 2 + self.beta * self.var
        r = math.sqrt(self.var) * self.rng.gauss(0, 1)
        self.last_r = r
        a = self.anchor() if self.anchor is not None else None
        if a is not None and a > 0:
            r += ANCHOR_PULL * math.log(a / self.fair)
        self.fair *= math.exp(r)
        f, hs = self.fair_ticks(), self.half_spread()
        # makers pull quotes the fair value moved through, then re-quote the top
        pulled = {"BUY": 0, "SELL": 0}
        for o in list(self.makers):
            if not o.is_open or o.price is None:  # makers only quote limits
                continue
            if (o.side == "BUY" and o.price > f - hs) or (o.side == "SELL" and o.price < f + hs):
                self.engine.cancel(o)
                pulled[o.side] += 1
            elif abs(o.price - f) > (LADDER_LEVELS + 5) * self.gap:
                self.engine.cancel(o)
        for side, n in pulled.items():
            for k in range(min(n, 8)):
                self._place(side, self._level_price(side, k))
        bb, ba = self.book.best_bid(), self.book.best_ask()
        if bb is None or bb < f - hs - self.gap:
            self._place("BUY", f - hs)
        if ba is None or ba > f + hs + self.gap:
            self._place("SELL", f + hs)

    def shock(self, pct: float) -> tuple[int, int]:
        """The market moves ``pct`` % in one step: the makers pull every quote, a print at the new
        fair value (a taker sweeping whatever rests on the way, traders' orders included, then a
        maker there), and a fresh ladder around it. Returns (fair before, fair after) in ticks."""
        before = self.fair_ticks()
        for o in self.makers:
            if o.is_open:
                self.engine.cancel(o)
        self.makers = []
        self.fair *= 1.0 + pct / 100.0
        self.var = self.v0  # a jump, not a volatility regime
        target = max(1, self.fair_ticks())
        side, opp = ("BUY", "SELL") if pct > 0 else ("SELL", "BUY")
        # what rests between the old and the new price (traders' orders) trades first
        on_way = sum(q for p, q, _ in self.book.top(opp, len(self.book.prices[opp]))
                     if (p <= target if side == "BUY" else p >= target))
        size = self._size()
        maker = self.engine.new_order(None, self.inst.symbol, opp, "LIMIT", size, target)
        if maker.is_open:
            self.engine.new_order(None, self.inst.symbol, side, "LIMIT", on_way + maker.remaining, target,
                                  tif="IMMEDIATE_OR_CANCEL")
        self.seed_book()
        return before, target

    def _cancel_random(self) -> None:
        live = [o for o in self.makers[-60:] if o.is_open]
        if live:
            self.engine.cancel(self.rng.choice(live))

    def _taker(self) -> None:
        bb, ba = self.book.best_bid(), self.book.best_ask()
        if bb is None or ba is None:
            return
        mid = (bb + ba) / 2
        bias = max(-0.3, min(0.3, (self.fair_ticks() - mid) / max(1.0, self.gap * 2)))
        side = "BUY" if self.rng.random() < 0.5 + bias else "SELL"
        self.engine.new_order(None, self.inst.symbol, side, "MARKET", self._size(1.5))


class Flow:
    def __init__(self, engine: MatchingEngine, instruments: list[Instrument], seed: int, fairs: dict[str, float],
                 anchor: Callable[[str], float | None] | None = None) -> None:
        """``anchor(symbol)``: another venue's fair value that this venue's follows (None: a free walk)."""
        self.rng = random.Random(seed)
        self.symbols = [SymbolFlow(i, engine, random.Random(f"{seed}:{i.symbol}"), fairs[i.symbol],
                                   None if anchor is None else _bound(anchor, i.symbol)) for i in instruments]

    def fair(self, symbol: str) -> float | None:
        for s in self.symbols:
            if s.inst.symbol == symbol:
                return s.fair
        return None

    def seed_books(self) -> None:
        for s in self.symbols:
            s.seed_book()

    def event(self) -> str:
        """Run one flow event on a (seeded) random symbol; returns the symbol."""
        s = self.symbols[self.rng.randrange(len(self.symbols))]
        s.event()
        return s.inst.symbol


def _bound(anchor: Callable[[str], float | None], symbol: str) -> Callable[[], float | None]:
    return lambda: anchor(symbol)
