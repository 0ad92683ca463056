"""Snapshots of the desk on a seeded, paused simulated market with a frozen clock.

The app starts its own SimExchange (``sim_options``) inside the snapshot run's event loop:
seed 19, autoplay off, a fixed clock; ``run_before`` steps the market a fixed number of events,
waits until the desk has received exactly the venue's resulting state (books at the venue's
sequence numbers, trades, candle, marks: no "quiet for a while" guess), and replaces the log
(which names a temp path) with fixed lines. Update with ``pytest tests/ui --snapshot-update`` after checking the SVGs by eye.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable
from typing import Any

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


async def _chart_drawn(pilot, app: DeskApp) -> None:
    chart = app.screen.query_one("#chart")
    await wait_for(pilot, lambda: chart.shown_bars == len(app.state.bars[app.symbol]), what="the chart")


async def _book_drawn(pilot, app: DeskApp) -> None:
    book = app.screen.query_one("#book", BookLadder)
    await wait_for(pilot, lambda: book.event is app.state.books[app.symbol] and not book.flashing,
                   what="the newest book drawn and its flashes over")


def _fixed_log(app: DeskApp, states: Iterable[Any], lines: list[LogEvent]) -> None:
    """The log pane shows exactly ``lines`` (what the run logged is timing), no notification."""
    log = app.screen.query_one("#log")
    log.clear()
    for st in states:
        st.new_log.clear()
        st.log.clear()
    log.add(lines)
    app.clear_notifications()


async def _settle(pilot, app: DeskApp, steps: int = STEPS) -> None:
    """Bring the desk to one exact state, whatever the CPU speed: the venue's seeded market after
    ``steps`` events, every piece of it received (books at the venue's sequence numbers, trades,
    candle, marks), history loaded, flashes over, every pane drawn from that state."""
    await wait_for(pilot, lambda: app.ready and desk_has_venue_state(app), timeout=30, what=lambda: f"the venue's first state (missing: {venue_state_mismatch(app)})")
    await wait_for(pilot, lambda: len(app.state.bars.get(app.symbol, {})) > 10, what="candle history")
    if steps:
        await step_market(pilot, app, steps)
    if app.screen.query_one("#chart").display:
        app.redraw_all()  # one forced chart build from the settled candles
        await _chart_drawn(pilot, app)
    await _book_drawn(pilot, app)
    _fixed_log(app, [app.state],
               [LogEvent("info", "engine started", {"symbols": "BTC/USDT,ETH/USDT,SOL/USDT", "mode": "paper"}, ts=FIXED_MS),
                LogEvent("warning", "ETH/USDT book feed resync", {"detail": "example line"}, ts=FIXED_MS)])
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


@pytest.fixture
def venue_loop():
    """A loop in its own thread for the simulated venues of a several-venue snapshot: the desk's
    engines must point at running venues when the app is built, and the snapshot runs the app
    in a loop of its own. The venues serve it over real sockets on 127.0.0.1 from here."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="snapshot-venues", daemon=True)
    thread.start()
    sims: list = []

    def run(coro):
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=60)

    yield run, sims
    for sim in sims:
        run(sim.stop())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _venues_app(settings: Settings, venue_loop) -> DeskApp:
    """The desk on both simulated venues (paused, seeded, frozen clock), as `tps19 paper --exchange
    sim --exchange sim-binance` runs it."""
    from tps19.engine.engine import Engine
    from tps19.engine.multivenue import VenuePlan, VenueSet, plan_venues, sim_seed
    from tps19.launch import start_embedded_sim

    run, sims = venue_loop
    pointed = []
    for i, p in enumerate(plan_venues(settings, ["sim", "sim-binance"], None)):
        s, sim = run(start_embedded_sim(p.settings, seed=sim_seed(p.settings, i), autoplay=False,
                                        clock=lambda: FIXED_MS))
        sims.append(sim)
        pointed.append(VenuePlan(p.venue, s))
    venues = VenueSet({p.venue: Engine(p.settings, "paper") for p in pointed})
    return DeskApp(settings=pointed[0].settings, mode="paper", venues=venues, clock=lambda: FIXED_MS / 1000)


def _venues_mismatch(app: DeskApp) -> str | None:
    """What the desk still lacks of the paused venues' state (None: it holds exactly that state):
    every venue's books at its engine's sequence, marks and equity as its engine has them, nothing
    pending; the focused venue's candle history."""
    if not app.ready:
        return "not started"
    for v, e in app.venues.engines.items():
        st = app.states[v]
        for s in st.symbols:
            book = st.books.get(s)
            if book is None or book.seq != e.books[s].seq:
                return f"{v} {s} book at {book and book.seq}, engine at {e.books[s].seq}"
            pos = st.positions.get(s)
            if pos is None or pos.mark != e.trading.portfolio.mark(s):
                return f"{v} {s} mark {pos and pos.mark}, engine {e.trading.portfolio.mark(s)}"
        if st.portfolio is None or st.portfolio.unpriced or st.portfolio.equity != e.trading.portfolio.equity()[0]:
            return f"{v} portfolio {st.portfolio and st.portfolio.equity}"
        if app.subs[v].pending():
            return f"{v}: {app.subs[v].pending()} events not drawn yet"
    if len(app.state.bars.get(app.symbol, {})) <= 10:
        return "candle history"
    return None


async def _settle_venues(pilot, app: DeskApp) -> None:
    await wait_for(pilot, lambda: _venues_mismatch(app) is None, timeout=40,
                   what=lambda: f"both venues' state on the desk (missing: {_venues_mismatch(app)})")
    app.redraw_all()  # one forced chart build from the loaded candles
    await _chart_drawn(pilot, app)
    await _book_drawn(pilot, app)
    _fixed_log(app, app.states.values(),
               [LogEvent("info", "sim: engine started", {"symbols": "BTC/USDT,ETH/USDT,SOL/USDT"}, ts=FIXED_MS),
                LogEvent("info", "sim-binance: engine started", {"symbols": "BTC/USDT,ETH/USDT,SOL/USDT"}, ts=FIXED_MS)])
    for e in app.venues.engines.values():  # their timers' last round, from the settled state (see _settle)
        for part in ("breakers", "risk_metrics"):
            obj = getattr(e.trading, part, None)
            if obj is not None:
                (obj.evaluate if part == "breakers" else obj.refresh)()
    app.redraw_all()
    await pilot.pause()


def test_desk_two_venues_140x44(snap_compare, snap_settings, venue_loop):
    """Both venues' rows (venue column), per-venue and all-venue totals, each venue's health; the
    book, trades, chart and risk of the focused venue, named in their titles."""
    app = _venues_app(snap_settings, venue_loop)
    assert snap_compare(app, terminal_size=(140, 44), run_before=lambda pilot: _settle_venues(pilot, app))
