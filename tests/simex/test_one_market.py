"""Two simulated venues of one run are one market: the same opening prices, and the second venue's
fair value follows the first's (as arbitrage ties real venues), instead of two unrelated markets
whose 'cross-venue spread' showed a 1,256 bp edge no real pair of venues has."""

from __future__ import annotations

import math

from tps19.simex import SimExchange
from tps19.simex.binance import BinanceSimExchange


def _bp(a: float, b: float) -> float:
    return abs(math.log(a / b)) * 10_000


async def test_venues_of_one_run_open_at_one_price_and_a_follower_converges_on_its_anchor():
    leader = SimExchange(seed=19, autoplay=False)
    follower = BinanceSimExchange(seed=19, flow_seed=1019, autoplay=False, anchor=leader.flow.fair)
    for a, b in zip(leader.flow.symbols, follower.flow.symbols):
        assert a.inst.symbol == b.inst.symbol and _bp(a.fair, b.fair) < 0.5  # one opening price (a tick apart)
    # an anchor 1 % (100 bp) away: the flow's fair value walks to it within a few hundred moves
    target = {s.inst.symbol: s.fair * 1.01 for s in leader.flow.symbols}
    pulled = SimExchange(seed=19, flow_seed=7, autoplay=False, anchor=target.get)
    free = SimExchange(seed=19, flow_seed=7, autoplay=False)
    await pulled.step(1500)
    await free.step(1500)
    for p, f in zip(pulled.flow.symbols, free.flow.symbols):
        sym = p.inst.symbol
        assert _bp(p.fair, target[sym]) < 15, sym  # was 100 bp away
        assert _bp(f.fair, target[sym]) > 50, sym  # the same flow without an anchor stays where it was
        book = pulled.engine.books[sym]
        mid = (book.best_bid() + book.best_ask()) / 2 * float(p.inst.tick)
        assert _bp(mid, target[sym]) < 30, sym  # the quotes moved with it
