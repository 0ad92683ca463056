"""Shutdown: engine loops end on cancellation, SIGTERM is bounded, a second signal forces an exit."""

from __future__ import annotations

import asyncio

import pytest

from tps19.engine.bus import EventBus
from tps19.engine.trading.paper import PaperBroker

# Yields between "the awaited event is set" and "the cancel lands": covers the inner wait
# finishing, its done-callback running, and the outer task resuming, whatever asyncio's order.
RACE_OFFSETS = range(8)
ROUNDS = 25


async def _settled(task: asyncio.Task, spins: int = 200) -> bool:
    """Run the loop (no clock involved) until the task is done or `spins` turns have passed."""
    for _ in range(spins):
        if task.done():
            return True
        await asyncio.sleep(0)
    return task.done()


async def _until_waiting(sub) -> None:
    # the loop under test has drained and is parked on the subscription
    for _ in range(1000):
        if not sub.pending() and not sub._ready.is_set():
            break
        await asyncio.sleep(0)
    for _ in range(3):
        await asyncio.sleep(0)


async def _race(make_loop, sub) -> list[int]:
    """Cancel the loop k turns after its inner wait completes; return the offsets it survived."""
    survived = []
    for k in RACE_OFFSETS:
        for _ in range(ROUNDS):
            task = asyncio.create_task(make_loop())
            await _until_waiting(sub)
            sub.put(object())  # the wait completes...
            for _ in range(k):
                await asyncio.sleep(0)
            task.cancel()  # ...as the cancel lands
            if not await _settled(task):
                survived.append(k)
                task.cancel()  # clean up: a second cancel does get through
                with pytest.raises(asyncio.CancelledError):
                    await task
            else:
                assert task.cancelled(), "the loop must end by cancellation, not return"
    return sorted(set(survived))  # the offsets at which a cancel was swallowed


async def test_subscription_wait_never_swallows_a_cancel():
    sub = EventBus().subscribe(coalesce=None)

    async def loop() -> None:
        while True:
            await sub.wait(1.0)

    assert await _race(loop, sub) == []


async def test_paper_broker_loop_ends_on_cancel_even_as_its_wait_completes():
    bus = EventBus()
    broker = PaperBroker(bus=bus, store=None, portfolio=None, markets={}, risk=None, exchange="sim")
    broker._sub = sub = bus.subscribe(coalesce=None)
    assert await _race(broker._run, sub) == []


async def test_paper_broker_loop_ends_even_when_an_await_inside_swallows_the_cancel():
    """Defence in depth: Python 3.11's wait_for (the bus's old wait, or a library's) may eat a cancel."""
    bus = EventBus()
    broker = PaperBroker(bus=bus, store=None, portfolio=None, markets={}, risk=None, exchange="sim")
    broker._sub = sub = bus.subscribe(coalesce=None)

    async def swallowing_wait(timeout: float | None = None) -> list:
        if not sub.pending():
            sub._ready.clear()
            try:
                await asyncio.wait_for(sub._ready.wait(), timeout)
            except TimeoutError:
                return []
        return sub.drain()

    sub.wait = swallowing_wait
    assert await _race(broker._run, sub) == []
