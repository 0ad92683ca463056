from __future__ import annotations

import asyncio
from tps19.config import ExchangeSettings, RiskSettings, Settings
from tps19.engine.events import BookEvent, Trade, TradeEvent


def settings(**risk):
    risk.setdefault("max_order_notional", 1_000_000)
    return Settings.model_construct(risk=RiskSettings(**risk), exchange=ExchangeSettings(id="cryptocom"))


def book(symbol="BTC/USDT", bids=((49999.0, 0.3), (49990.0, 1.0)), asks=((50000.0, 0.1), (50001.0, 0.2), (50005.0, 0.5))):
    return BookEvent(symbol=symbol, bids=tuple(bids), asks=tuple(asks), ts=None, seq=None)


def trades(*ts, symbol="BTC/USDT"):
    return TradeEvent(symbol=symbol, trades=tuple(Trade(ts=0, side=s, price=p, amount=a) for s, p, a in ts))


async def until(cond, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.005)
