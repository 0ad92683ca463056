"""The account endpoints ccxt's cryptocom client calls besides trading (fees, accounts, ledger,
deposits, withdrawals, positions), and balances kept at currency precision, checked with the
unmodified ccxt client over REST and websockets."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

from ccxt.test.exchange.base.test_balance import test_balance as ccxt_balance_check

from .conftest import KEY


async def test_fetch_trading_fees_are_the_venues_rates(pex, paused_sim):
    fees = await pex.fetch_trading_fees()
    for symbol in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        assert fees[symbol]["maker"] == 0.0004 and fees[symbol]["taker"] == 0.0006
    one = await pex.fetch_trading_fee("ETH/USDT")
    assert one["symbol"] == "ETH/USDT" and (one["maker"], one["taker"]) == (0.0004, 0.0006)
    assert paused_sim.stats["bad_requests"] == 0


async def test_fetch_accounts_deposits_withdrawals_positions(pex, paused_sim):
    accounts = await pex.fetch_accounts()
    assert [a["id"] for a in accounts] == [paused_sim.accounts[KEY].account_id]
    assert await pex.fetch_deposits() == []
    assert await pex.fetch_withdrawals() == []
    assert await pex.fetch_positions() == []
    assert paused_sim.stats["bad_requests"] == 0


async def test_fetch_ledger_lists_what_a_fill_moved(pex, paused_sim):
    await pex.create_order("BTC/USDT", "market", "buy", 0.01)
    fill = paused_sim.accounts[KEY].trades[-1]
    ledger = await pex.fetch_ledger()
    by_ccy = {(e["currency"], e["type"], e["direction"]): e["amount"] for e in ledger}
    got_btc = float(paused_sim.engine.instruments["BTC/USDT"].qty(fill.qty))
    assert by_ccy[("BTC", "trade", "in")] == got_btc
    assert by_ccy[("USDT", "trade", "out")] == float(fill.value)
    assert by_ccy[("BTC", "fee", "out")] == float(fill.fee)
    usdt_only = await pex.fetch_ledger("USDT")
    assert usdt_only and all(e["currency"] == "USDT" for e in usdt_only)


async def test_watch_positions_resolves_with_no_positions(pex):
    # before the venue served user.position_balance this watch never returned
    positions = await asyncio.wait_for(pex.watch_positions(), 10)
    assert positions == []


def _decimals(x: D) -> int:
    return max(0, -x.normalize().as_tuple().exponent)


async def test_balances_stay_at_currency_precision_over_many_fills(pex, paused_sim):
    """ccxt's own balance check (free + used == total, as exact decimal strings) holds after
    every fill, with orders resting (so `used` is not zero)."""
    book = await pex.fetch_order_book("BTC/USDT", 5)
    await pex.create_order("BTC/USDT", "limit", "buy", 0.01234, round(book["bids"][0][0] * 0.9, 2))
    await pex.create_order("ETH/USDT", "limit", "sell", 0.1234, round(book["asks"][0][0], 2))
    amounts = ["0.00123", "0.00457", "0.01011", "0.00789", "0.00321"]
    for i in range(30):
        symbol, amount = ("BTC/USDT", amounts[i % 5]) if i % 3 else ("SOL/USDT", "1.237")
        await pex.create_order(symbol, "market", "buy" if i % 2 else "sell", float(amount))
        bal = await pex.fetch_balance()
        ccxt_balance_check(pex, {}, "fetchBalance", bal)
        for ccy, row in paused_sim.account_balances(KEY).items():
            assert _decimals(row["total"]) <= 8 and _decimals(row["free"]) <= 8, (ccy, row)
    fees = [f.fee for f in paused_sim.accounts[KEY].trades]
    assert fees and all(_decimals(f) <= 8 for f in fees)
    ws_bal = await asyncio.wait_for(pex.watch_balance(), 10)
    ccxt_balance_check(pex, {}, "watchBalance", ws_bal)
