"""Paper trading tells the truth: it charges the venue's fees, and a strategy trades only its
own position (the engine in paper mode on the simulated exchange, through ccxt)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.engine.helpers import wait_for

from tps19.engine.engine import Engine
from tps19.engine.events import LogEvent
from tps19.engine.strategies.registry import create
from tps19.engine.strategies.signals import Signal
from tps19.engine.trading.events import FillEvent
from tps19.engine.trading.orders import fee_rate

pytestmark = pytest.mark.slow


def _one_symbol(settings, **extra):
    return settings.model_copy(update={"symbols": settings.symbols.model_copy(update={"watch": ["BTC/USDT"]}), **extra})


async def test_a_paper_fill_pays_the_venues_fee_rate(sim_settings, sim):
    engine = Engine(_one_symbol(sim_settings), "paper")
    fills: list[FillEvent] = []
    engine.bus.on(FillEvent, fills.append)
    await engine.start()
    try:
        venue_taker = sim.engine.taker_fee  # what the simulated venue charges a taker (0.06 %)
        market = engine.markets["BTC/USDT"]
        assert fee_rate(market, "taker") == venue_taker and fee_rate(market, "maker") == sim.engine.maker_fee
        assert market["tps19_fee_source"] == "venue"
        pf = engine.trading.portfolio
        assert await wait_for(lambda: pf.mark("BTC/USDT") is not None)
        o = await engine.trading.broker.place_order("BTC/USDT", "buy", "market", "0.01")
        assert o.status.value == "filled", o.reason
        assert fills and sum(f.amount for f in fills) == Decimal("0.01")
        for f in fills:
            assert f.fee == f.price * f.amount * venue_taker
    finally:
        await engine.stop()


async def test_a_strategy_does_not_sell_holdings_it_did_not_buy(sim_settings):
    """The account starts with 1 BTC; the strategy starts flat, so going flat sells nothing, and
    after buying it sells back only what it bought."""
    engine = Engine(_one_symbol(sim_settings), "paper", strategy=create("sma_cross", ["fast=3", "slow=8"]))
    logs: list[LogEvent] = []
    engine.bus.on(LogEvent, logs.append)
    await engine.start()
    try:
        pf, ex = engine.trading.portfolio, engine.executor
        assert ex is not None and await wait_for(lambda: pf.mark("BTC/USDT") is not None)
        assert pf.balances["BTC"] == Decimal("1")
        flat = Signal(direction=-1, strength=1.0, reason="test", target=0.0)
        await ex.submit_target("BTC/USDT", 0.0, flat)
        assert ex.plan("BTC/USDT", 0.0) is None and ex.orders_sent == 0
        assert pf.balances["BTC"] == Decimal("1")
        await ex.submit_target("BTC/USDT", 0.05, Signal(direction=1, strength=1.0, reason="test", target=0.05))
        assert await wait_for(lambda: pf.balances["BTC"] > Decimal("1"))
        bought = pf.balances["BTC"] - Decimal("1")
        [line] = [e for e in logs if e.message == "strategy order"]
        assert line.fields["amount"] == f"{bought:.5f} BTC"  # BTC/USDT's amount step 0.00001, with its unit
        assert line.fields["client_order_id"].startswith("s19-smacross-")
        assert ex.held("BTC/USDT") == bought
        assert ex.plan("BTC/USDT", 0.0) == ("sell", bought)
        await ex.submit_target("BTC/USDT", 0.0, flat)
        assert await wait_for(lambda: pf.balances["BTC"] < Decimal("1") + bought)
        assert pf.balances["BTC"] >= Decimal("1")
        # what the trader owned is theirs; with --adopt-holdings the strategy would manage it too
        ex.adopt_holdings = True
        assert ex.plan("BTC/USDT", 0.0) == ("sell", pf.balances["BTC"])
    finally:
        await engine.stop()
