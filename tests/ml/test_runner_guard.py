"""A strategy that raises on one bar is counted and skipped; the runner goes on with the next bars."""

from __future__ import annotations

import asyncio

from tps19.engine.bus import EventBus
from tps19.engine.events import BarEvent
from tps19.engine.strategies import create
from tps19.engine.strategies.runner import StrategyRunner


async def test_the_runner_survives_a_bar_its_strategy_cannot_handle():
    bus = EventBus()
    strategy = create("sma_cross", {"fast": 2, "slow": 3})
    runner = StrategyRunner(bus, strategy, timeframe="1m")
    calls = []
    real = type(strategy).on_bar

    def on_bar(self, bar, portfolio=None):  # type: ignore[no-untyped-def]
        calls.append(bar.ts)
        if bar.ts == 120_000:
            raise RuntimeError("model cannot predict")
        return real(self, bar, portfolio)

    type(strategy).on_bar = on_bar  # type: ignore[method-assign]
    try:
        runner.start()
        for k in range(5):
            bus.publish(BarEvent("X/USDT", "1m", k * 60_000, 1.0, 1.0, 1.0, 1.0, 1.0, True))
        deadline = asyncio.get_running_loop().time() + 20
        while len(calls) < 5 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        assert calls == [0, 60_000, 120_000, 180_000, 240_000]
        assert runner.errors == 1 and runner._task is not None and not runner._task.done()
    finally:
        type(strategy).on_bar = real  # type: ignore[method-assign]
        await runner.stop()
