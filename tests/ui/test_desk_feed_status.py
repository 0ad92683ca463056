"""The status bar draws each book feed's state from what the engine publishes on the bus
(ConnectionEvent), not from the feed's internals: what the bus says is what the trader reads."""

from __future__ import annotations

from tps19.engine.events import ConnectionEvent, ConnState
from tps19.widgets.status import StatusBar

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
