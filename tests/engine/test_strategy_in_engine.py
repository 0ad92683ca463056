"""A strategy in `tps19 paper`: warm-up from venue candles, targets become paper orders."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from tests.engine.helpers import wait_for

from tps19.engine.engine import Engine
from tps19.engine.strategies.registry import create
from tps19.engine.strategies.signals import Signal, SignalEvent

pytestmark = pytest.mark.slow


def _only_the_tests_targets(engine: Engine) -> None:
    """These tests hand the executor their own targets. The strategy keeps reading the live bars,
    but its own cross (a minute's turn during the test, then a 1m bar closes) or its retry of a
    pending target would trade too, and the balances checked would no longer be the test's order's."""
    assert engine.runner is not None
    engine.runner.order_sink = None




async def test_strategy_warms_up_and_its_target_is_traded_on_paper(sim_settings):
    sim_settings = sim_settings.model_copy(update={
        "symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]}),
        "risk": sim_settings.risk.model_copy(update={"max_order_notional": Decimal("1000000"),
                                                 "max_position_notional": Decimal("1000000")}),
    })
    signals: list[SignalEvent] = []
    engine = Engine(sim_settings, "paper", strategy=create("sma_cross", ["fast=3", "slow=8"]))
    engine.bus.on(SignalEvent, signals.append)
    await engine.start()
    try:
        assert engine.runner is not None and engine.executor is not None
        _only_the_tests_targets(engine)
        # warm-up from the venue's candle history: the strategy already has a state to show
        assert signals and signals[0].symbol == "BTC/USDT"
        assert len(engine.runner.strategy_for("BTC/USDT").bars["close"]) >= 8
        pf = engine.trading.portfolio
        assert await wait_for(lambda: pf.mark("BTC/USDT") is not None)
        usdt0, btc0 = pf.balances["USDT"], pf.balances.get("BTC", Decimal(0))
        mark = pf.mark("BTC/USDT")
        capital = btc0 * mark + usdt0
        await engine.executor.submit_target("BTC/USDT", 0.5, Signal(direction=1, strength=1.0, reason="test", target=0.5))
        assert await wait_for(lambda: pf.balances.get("BTC", Decimal(0)) > btc0)
        btc1 = pf.balances["BTC"]
        # the strategy started flat: its capital is what it bought plus the quote, not the BTC the
        # account already held
        own = btc1 - btc0
        share = own * pf.mark("BTC/USDT") / (own * pf.mark("BTC/USDT") + pf.balances["USDT"])
        assert Decimal("0.47") < share < Decimal("0.53"), share
        assert pf.balances["USDT"] < usdt0
        # Going flat sells what the strategy bought, never more (a thin paper book may fill it only
        # in part: the market order walks the visible levels and the rest expires).
        assert engine.executor.plan("BTC/USDT", 0.0) == ("sell", own)
        await engine.executor.submit_target("BTC/USDT", 0.0, Signal(direction=-1, strength=1.0, reason="test", target=0.0))
        assert await wait_for(lambda: pf.balances.get("BTC", Decimal(0)) < btc1)
        assert pf.balances["BTC"] >= 0
        assert capital > 0
    finally:
        await engine.stop()


async def test_strategy_order_above_the_per_order_cap_is_cut_to_the_cap(sim_settings):
    sim_settings = sim_settings.model_copy(update={"symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]})})
    engine = Engine(sim_settings, "paper", strategy=create("sma_cross"))
    await engine.start()
    try:
        _only_the_tests_targets(engine)
        pf = engine.trading.portfolio
        assert await wait_for(lambda: pf.mark("BTC/USDT") is not None)
        usdt0 = pf.balances["USDT"]
        await engine.executor.submit_target("BTC/USDT", 1.0, Signal(direction=1, strength=1.0, reason="t", target=1.0))
        assert await wait_for(lambda: pf.balances["USDT"] < usdt0)
        spent = usdt0 - pf.balances["USDT"]
        cap = sim_settings.risk.max_order_notional
        assert cap * Decimal("0.9") < spent <= cap * Decimal("1.01")  # cap plus the taker fee at most
    finally:
        await engine.stop()


async def test_a_strategy_entry_in_paper_carries_the_stops_of_the_settings(sim_settings):
    """`tps19 paper --strategy ... --stop-loss 2 --take-profit 3` (settings.stops): the engine's
    executor makes every entry a bracket; its legs are armed from the fill price (docs/orders.md)."""
    sim_settings = sim_settings.model_copy(update={
        "symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]}),
        "risk": sim_settings.risk.model_copy(update={"max_order_notional": Decimal("1000000"),
                                                 "max_position_notional": Decimal("1000000")}),
        "stops": sim_settings.stops.model_copy(update={"stop_loss_pct": 2.0, "take_profit_pct": 3.0}),
    })
    engine = Engine(sim_settings, "paper", strategy=create("sma_cross", ["fast=3", "slow=8"]))
    await engine.start()
    try:
        assert engine.executor is not None and engine.trading is not None
        _only_the_tests_targets(engine)
        pf = engine.trading.portfolio
        assert await wait_for(lambda: pf.mark("BTC/USDT") is not None)
        await engine.executor.submit_target("BTC/USDT", 0.5, Signal(direction=1, strength=1.0, reason="test", target=0.5))
        held = engine.trading.broker.emulator.held
        assert await wait_for(lambda: len(held) == 2)
        assert not engine.trading.broker.orders  # the market entry filled; only its legs work
        legs = {o.type.value: o for o in held.values()}
        [parent] = {o.parent_id for o in held.values()}  # one entry: one group
        assert parent is not None and parent.startswith(engine.executor.prefix)
        assert set(legs) == {"stop_market", "take_profit"} and len({o.oco_group for o in held.values()}) == 1
        stop, take = legs["stop_market"].trigger_price, legs["take_profit"].trigger_price
        assert abs(take / stop - Decimal("1.03") / Decimal("0.98")) < Decimal("0.0005")
    finally:
        await engine.stop()
