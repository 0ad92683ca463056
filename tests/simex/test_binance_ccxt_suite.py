"""A fast subset of ccxt's OWN exchange test suite for `binance` (the per-method checks shipped in
the ccxt package: ccxt/test/exchange/async and ccxt/pro/test/Exchange) against the simulated
exchange's Binance dialect. The whole suite runs with tools/ccxt_suite/run_suite.sh
(EXCHANGE=binance); its per-method result is in docs/venues.md.

ccxt's watch* checks loop on the wall clock for up to 15 s (ending early after 5 s without an
update); here the clock *they* read jumps 6 s per reading, so each checks its first update(s) and
ends. Nothing else of ccxt is changed; signing keeps the real clock.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any

import pytest

from tps19.engine.venue import BINANCE_SPOT_OPTIONS, point_ccxt_binance
from tps19.simex.binance import BinanceSimExchange

from .conftest import BALANCES, KEY, SECRET

SYMBOL = "BTC/USDT"
REST_PUBLIC = ["load_markets", "fetch_ticker", "fetch_tickers", "fetch_trades", "fetch_ohlcv", "fetch_status"]
# (ccxt's createOrder check is left out: its Python port adds a float to a str in a debug line and
# raises TypeError against any venue)
REST_PRIVATE = ["fetch_balance", "fetch_open_orders", "fetch_orders", "fetch_closed_orders", "fetch_my_trades",
                "fetch_trading_fees"]
WS = ["watch_ticker", "watch_trades", "watch_ohlcv", "watch_orders", "watch_my_trades", "watch_balance"]


def _check(name: str) -> Any:
    pkg = "ccxt.pro.test.Exchange" if name.startswith("watch") else "ccxt.test.exchange.async"
    return getattr(importlib.import_module(f"{pkg}.test_{name}"), f"test_{name}")


def _jumping_clock(ex: Any) -> None:
    real = ex.milliseconds
    jump = [0]

    def milliseconds() -> int:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("ccxt.pro.test."):  # only the checks' own loop clock jumps
            jump[0] += 6000
            return real() + jump[0]
        return real()

    ex.milliseconds = milliseconds


async def test_ccxts_own_binance_checks_pass_against_the_binance_dialect():
    import ccxt.pro

    sim = BinanceSimExchange(port=0, seed=11, accounts={KEY: (SECRET, dict(BALANCES))}, updates_per_second=300)
    await sim.start()
    ex = ccxt.pro.binance({"apiKey": KEY, "secret": SECRET, "enableRateLimit": False,
                           "options": dict(BINANCE_SPOT_OPTIONS)})
    point_ccxt_binance(ex, sim.base_url)
    # the simulated venue lists spot markets only (the full suite's phases declare the same)
    ex.has.update({"swap": False, "future": False, "option": False, "margin": False})
    _jumping_clock(ex)
    results: dict[str, str] = {}
    stop = asyncio.Event()

    async def activity() -> None:  # private watches wait for the account's own updates
        n = 0
        while not stop.is_set():
            await ex.create_order(SYMBOL, "market", "buy" if n % 2 == 0 else "sell", 0.0005)
            n += 1
            await asyncio.sleep(0.05)

    try:
        await ex.load_markets()
        bid = (await ex.fetch_order_book(SYMBOL, 5))["bids"][0][0]
        await ex.create_order(SYMBOL, "limit", "buy", 0.001, round(bid * 0.9, 2))  # open
        gone = await ex.create_order(SYMBOL, "limit", "buy", 0.001, round(bid * 0.9, 2))
        await ex.cancel_order(gone["id"], SYMBOL)  # canceled
        await ex.create_order(SYMBOL, "market", "buy", 0.001)  # filled, with trades
        for name in REST_PUBLIC + REST_PRIVATE:
            args: list[Any] = [ex, {}] if name in ("load_markets", "fetch_status", "fetch_balance",
                                                 "fetch_trading_fees") else [ex, {}, SYMBOL]
            try:
                await asyncio.wait_for(_check(name)(*args), 20)
                results[name] = "PASS"
            except Exception as e:
                results[name] = f"FAIL {type(e).__name__}: {str(e)[:300]}"
        busy = asyncio.create_task(activity())
        for name in WS:
            try:
                await asyncio.wait_for(_check(name)(ex, {}, "USDT" if name == "watch_balance" else SYMBOL), 20)
                results[name] = "PASS"
            except Exception as e:
                results[name] = f"FAIL {type(e).__name__}: {str(e)[:300]}"
        stop.set()
        await busy
        # documented divergence, as on the real venue: spot GET /api/v3/depth carries no time ('T'),
        # so ccxt's order book has no timestamp and its check fails
        try:
            await _check("fetch_order_book")(ex, {}, SYMBOL)
            results["fetch_order_book"] = "PASS"
        except AssertionError as e:
            results["fetch_order_book"] = "FAIL timestamp" if '"timestamp" key is expected' in str(e) else f"FAIL {e}"
    finally:
        stop.set()
        await ex.close()
        await sim.stop()
    failed = {k: v for k, v in results.items() if v != "PASS" and k != "fetch_order_book"}
    assert not failed, failed
    assert results["fetch_order_book"] == "FAIL timestamp"
    assert sim.stats["internal_errors"] == 0
