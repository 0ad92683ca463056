from __future__ import annotations

import os
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tps19.config import Settings

# The desk under test runs on its own seeded simulated exchange with autoplay off: the market
# moves only when a test steps it. A market that moves by itself makes every Pilot test a race
# with the CPU (how many events arrive before a key, whether the process is ever idle for
# Pilot's own idle wait), and on a loaded machine the in-process market alone can saturate it.
PAUSED_SIM: dict[str, Any] = {"seed": 19, "autoplay": False}


@pytest.fixture(scope="session", autouse=True)
def _imports_before_any_deadline() -> None:
    """Import the heavy modules once, before the first test: a cold import of ccxt.pro, SQLAlchemy
    and the trading layer takes seconds on a busy machine and would otherwise be charged to the
    first test's wait for its first book."""
    import ccxt.pro  # noqa: F401

    import tps19.desk.app  # noqa: F401
    import tps19.engine.engine  # noqa: F401
    import tps19.simex  # noqa: F401

    try:
        import tps19.engine.trading  # noqa: F401
        import tps19.engine.trading.live  # noqa: F401
    except ImportError:  # pragma: no cover
        pass


def _clean_env(monkeypatch) -> None:
    for k in list(os.environ):
        if k.startswith("TPS19_"):
            monkeypatch.delenv(k)


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    """Paper desk settings, database in tmp_path (the app starts its own paused sim: see ``desk_app``)."""
    _clean_env(monkeypatch)
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo
    return Settings(
        database={"path": tmp_path / "tps19.db"},
        # a paused market sends nothing: keep the feed's stale/watchdog timers out of the picture
        feed={"stale_after_s": 600, "watch_timeout_s": 600, "reconnect_min_s": 0.1, "reconnect_max_s": 1},
        ui={"refresh_hz": 20},
        # the sim account starts with 1 BTC: leave room under the position cap for test buys
        risk={"max_position_notional": 10_000_000},
    )


def desk_app(settings: Settings, mode: str = "paper", **kw: Any) -> Any:
    """The real DeskApp on the real engine, against a paused seeded SimExchange it starts itself."""
    from tps19.desk.app import DeskApp

    return DeskApp(settings=settings, mode=mode, sim_options={**PAUSED_SIM, **kw.pop("sim", {})}, **kw)


async def wait_for(pilot, pred: Callable[[], object], timeout: float = 15.0,
                   what: str | Callable[[], str] = "condition") -> None:
    """Poll ``pred`` between frames. The deadline only turns a hang into a failure: every wait is
    for a state the desk reaches by itself once it has processed what the test sent. ``what`` may
    be a callable, read at the deadline (e.g. to say what is still missing)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what() if callable(what) else what}")


def screen_text(app) -> str:
    """The current screen as plain text (what a trader would read)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strip) for strip in strips)


def venue_state_mismatch(app) -> str | None:
    """What the desk still lacks of the paused venue's current state, or None once it holds
    exactly that state: every book at the venue's last sequence number, the venue's latest trade
    on every tape, the candle holding that trade, and the portfolio marked at those books' mids.
    Nothing else can arrive while the sim is paused."""
    sim = app.sim
    if sim is None or not app.ready or app.sub is None:
        return "engine not started"
    depth = app.settings.symbols.book_depth
    tf = app.settings.symbols.timeframe
    for s in app.symbols:
        # The venue sends a print only to the connections subscribed at that moment (no snapshot of
        # past prints on subscribe, as on Crypto.com). The feed's trade subscription goes out after
        # its book subscription, so books at the venue's sequence do not mean the tape is listening:
        # a step before it is registered publishes that step's prints to no one.
        if not sim._subs.get(f"trade.{sim._by_symbol[s].id}"):
            return f"{s} trade channel not subscribed at the venue yet"
        book = app.state.books.get(s)
        channel = sim._book_channels.get((s, depth))
        if book is None or channel is None or book.seq != channel.last_u:
            feed = getattr(app.engine, "feed", None)
            stats = feed.stats.get("book", s) if feed is not None else None
            warnings = [f"{e.message} {e.fields}" for e in app.state.log if e.level != "info"][-3:]
            return f"{s} book at {book and book.seq}, venue at {channel and channel.last_u}; feed {stats}; log {warnings}"
        trades = sim.public_trades[s]  # newest first
        if trades:
            newest = trades[0]
            tape = app.state.trades.get(s)
            # one venue message carries a flush's trades, newest first and in the same millisecond:
            # the newest trade on the tape means the whole batch arrived
            if not tape or newest.id not in {t.id for t in tape}:
                feed = getattr(app.engine, "feed", None)
                stats = feed.stats.get("trades", s) if feed is not None else None
                return (f"{s} tape lacks the venue's latest trade {newest.id} (tape's newest "
                        f"{tape[-1].id if tape else None}; feed {stats}; desk dropped {app.sub.dropped})")
            # the candle that holds the latest trade (not "now": a minute may have rolled over since)
            candle = sim.candles[s].rows(tf, None, newest.time + 1, 1, sim.clock())[0]
            bar = app.state.bars.get(s, {}).get(candle["t"])
            if bar is None or (bar.close, bar.volume) != (float(candle["c"]), float(candle["v"])):
                return f"{s} candle {bar}, venue {candle}"
        trading = app.trading
        if trading is not None and book.bids and book.asks:
            mid = (Decimal(str(book.bids[0][0])) + Decimal(str(book.asks[0][0]))) / 2
            if trading.portfolio.mark(s) != mid:
                return f"{s} marked at {trading.portfolio.mark(s)}, book mid {mid}"
    if app.sub.pending():
        return f"{app.sub.pending()} events not drawn yet"
    return None


def desk_has_venue_state(app) -> bool:
    return venue_state_mismatch(app) is None


async def desk_ready(pilot, app, symbol: str = "BTC/USDT") -> None:
    """The engine has started and the desk holds (and has drawn) the venue's current state."""
    await wait_for(pilot, lambda: app.ready and symbol in app.state.books, what=f"first {symbol} book")
    await wait_for(pilot, lambda: desk_has_venue_state(app),
                   what=lambda: f"the venue's state on the desk (missing: {venue_state_mismatch(app)})")
    await pilot.pause()


async def step_market(pilot, app, events: int) -> None:
    """Move the paused market ``events`` flow events and wait until the desk has all of it."""
    await app.sim.step(events)
    await wait_for(pilot, lambda: desk_has_venue_state(app),
                   what=lambda: f"the desk to receive {events} market events (missing: {venue_state_mismatch(app)})")
    await pilot.pause()


@pytest.fixture(autouse=True)
def no_idle_guessing(monkeypatch):
    """Pilot waits, after every key, until the process *looks* idle (CPU time against wall time, up
    to 1 s, twice per key). That is a guess: a desk on a moving market is never idle, and a starved
    process on a loaded machine looks idle while it still has work queued. Tests here never rely on
    it: after a key they wait for the state the key leads to (``wait_for``). One short tick instead."""
    import asyncio

    import textual.app
    import textual.pilot

    async def one_tick(min_sleep: float = 0.0, max_sleep: float = 1.0) -> None:
        await asyncio.sleep(0.02)

    monkeypatch.setattr(textual.app, "wait_for_idle", one_tick)
    monkeypatch.setattr(textual.pilot, "wait_for_idle", one_tick)
