"""Every print the venue publishes to the feed reaches the bus exactly once and in order.

The real Engine runs ccxt.pro against a paused simulated exchange on loopback; the test steps
the market. Steps are taken back to back (no await between some of them), so several trade
messages land while the feed is not awaiting a watch: they are resolved to nobody and reach the
feed through ccxt's cache, the path a lost print would take. A step made before the venue has
registered the feed's trade subscription publishes to no one (the venue, like Crypto.com, sends
no snapshot of past prints on subscribe), so the test first waits for the venue to list it.
"""

from __future__ import annotations

from tests.engine.helpers import wait_for

from tps19.engine.engine import Engine
from tps19.engine.events import TradeEvent

BTC = "BTC/USDT"


async def _paused_sim(settings):
    from tps19.launch import start_embedded_sim

    settings = settings.model_copy(update={"feed": settings.feed.model_copy(
        update={"stale_after_s": 600, "watch_timeout_s": 600})})  # a paused market is silent, not dead
    return await start_embedded_sim(settings, seed=19, autoplay=False)


async def _step_until_prints(sim, symbol: str) -> None:
    """Step the paused market until `symbol` has a new print (the flow picks symbols at random)."""
    n = len(sim.public_trades[symbol])
    while len(sim.public_trades[symbol]) == n:
        await sim.step(10)


async def test_every_print_the_venue_sends_is_published_once_in_order(settings):
    settings, sim = await _paused_sim(settings)
    engine = Engine(settings)
    published: dict[str, list[str]] = {}
    engine.bus.on(TradeEvent, lambda e: published.setdefault(e.symbol, []).extend(t.id for t in e.trades))
    await engine.start()
    try:
        channels = [f"trade.{sim._by_symbol[s].id}" for s in engine.symbols]
        assert await wait_for(lambda: all(sim._subs.get(c) for c in channels), 60), "trade channels not subscribed"
        before = {s: {t.id for t in sim.public_trades[s]} for s in engine.symbols}
        for i in range(40):
            if i % 4 == 0:
                await sim.step(25)  # lets the loop run: some messages meet a pending watch
            else:
                for _ in range(3):  # three flushes, three messages per symbol before anyone reads
                    sim._one_event()
                    sim._flush()

        def sent(s: str) -> list[str]:
            return [t.id for t in reversed(sim.public_trades[s]) if t.id not in before[s]]

        assert all(sent(s) for s in engine.symbols), "the steps made no prints"
        await wait_for(lambda: all(published.get(s, [])[-1:] == sent(s)[-1:] for s in engine.symbols), 60)
        for s in engine.symbols:
            assert published.get(s, []) == sent(s), f"{s}: the feed's prints differ from the venue's"
    finally:
        await engine.stop()
        await sim.stop()


async def test_prints_made_while_the_feed_resubscribes_are_published(settings):
    """A resync replaces the public websocket; until the venue has registered the new trade
    subscription, it sends this symbol's prints to no one. They are still published (from the
    venue's REST trades, once the new subscription delivers), in order, once."""
    settings, sim = await _paused_sim(settings)
    engine = Engine(settings)
    published: list[str] = []
    engine.bus.on(TradeEvent, lambda e: published.extend(t.id for t in e.trades) if e.symbol == BTC else None)
    await engine.start()
    channel = f"trade.{sim._by_symbol[BTC].id}"
    try:
        assert await wait_for(lambda: bool(sim._subs.get(channel)), 60), "trade channel not subscribed"
        await _step_until_prints(sim, BTC)
        assert await wait_for(lambda: len(published) == len(sim.public_trades[BTC]), 60)
        held: list[tuple] = []
        subscribe = sim._subscribe
        sim._subscribe = lambda conn, name, *a: held.append((conn, name, *a)) if name == channel else subscribe(conn, name, *a)
        engine.feed._reset_public_ws(engine.feed._generation)  # what a book gap does
        assert await wait_for(lambda: bool(held) and not sim._subs.get(channel), 60), "no resubscription"
        await _step_until_prints(sim, BTC)  # sent to no one: the venue has not registered the feed yet
        sim._subscribe = subscribe
        for args in held:
            subscribe(*args)
        await _step_until_prints(sim, BTC)
        venue = [t.id for t in reversed(sim.public_trades[BTC])]
        await wait_for(lambda: published[-1:] == venue[-1:], 60)
        assert published == venue
    finally:
        await engine.stop()
        await sim.stop()
