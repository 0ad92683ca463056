"""Snapshots of the desk on a seeded, paused simulated market with a frozen clock.

The app starts its own SimExchange (``sim_options``) inside the snapshot run's event loop:
seed 19, autoplay off, a fixed clock; ``run_before`` steps the market a fixed number of events,
waits until the desk has drawn everything, and replaces the log (which names a temp path) with
fixed lines. Update with ``pytest tests/ui --snapshot-update`` after checking the SVGs by eye.
"""

from __future__ import annotations

import time

import pytest
from textual.widgets import Input

from tps19.app import DeskApp
from tps19.config import Settings
from tps19.engine.events import LogEvent

FIXED_MS = 1_764_000_000_000  # 2025-11-24 16:00:00 UTC
STEPS = 120


@pytest.fixture
def snap_settings(settings) -> Settings:
    # a paused market sends nothing: keep the feed's stale/watchdog timers out of the picture
    return settings.model_copy(update={"feed": settings.feed.model_copy(update={"stale_after_s": 600, "watch_timeout_s": 600})})


def _app(settings: Settings) -> DeskApp:
    return DeskApp(settings=settings, mode="paper", clock=lambda: FIXED_MS / 1000,
                   sim_options={"seed": 19, "autoplay": False, "clock": lambda: FIXED_MS})


async def _settle(pilot, app: DeskApp, steps: int = STEPS) -> None:
    async def until(pred, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            await pilot.pause(0.05)
        raise AssertionError("desk did not settle")

    await until(lambda: app.ready and all(s in app.state.books for s in app.symbols))
    await until(lambda: len(app.state.bars.get(app.symbol, {})) > 10)
    await app.sim.step(steps)
    # quiet: nothing pending on the bus and no new state for a while
    last = None
    stable_since = time.monotonic()
    end = time.monotonic() + 20
    while time.monotonic() < end:
        bars = app.state.bars.get(app.symbol, {})
        last_bar = next(reversed(bars.values()), None)
        sig = (app.state.books.get(app.symbol), len(app.state.trades.get(app.symbol, ())), app.sub.pending(),
               len(bars), last_bar)
        if sig != last:
            last, stable_since = sig, time.monotonic()
        elif time.monotonic() - stable_since > 0.8:
            break
        await pilot.pause(0.05)
    if steps:  # the traded minute's candle has come through the live candle stream
        minute = FIXED_MS // 60_000 * 60_000
        await until(lambda: minute in app.state.bars.get(app.symbol, {}))
    chart = app.screen.query_one("#chart")
    if chart.display:
        app.redraw_all()  # one forced chart build from the settled candles
        await until(lambda: chart.shown_bars == len(app.state.bars[app.symbol]))
    log = app.screen.query_one("#log")
    log.clear()
    app.state.new_log.clear()
    app.state.log.clear()
    log.add([LogEvent("info", "engine started", {"symbols": "BTC/USDT,ETH/USDT,SOL/USDT", "mode": "paper"}, ts=FIXED_MS),
             LogEvent("warning", "ETH/USDT book feed resync", {"detail": "example line"}, ts=FIXED_MS)])
    app.clear_notifications()
    await pilot.pause(0.5)  # flashes end, panes redraw


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
        for w in app.screen.query(Input):
            w.cursor_blink = False
        await pilot.press(*"0.05")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_help(snap_compare, snap_settings):
    app = _app(snap_settings)

    async def run_before(pilot):
        await _settle(pilot, app, steps=0)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(100, 32), run_before=run_before)
