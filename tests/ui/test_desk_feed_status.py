"""The status bar draws each book feed's state from what the engine publishes on the bus
(ConnectionEvent), and the venue and kill switch from VenueEvent / KillSwitchEvent, not from the
feed's or the broker's internals: what the bus says is what the trader reads."""

from __future__ import annotations

from tps19.engine.events import ConnectionEvent, ConnState, VenueEvent
from tps19.engine.trading.events import KillSwitchEvent
from tps19.desk.widgets.status import StatusBar

from .conftest import desk_app, desk_ready, screen_text, wait_for


def _status_line(app) -> str:
    return screen_text(app).splitlines()[0]


async def test_status_bar_shows_the_feed_state_the_engine_publishes(settings):
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        await wait_for(pilot, lambda: "ETH " in _status_line(app) and "ms" in _status_line(app),
                       what="ETH's book feed shown connected")
        assert "RECONNECTING" not in _status_line(app)

        app.engine.bus.publish(ConnectionEvent(stream="book", symbol="ETH/USDT", state=ConnState.RECONNECTING,
                                               detail="NetworkError"))
        await wait_for(pilot, lambda: "ETH RECONNECTING" in _status_line(app),
                       what=lambda: f"ETH RECONNECTING in the status bar (shows {_status_line(app)!r})")
        assert "BTC RECONNECTING" not in _status_line(app)

        app.engine.bus.publish(ConnectionEvent(stream="book", symbol="ETH/USDT", state=ConnState.CONNECTED))
        await wait_for(pilot, lambda: "RECONNECTING" not in _status_line(app),
                       what=lambda: f"ETH connected again (status bar shows {_status_line(app)!r})")
        assert app.screen.query_one("#status", StatusBar).feeds[1][1] == "connected"


async def test_status_bar_shows_the_venue_and_kill_switch_the_engine_publishes(settings):
    # The venue name, "market data only" and KILL SWITCH come from the engine's VenueEvent and
    # KillSwitchEvent on the bus, not from engine or broker attributes.
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        await wait_for(pilot, lambda: "sim@127.0.0.1" in _status_line(app),
                       what=lambda: f"the sim venue in the status bar (shows {_status_line(app)!r})")
        assert "KILL SWITCH" not in _status_line(app) and "market data only" not in _status_line(app)

        app.engine.bus.publish(VenueEvent(name="other-venue", mode="paper", trading=False))
        app.engine.bus.publish(KillSwitchEvent(True, detail="test"))
        await wait_for(pilot, lambda: "other-venue" in _status_line(app) and "KILL SWITCH" in _status_line(app)
                       and "market data only" in _status_line(app),
                       what=lambda: f"the published venue and kill switch (status bar shows {_status_line(app)!r})")
        assert not app.trading.broker.killed  # drawn from the event, not the broker

        app.engine.bus.publish(KillSwitchEvent(False, detail="released"))
        await wait_for(pilot, lambda: "KILL SWITCH" not in _status_line(app),
                       what=lambda: f"the kill switch released (status bar shows {_status_line(app)!r})")


async def test_a_desk_handed_a_running_engine_names_its_venue(settings):
    # The engine published its VenueEvent and the feeds' ConnectionEvents before this desk subscribed:
    # the desk asks it to announce its state again.
    from tps19.desk.app import DeskApp
    from tps19.launch import build_engine, start_embedded_sim

    pointed, sim = await start_embedded_sim(settings, seed=19, autoplay=False)
    engine = build_engine(pointed, "paper")
    try:
        await engine.start()
        app = DeskApp(settings=pointed, mode="paper", engine=engine)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: f"sim@127.0.0.1:{sim.port}" in _status_line(app),
                           what=lambda: f"the running engine's venue in the status bar (shows {_status_line(app)!r})")
            await wait_for(pilot, lambda: [f[1] for f in app.screen.query_one("#status", StatusBar).feeds]
                           == ["connected"] * 3,
                           what=lambda: f"its feeds shown connected (status bar shows {_status_line(app)!r})")
    finally:
        await engine.stop()
        await sim.stop()


async def test_status_bar_shows_a_halt_when_the_database_file_goes_away(settings):
    """The storage watch halts orders when the file under the engine is deleted: the trader sees
    it in the status bar (and the error line in the log), not only in a refused order."""
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        assert "HALTED" not in _status_line(app)
        app.engine.db.path.unlink()
        await wait_for(pilot, lambda: "HALTED: DATABASE" in _status_line(app),
                       what=lambda: f"HALTED: DATABASE in the status bar (shows {_status_line(app)!r})")
        assert any("was deleted under the running engine" in e.message for e in app.state.log)
