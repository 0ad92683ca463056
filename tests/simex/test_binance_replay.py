"""The real Binance depth recording (/work/shared/data) replayed through the simulated exchange's
Binance dialect: the venue's engine book starts at each recorded REST snapshot, the recorded diffs
go out on its diff-depth stream under their recorded update ids, and TPS19's feed (ccxt.pro's
binance client over real HTTP + websockets) ends with the recording's expected books."""

from __future__ import annotations

import asyncio

import pytest

from tps19.config import FeedSettings
from tps19.engine.bus import EventBus
from tps19.engine.feed import MarketFeed
from tps19.engine.venue import BINANCE_SPOT_OPTIONS, point_ccxt_binance
from tps19.simex.binance.replay import apply_diff, recorded_venue

from ..engine.binance_replay import DATA, load, symbol_of
from .conftest import wait_for

real_data = pytest.mark.skipif(not DATA.exists(), reason="shared/data not found")


def _levels(side):
    return [(float(p), float(q)) for p, q, _ in side]


@real_data
async def test_recorded_binance_depth_through_the_binance_dialect_gives_the_expected_books():
    import ccxt.pro

    snaps, messages, expected = load()
    sim = recorded_venue({mid: s["body"] for mid, s in snaps.items()}, port=0)
    await sim.start()
    ex = ccxt.pro.binance({"enableRateLimit": False, "options": dict(BINANCE_SPOT_OPTIONS)})
    point_ccxt_binance(ex, sim.base_url)
    feed = None
    try:
        await ex.load_markets()
        symbols = [symbol_of(mid) for mid in snaps]
        assert sorted(ex.markets) == sorted(symbols)
        feed = MarketFeed(ex, symbols, EventBus(), FeedSettings(), depth=5, streams=("book",))
        await feed.start()
        # every book watched (REST snapshot taken) before the first recorded diff goes out
        await wait_for(lambda: all(ex.orderbooks.get(s) is not None and ex.orderbooks[s]["nonce"] is not None
                                   for s in symbols), timeout=20)
        applied = 0
        for m in messages:  # in the order they were received
            applied += apply_diff(sim, m["msg"]["data"])
            await asyncio.sleep(0)
        assert applied > 150
        finals = {symbol_of(mid): exp["final_u"] for mid, exp in expected.items() if not mid.startswith("_")}
        await wait_for(lambda: all(s in feed.books and feed.books[s].seq == u for s, u in finals.items()), timeout=20)
        for mid, exp in expected.items():
            if mid.startswith("_"):
                continue
            symbol = symbol_of(mid)
            top5_bids = tuple((float(p), float(q)) for p, q in exp["top5_bids"])
            top5_asks = tuple((float(p), float(q)) for p, q in exp["top5_asks"])
            book = feed.books[symbol]  # the engine's book: the feed's copy of ccxt's top 5
            assert (book.bids, book.asks, book.seq) == (top5_bids, top5_asks, exp["final_u"]), mid
            venue = sim.order_book(symbol, 5000)  # the venue's engine book, every level
            assert (len(venue["bids"]), len(venue["asks"])) == (exp["n_bid_levels"], exp["n_ask_levels"]), mid
            assert tuple(_levels(venue["bids"])[:5]) == top5_bids and tuple(_levels(venue["asks"])[:5]) == top5_asks
            # ccxt's own book: its top equals the venue's (ccxt truncates it in place to the feed's
            # watch limit, so levels below the top are not comparable)
            ob = ex.orderbooks[symbol]
            assert ob["nonce"] == exp["final_u"]
            assert [tuple(lvl[:2]) for lvl in ob["bids"][:5]] == list(top5_bids)
            assert [tuple(lvl[:2]) for lvl in ob["asks"][:5]] == list(top5_asks)
        assert feed.stats.total("resyncs") == 0
    finally:
        if feed is not None:
            await feed.stop()
        await ex.close()
        await sim.stop()
