"""The desk with two venues (the Crypto.com- and Binance-dialect simulated exchanges, paused and
seeded): `v` shows both with their figures and the cross-venue view, `k` kills one venue only,
`f9` kills every venue. Driven through the real Textual app (Pilot)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tps19.desk.app import DeskApp
from tps19.desk.screens.venues import VenuesScreen
from tps19.engine.engine import Engine
from tps19.engine.multivenue import VenuePlan, VenueSet, plan_venues, sim_seed
from tps19.launch import start_embedded_sim

from .conftest import screen_text, wait_for


async def test_venues_screen_per_venue_kill_and_f9_on_every_venue(settings):
    plans = plan_venues(settings, ["sim", "sim-binance"], ["BTC/USDT"])
    sims, pointed = [], []
    for i, p in enumerate(plans):
        s, sim = await start_embedded_sim(p.settings, seed=sim_seed(p.settings, i), autoplay=False)
        sims.append(sim)
        pointed.append(VenuePlan(p.venue, s))
    venues = VenueSet({p.venue: Engine(p.settings, "paper") for p in pointed})
    app = DeskApp(settings=pointed[0].settings, mode="paper", venues=venues)
    cdc, bn = venues.engines["sim"], venues.engines["sim-binance"]
    try:
        async with app.run_test(size=(140, 44)) as pilot:
            await wait_for(pilot, lambda: app.ready and all(e.books["BTC/USDT"].best_bid() for e in (cdc, bn)),
                           what="both venues' books")
            await pilot.press("v")
            await wait_for(pilot, lambda: isinstance(app.screen, VenuesScreen), what="the venues screen")
            total = Decimal(venues.totals()["total"]["equity"])
            await wait_for(pilot, lambda: "sim-binance" in screen_text(app) and "BTC/USDT across venues" in screen_text(app),
                           what="both venues and the cross-venue view")
            text = screen_text(app)
            assert f"{float(total):,.2f}" in text  # the total, as venues.totals() has it
            assert "0.060 %" in text and "0.100 %" in text  # each venue's taker rate
            assert "buy sim sell sim-binance" in text
            await pilot.press("down", "k")  # the second row: sim-binance
            await wait_for(pilot, lambda: bn.trading.broker.killed, what="sim-binance killed")
            assert not cdc.trading.broker.killed
            await wait_for(pilot, lambda: "KILLED" in screen_text(app), what="the KILLED mark")
            await pilot.press("r")
            assert not bn.trading.broker.killed
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, VenuesScreen), what="back on the desk")
            # the ticket chooses the venue: a buy on sim-binance, estimated on its book, placed there
            await pilot.press("b")
            await wait_for(pilot, lambda: app.screen.query("#venue"), what="the ticket's venue row")
            from textual.widgets import Input, Select

            app.screen.query_one("#venue", Select).value = "sim-binance"
            await wait_for(pilot, lambda: app.screen.venue == "sim-binance" and "on sim-binance" in screen_text(app),
                           what="the ticket on sim-binance")
            app.screen.query_one("#type", Select).value = "market"
            app.screen.query_one("#amount", Input).value = "0.01"
            await pilot.pause(0.1)
            await pilot.press("enter")
            await wait_for(pilot, lambda: "enter places the order" in screen_text(app), what="the review")
            await pilot.press("enter")
            def bought(e):
                p = e.trading.portfolio.positions.get("BTC/USDT")
                return p.qty if p is not None else Decimal(0)

            await wait_for(pilot, lambda: bought(bn) == Decimal("0.01"), what="the fill on sim-binance")
            assert bought(cdc) == 0  # nothing went to the venue the panes show
            p = bn.trading.portfolio.positions["BTC/USDT"]
            assert float(p.fees / (p.qty * p.avg_entry)) == pytest.approx(0.001, rel=1e-4)  # Binance taker rate
            await pilot.press("f9")
            await wait_for(pilot, lambda: "EVERY VENUE" in screen_text(app), what="the kill confirmation")
            await pilot.press("y")
            await wait_for(pilot, lambda: cdc.trading.broker.killed and bn.trading.broker.killed, what="both killed")
    finally:
        for sim in sims:
            await sim.stop()
