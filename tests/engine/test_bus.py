"""Event bus: coalesced books for slow subscribers, bounded queues that count what they drop."""

from __future__ import annotations

import asyncio

from tps19.engine.bus import EventBus
from tps19.engine.events import BookEvent, LogEvent, Trade, TradeEvent


def _book(symbol: str, bid: float) -> BookEvent:
    return BookEvent(symbol=symbol, bids=((bid, 1.0),), asks=((bid + 1, 1.0),), ts=None, seq=None)


def test_slow_subscriber_gets_latest_book_per_symbol_only():
    bus = EventBus()
    sub = bus.subscribe(BookEvent)
    for i in range(1000):
        bus.publish(_book("BTC/USDT", 100 + i))
        bus.publish(_book("ETH/USDT", 10 + i))
    got = sub.drain()
    assert sorted((e.symbol, e.best_bid) for e in got) == [("BTC/USDT", 1099.0), ("ETH/USDT", 1009.0)]
    assert sub.drain() == []


def test_bounded_queue_drops_oldest_and_counts():
    bus = EventBus()
    sub = bus.subscribe(TradeEvent, maxsize=10)
    for i in range(25):
        bus.publish(TradeEvent("BTC/USDT", (Trade(ts=i, side="buy", price=1.0, amount=1.0),)))
    got = sub.drain()
    assert [e.trades[0].ts for e in got] == list(range(15, 25))
    assert sub.dropped == 15


def test_type_filter_and_failing_callback_does_not_stop_publishing():
    bus = EventBus()
    logs = bus.subscribe(LogEvent)
    seen = []
    bus.on(BookEvent, lambda e: 1 / 0)
    bus.on(BookEvent, seen.append)
    bus.publish(_book("BTC/USDT", 1))
    bus.publish(LogEvent("info", "hello"))
    assert len(seen) == 1 and bus.callback_errors == 1
    assert [e.message for e in logs.drain()] == ["hello"]


async def test_wait_wakes_on_publish_and_times_out_empty():
    bus = EventBus()
    sub = bus.subscribe(LogEvent)
    assert await sub.wait(timeout=0.01) == []
    asyncio.get_running_loop().call_later(0.01, bus.publish, LogEvent("info", "x"))
    got = await sub.wait(timeout=5)
    assert [e.message for e in got] == ["x"]
