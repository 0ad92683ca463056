"""Helpers to run the live broker against the embedded simulated exchange on loopback."""

from __future__ import annotations

from decimal import Decimal

from tps19.simex import SimExchange, point_ccxt

KEY, SECRET = "trader-key", "trader-secret"
KEY2, SECRET2 = "other-key", "other-secret"
START_LIVE = {"USDT": Decimal("100000"), "BTC": Decimal("1")}


def make_sim() -> SimExchange:
    return SimExchange(port=0, seed=19, autoplay=False, accounts={
        KEY: (SECRET, dict(START_LIVE)), KEY2: (SECRET2, {"USDT": Decimal("100000"), "BTC": Decimal("5")})})


async def make_client(base_url: str, key: str = KEY, secret: str = SECRET, timeout_ms: int = 5000):
    import ccxt.pro as ccxtpro

    c = ccxtpro.cryptocom({"apiKey": key, "secret": secret, "enableRateLimit": False, "timeout": timeout_ms})
    point_ccxt(c, base_url)
    await c.load_markets()
    return c


def venue_totals(sim: SimExchange, key: str = KEY) -> dict[str, Decimal]:
    return {c: v["total"] for c, v in sim.account_balances(key).items() if v["total"] != 0}


async def inside_spread_price(client, symbol="BTC/USDT") -> Decimal:
    ob = await client.fetch_order_book(symbol, 5)
    bid, ask = Decimal(repr(ob["bids"][0][0])), Decimal(repr(ob["asks"][0][0]))
    tick = Decimal("0.01")
    p = bid + tick
    assert p < ask, (bid, ask)
    return p
