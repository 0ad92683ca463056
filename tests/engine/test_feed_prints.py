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


async def test_every_print_the_venue_sends_is_published_once_in_order(settings):
    from tps19.launch import start_embedded_sim

    settings = settings.model_copy(update={"feed": settings.feed.model_copy(
        update={"stale_after_s": 600, "watch_timeout_s": 600})})  # a paused market is silent, not dead
    settings, sim = await start_embedded_sim(settings, seed=19, autoplay=False)
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
