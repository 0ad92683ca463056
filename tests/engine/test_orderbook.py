"""Books on real Binance depth data, through the code production uses: ccxt.pro keeps the book
(deltas, sequence checks) and the feed copies its top into the engine's L2Book and a BookEvent."""

from __future__ import annotations

import pytest

from tps19.config import FeedSettings
from tps19.engine.bus import EventBus
from tps19.engine.events import BookEvent
from tps19.engine.feed import MarketFeed
from tps19.engine.orderbook import L2Book

from .binance_replay import DATA, binance_client, load, replay, symbol_of

real_data = pytest.mark.skipif(not DATA.exists(), reason="shared/data not beside the checkout")


@real_data
async def test_real_binance_depth_through_ccxt_pro_gives_the_recorded_books_and_events():
    snaps, messages, expected = load()
    ex = binance_client(list(snaps))
    applied: dict[str, int] = {}
    handle = ex.handle_order_book_message

    def counting(client, message, orderbook):
        applied[message["s"]] = applied.get(message["s"], 0) + 1
        return handle(client, message, orderbook)

    ex.handle_order_book_message = counting
    try:
        await replay(ex, snaps, messages)
        symbols = [symbol_of(mid) for mid in snaps]
        bus = EventBus()
        sub = bus.subscribe(BookEvent, coalesce=None)
        feed = MarketFeed(ex, symbols, bus, FeedSettings(), depth=5, streams=("book",))
        for mid, exp in expected.items():
            if mid.startswith("_"):  # "_method" describes how the books were computed
                continue
            symbol = symbol_of(mid)
            ob = ex.orderbooks[symbol]
            assert applied[mid] == exp["diffs_applied"], mid
            assert ob["nonce"] == exp["final_u"]
            assert (len(ob["bids"]), len(ob["asks"])) == (exp["n_bid_levels"], exp["n_ask_levels"])
            assert (ob["bids"][0][0] >= ob["asks"][0][0]) == exp["crossed"]
            await feed._book_once(symbol)  # reads ccxt's book (no watch: it holds an unpublished update)
            top5_bids = tuple((float(p), float(q)) for p, q in exp["top5_bids"])
            top5_asks = tuple((float(p), float(q)) for p, q in exp["top5_asks"])
            (event,) = sub.drain()
            assert (event.symbol, event.bids, event.asks, event.seq) == (symbol, top5_bids, top5_asks, exp["final_u"])
            book = feed.books[symbol]
            assert (book.best_bid(), book.best_ask(), book.seq) == (top5_bids[0], top5_asks[0], exp["final_u"])
    finally:
        await ex.close()


@real_data
async def test_a_missing_binance_diff_is_a_gap_not_a_wrong_book():
    import ccxt

    snaps, messages, _ = load()
    after = [m for m in messages if m["msg"]["data"]["s"] == "NKNUSDT"
             and m["msg"]["data"]["u"] > snaps["NKNUSDT"]["body"]["lastUpdateId"]
             and m["recv_ts"] > snaps["NKNUSDT"]["recv_ts"]]
    lost = after[2]  # a diff on the live path, after the snapshot was applied
    ex = binance_client(list(snaps))
    try:
        client = await replay(ex, snaps, messages, keep=lambda m: m is not lost)
        # ccxt drops the book and fails the next watch: the feed resyncs, nobody reads a wrong book
        assert "NKN/USDT" not in ex.orderbooks
        assert isinstance(client.rejections.get("orderbook::NKN/USDT"), ccxt.ChecksumError)
        assert "LRC/USDT" not in ex.orderbooks and "LRC/BTC" in ex.orderbooks  # the others are untouched
    finally:
        await ex.close()


def test_the_engine_book_holds_the_top_the_feed_copied():
    book = L2Book("BTC/USDT")
    assert book.best_bid() is None and book.best_ask() is None
    book.snapshot(((100.0, 1.0), (99.0, 2.0)), ((101.0, 0.5), (102.0, 3.0)), seq=11, ts=1_700_000_000_000)
    assert (book.best_bid(), book.best_ask()) == ((100.0, 1.0), (101.0, 0.5))
    assert (book.seq, book.ts) == (11, 1_700_000_000_000)
    book.snapshot(((100.5, 1.0),), (), seq=12)
    assert (book.best_bid(), book.best_ask(), book.seq) == ((100.5, 1.0), None, 12)
