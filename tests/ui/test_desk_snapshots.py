"""Snapshots of the desk on a seeded, paused simulated market with a frozen clock.

The app starts its own SimExchange (``sim_options``) inside the snapshot run's event loop:
seed 19, autoplay off, a fixed clock; ``run_before`` steps the market a fixed number of events,
waits until the desk has received exactly the venue's resulting state (books at the venue's
sequence numbers, trades, candle, marks: no "quiet for a while" guess), and replaces the log
(which names a temp path) with fixed lines. Update with ``pytest tests/ui --snapshot-update`` after checking the SVGs by eye.
"""

from __future__ import annotations

import time

import pytest
from textual.widgets import Input

from tps19.desk.app import DeskApp
from tps19.config import Settings
from tps19.engine.events import LogEvent
from tps19.desk.widgets.market.book import BookLadder

from .conftest import PAUSED_SIM, desk_has_venue_state, step_market, venue_state_mismatch, wait_for
from .conftest import screen_text as _text

FIXED_MS = 1_764_000_000_000  # 2025-11-24 16:00:00 UTC
STEPS = 120


@pytest.fixture
def snap_settings(settings, monkeypatch) -> Settings:
    # The sim listens on a free (random) port, which the status bar's venue name may include:
    # pinned like the clock and the log lines, so that the picture does not depend on the run.
    from tps19.engine.engine import Engine

    monkeypatch.setattr(Engine, "venue_name", property(lambda self: "sim"))
    # The venue's clock is frozen at FIXED_MS while the feed judges a book's lag against the wall
    # clock: allow that lag, or every stream would show STALE (a frozen venue is not a slow one).
    frozen_lag_s = time.time() - FIXED_MS / 1000 + 86_400
    return settings.model_copy(update={"feed": settings.feed.model_copy(update={"stale_after_s": frozen_lag_s})})


def _app(settings: Settings) -> DeskApp:
    return DeskApp(settings=settings, mode="paper", clock=lambda: FIXED_MS / 1000,
                   sim_options={**PAUSED_SIM, "clock": lambda: FIXED_MS})


async def _settle(pilot, app: DeskApp, steps: int = STEPS) -> None:
    """Bring the desk to one exact state, whatever the CPU speed: the venue's seeded market after
    ``steps`` events, every piece of it received (books at the venue's sequence numbers, trades,
    candle, marks), history loaded, flashes over, every pane drawn from that state."""
    await wait_for(pilot, lambda: app.ready and desk_has_venue_state(app), timeout=30, what=lambda: f"the venue's first state (missing: {venue_state_mismatch(app)})")
    await wait_for(pilot, lambda: len(app.state.bars.get(app.symbol, {})) > 10, what="candle history")
    if steps:
        await step_market(pilot, app, steps)
    chart = app.screen.query_one("#chart")
    if chart.display:
        app.redraw_all()  # one forced chart build from the settled candles
        await wait_for(pilot, lambda: chart.shown_bars == len(app.state.bars[app.symbol]), what="the chart")
    book = app.screen.query_one("#book", BookLadder)
    await wait_for(pilot, lambda: book.event is app.state.books[app.symbol] and not book.flashing,
                   what="the newest book drawn and its flashes over")
    log = app.screen.query_one("#log")
    log.clear()
    app.state.new_log.clear()
    app.state.log.clear()
    log.add([LogEvent("info", "engine started", {"symbols": "BTC/USDT,ETH/USDT,SOL/USDT", "mode": "paper"}, ts=FIXED_MS),
             LogEvent("warning", "ETH/USDT book feed resync", {"detail": "example line"}, ts=FIXED_MS)])
    app.clear_notifications()
    # The breakers' peak equity (checked every 1 s) and the risk metrics (every 2 s, "from peak" once
    # there is a peak) follow the portfolio on timers: whether their last round came before or after
    # the marks settled is timing. One round of each now, from the settled state.
    breakers = getattr(app.trading, "breakers", None)
    if breakers is not None:
        breakers.evaluate()
    monitor = getattr(app.trading, "risk_metrics", None)
    if monitor is not None:
        monitor.refresh()
    app.redraw_all()  # every pane from the settled state (no flash is live any more)
    await pilot.pause()


def test_desk_120x40(snap_compare, snap_settings):
    app = _app(snap_settings)
    assert snap_compare(app, terminal_size=(120, 40), run_before=lambda pilot: _settle(pilot, app))


def test_desk_80x24(snap_compare, snap_settings):
    app = _app(snap_settings)
    assert snap_compare(app, terminal_size=(80, 24), run_before=lambda pilot: _settle(pilot, app))


def test_ticket(snap_compare, snap_settings):
    app = _app(snap_settings)

    async def run_before(pilot):
        await _settle(pilot, app)
        await pilot.press("b")
        # typed keys go to the focused field: the ticket focuses the amount when it mounts
        await wait_for(pilot, lambda: any(w.id == "amount" and w.has_focus for w in app.screen.query(Input)),
                       what="the order ticket, amount focused")
        for w in app.screen.query(Input):
            w.cursor_blink = False
        await pilot.press(*"0.05")
        await wait_for(pilot, lambda: app.screen.query_one("#amount").value == "0.05" and app.screen.validated is not None
                       and "fee (est.)" in _text(app), what="the ticket's estimate for 0.05")
        # the first frames of a modal screen can be composited without the screen behind it
        await wait_for(pilot, lambda: "Book BTC/USDT" in _text(app), what="the desk drawn behind the ticket")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_help(snap_compare, snap_settings):
    app = _app(snap_settings)

    async def run_before(pilot):
        await _settle(pilot, app, steps=0)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: "kill switch" in _text(app), what="the help text")
        await pilot.pause()

    assert snap_compare(app, terminal_size=(100, 32), run_before=run_before)
