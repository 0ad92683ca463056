"""DeskApp: the Textual trading desk driven by the engine's bus.

The engine never imports Textual. The app subscribes to ``engine.bus`` once and drains that
subscription when something arrives, at most ``settings.ui.refresh_hz`` times a second (a
book that arrives just after a frame waits for the rest of that interval, not for a fixed
tick); a timer at the same rate keeps the clock, the status line and expiring flashes moving
when the market is quiet. Books are coalesced per symbol by the bus, everything else is a
bounded queue, so the UI draws the newest state at a capped rate and can never block or back up
the engine.
"""

from __future__ import annotations

import asyncio
from functools import partial
import gc
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from . import frame_writer, frames
from .full_gc import FullCollections
from .cockpit import CockpitScreens
from ..config import Settings, load_settings
from ..engine.events import LogEvent
from ..redaction import redact_event
from .screens.confirm import ConfirmScreen, MessageScreen
from .screens.desk import DeskScreen
from .screens.help import HelpScreen
from .screens.logview import LogScreen
from .widgets.market.book import BookLadder
from .widgets.fmt import amount_decimals, price_decimals
from .widgets.panes import strategy_clock
from .widgets.state import DeskState, event_types
from .widgets.status import StatusBar, VenueHealth, feed_health

PANES = frozenset({"book", "tape", "chart", "positions", "orders", "balances", "log", "risk", "signals"})
# what any venue's events redraw (the rest of the desk draws the focused venue)
SHARED_PANES = frozenset({"orders", "positions", "balances", "status", "log"})


class DeskApp(CockpitScreens, App[int]):
    """``DeskApp(settings=..., mode="paper"|"live")``.

    For tests and benchmarks: ``engine=`` an Engine built by the caller (started or not; the
    app starts it if needed and stops it on exit only if it started it), ``clock=`` a callable
    returning epoch seconds for the clock display (a frozen clock also freezes the latency
    figures, computed then as clock minus the book's exchange timestamp). Without an engine the
    app builds one on start (tps19.launch), first starting the embedded simulated exchange if the
    settings need one, in its own event loop; ``sim_options=`` are keyword arguments for that
    ``SimExchange``, e.g. ``{"seed": 19, "autoplay": False, "clock": lambda: FIXED_MS}`` for a
    deterministic market (``app.sim.step(n)`` then moves it).
    """

    TITLE = "TPS19 desk"
    CSS_PATH = "desk.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        # f9: no text field binds it (ctrl+k is readline's "delete to end of line" in every Input)
        Binding("f9", "kill_switch", "Kill switch", priority=True),
        Binding("ctrl+b", "backtest", "Backtest", show=False),
        Binding("m", "models", "Models", show=False),
        Binding("e", "divergence", "Divergence", show=False),
        Binding("r", "limits", "Risk limits", show=False),
        Binding("v", "venues", "Venues", show=False),
        Binding("ctrl+q", "request_quit", "Quit", show=False, priority=True),
    ]

    def __init__(self, settings: Settings | None = None, mode: str = "paper", *, engine: Any = None,
                 clock: Callable[[], float] | None = None, sim_options: dict[str, Any] | None = None,
                 replay: bool = False, venues: Any = None, record_dir: Path | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        # several venues (tps19.engine.multivenue.VenueSet, not started): positions, balances and
        # orders list every venue's rows; the book, tape, chart, risk pane and the ticket's first
        # choice follow the focused venue (`n` cycles it); `v` shows every venue; f9 stops them all
        self.venues = venues
        if venues is not None and engine is None:
            engine = next(iter(venues.engines.values()))
        if mode not in ("paper", "live"):
            raise ValueError(f"mode must be paper or live, not {mode!r}")
        self.settings = settings or (engine.settings if engine is not None else load_settings())
        if self.settings.ui.direct_writes:
            self.driver_class = frame_writer.direct_driver(self.driver_class)
        self.mode = mode
        self.engine = engine
        self.owns_engine = engine is None or getattr(engine, "started_at", None) is None
        self.sim_options = sim_options
        self.sim: Any = None  # a SimExchange the app started from sim_options
        self.frozen_clock = clock is not None
        self.replay = replay  # the engine is on a recording (`tps19 replay`): the clock is the recording's
        self.record_dir = record_dir  # an engine the app builds itself records here
        self.clock: Callable[[], float] = clock or time.time
        self.symbols: list[str] = list(self.settings.symbols.watch)
        self.symbol = self.symbols[0]
        # one folded state and one bus subscription per venue (a single venue: one of each)
        self.venue_ids: list[str] = list(venues.engines) if venues is not None else [self.settings.exchange.id]
        self.focus = self.venue_ids[0]
        self.states: dict[str, DeskState] = {
            v: DeskState(list(venues.engines[v].settings.symbols.watch) if venues is not None else self.symbols)
            for v in self.venue_ids}
        self.subs: dict[str, Any] = {}
        self.ready = False
        self.engine_error: str | None = None
        self._last_status = 0.0
        self._last_slow = 0.0
        self._last_chart = 0.0
        self._dirty: set[str] = set()
        self._book_flash_drawn = False
        self.frames = 0
        self._last_pump = 0.0  # monotonic time of the last drain: frames are at least 1/refresh_hz apart
        self.full_gc = FullCollections()  # full GC passes right after a frame (full_gc.py)
        self._totals_error: str | None = None  # why VenueSet.totals() failed last (told once)
        self._limits_error: str | None = None  # why VenueSet.limits() had no figures last (told once)
        self._history: set[tuple[str, str]] = set()  # (venue, symbol) whose candle history is loaded
        try:
            self.theme = self.settings.ui.theme
        except Exception:
            pass

    @property
    def multi(self) -> bool:
        """Several venues in this run: rows name their venue."""
        return self.venues is not None

    @property
    def state(self) -> DeskState:
        """The focused venue's folded state (the book, tape, chart and risk pane draw from it)."""
        return self.states[self.focus]

    @state.setter
    def state(self, value: DeskState) -> None:
        self.states[self.focus] = value

    @property
    def sub(self) -> Any:
        """The focused venue's bus subscription."""
        return self.subs.get(self.focus)

    def engine_of(self, venue: str) -> Any:
        return self.venues.engines[venue] if self.venues is not None else self.engine

    # -- screens ---------------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        return DeskScreen(mode=self.mode, book_levels=self.settings.ui.book_levels, venue_id=self.settings.exchange.id,
                          clock=self.clock, replay=self.replay, several_venues=self.multi)

    # -- what the desk screen asks for --------------------------------------------------------
    def on_desk_screen_ticket_requested(self, message: DeskScreen.TicketRequested) -> None:
        self.open_ticket(message.side)

    def on_desk_screen_cancel_requested(self, message: DeskScreen.CancelRequested) -> None:
        self.cancel_order(message.order_id)

    def on_desk_screen_cancel_all_requested(self, message: DeskScreen.CancelAllRequested) -> None:
        self.cancel_all(self.symbol)

    def on_desk_screen_symbol_selected(self, message: DeskScreen.SymbolSelected) -> None:
        self.select_symbol(message.index)

    def on_desk_screen_venue_cycled(self, message: DeskScreen.VenueCycled) -> None:
        self.action_next_venue()

    def on_desk_screen_depth_changed(self, message: DeskScreen.DepthChanged) -> None:
        self.redraw_all()

    def get_system_commands(self, screen: Screen) -> Any:
        yield from super().get_system_commands(screen)
        for i, s in enumerate(self.symbols[:9]):
            yield SystemCommand(f"Symbol {s}", f"show {s} (key {i + 1})", lambda i=i: self.select_symbol(i))
        if self.multi:
            for v in self.venue_ids:
                yield SystemCommand(f"Venue {v}", f"book, trades, chart and risk of {v} (n: next venue)",
                                    lambda v=v: self.select_venue(v))
        yield SystemCommand("Buy ticket", "order ticket: buy the selected symbol (b)", lambda: self.open_ticket("buy"))
        yield SystemCommand("Sell ticket", "order ticket: sell the selected symbol (s)", lambda: self.open_ticket("sell"))
        yield SystemCommand("Kill switch", "cancel entries, block new orders, keep stops / release (f9)", self.action_kill_switch)
        yield SystemCommand("Desk keys", "show the desk's keys (?)", self.action_help)
        yield SystemCommand("History", "finished orders and fills, from the database (h)", self.action_history)
        yield SystemCommand("P&L", "equity chart, daily P&L, strategies (p)", self.action_performance)
        yield SystemCommand("Log", "every log line in full, the database file (l)", self.action_log_screen)

    # -- lifecycle -------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.mode == "live":
            self.sub_title = "LIVE"
        self.set_interval(1.0 / self.settings.ui.refresh_hz, self._tick, name="desk-tick")
        self.run_worker(self._start_engine(), name="engine-start", exclusive=True, group="engine")

    async def _start_engine(self) -> None:
        from ..engine.engine import EngineError
        from ..launch import build_engine, needs_embedded_sim, start_embedded_sim

        try:
            if self.engine is None:
                if needs_embedded_sim(self.settings) or self.sim_options is not None:
                    self.settings, self.sim = await start_embedded_sim(self.settings, **(self.sim_options or {}))
                self.engine = build_engine(self.settings, self.mode, record_dir=self.record_dir)
            for v in self.venue_ids:
                sub = self.engine_of(v).bus.subscribe(*event_types(), maxsize=5_000)
                self.subs[v] = sub
                self.run_worker(self._follow(v, sub), name=f"desk-follow:{v}", group=f"desk-follow:{v}", exclusive=True)
            if self.venues is not None:
                if not await self._start_venues():
                    return
            elif self.engine.started_at is not None:
                self.engine.announce()  # its venue, published before this subscription
            else:
                self.state.note("info", f"starting engine ({self.mode}) on {self.settings.exchange.id}...")
                await self.engine.start()
        except EngineError as err:
            self._engine_failed(str(err))
            return
        except Exception as err:  # never a traceback on the trader's screen
            self._engine_failed(f"{type(err).__name__}: {err}")
            return
        self.ready = True
        # Everything loaded so far (ccxt, markets, SQLAlchemy, Textual) lives for the whole session:
        # move it out of the cyclic GC's reach. Without this a full collection walks it every few
        # seconds and stalls a frame by 100-150 ms (measured by benchmarks/bench_desk.py).
        gc.collect()
        gc.freeze()
        self.full_gc.start()
        self.select_symbol(self.symbols.index(self.symbol))

    async def _start_venues(self) -> bool:
        """Start every venue; one that fails is noted and the others run. False when the venue the
        panes show did not start (the others still run: `v` shows them)."""
        venues = self.venues
        self.state.note("info", f"starting {len(venues.engines)} venues ({self.mode}): {', '.join(venues.engines)}...")
        failed = await venues.start()
        for v, why in failed.items():
            self.state.note("error", f"venue {v} did not start: {why}")
        if not venues.running:
            raise RuntimeError("no venue started: " + "; ".join(f"{v}: {w}" for v, w in failed.items()))
        if self.focus in failed:  # the desk opens on the first venue that runs
            shown = self.focus
            self.select_venue(next(iter(venues.running)))
            self.push_screen(MessageScreen(f"{shown} did not start", f"{failed[shown]}\n\nThe other venues run: "
                                           f"the desk shows {self.focus} (n: next venue, v: every venue)."))
        return True

    def action_next_venue(self) -> None:
        if not self.multi:
            self.notify("one venue in this run: `tps19 paper --exchange A --exchange B` runs several", timeout=4)
            return
        i = self.venue_ids.index(self.focus)
        self.select_venue(self.venue_ids[(i + 1) % len(self.venue_ids)])

    def select_venue(self, venue: str) -> None:
        """Focus ``venue``: the book, trades, chart, risk pane, the ticket's first venue, cancel-all
        and the status bar's feeds follow it; the same symbol stays selected when it lists it."""
        if venue not in self.venue_ids:
            return
        self.focus = venue
        self.engine = self.engine_of(venue)
        self.symbols = list(self.engine.settings.symbols.watch)
        if self.symbol not in self.symbols:
            self.symbol = self.symbols[0]
        down = self.venues.failed.get(venue) if self.venues is not None else None
        if down:
            self.notify(f"{venue} is down: {down}", severity="warning", timeout=5)
        self.select_symbol(self.symbols.index(self.symbol))

    def action_venues(self) -> None:
        if self.venues is None:
            self.notify("one venue in this run: `tps19 paper --exchange A --exchange B` runs several", timeout=4)
            return
        from .screens.venues import VenuesScreen

        if not isinstance(self.screen, VenuesScreen):
            self.push_screen(VenuesScreen(self.venues))

    def _engine_failed(self, message: str) -> None:
        self.engine_error = message
        self.state.note("error", f"engine failed to start: {message}")
        self.redraw_all()

        def done(_: Any) -> None:
            self.exit(1, return_code=1)

        self.push_screen(MessageScreen("The engine could not start", message), done)

    async def _stop_engine(self) -> None:
        self.full_gc.stop()
        subs, self.subs = self.subs, {}
        for sub in subs.values():
            sub.close()
        if self.venues is not None:
            try:
                await self.venues.stop()
            except Exception as err:
                self.log.error(f"venues stop: {err!r}")
        elif self.engine is not None and self.owns_engine:
            try:
                await self.engine.stop()
            except Exception as err:
                self.log.error(f"engine stop: {err!r}")
        if self.sim is not None:
            try:
                await self.sim.stop()
            except Exception as err:
                self.log.error(f"sim stop: {err!r}")
            self.sim = None

    async def on_unmount(self) -> None:
        await self._stop_engine()

    async def action_request_quit(self) -> None:
        working = [o for st in self.states.values() for o in st.working_orders()]
        tradings = [t for t in (getattr(self.engine_of(v), "trading", None) for v in self.venue_ids) if t is not None]
        if tradings:
            try:
                working = [o for t in tradings for o in t.broker.open_orders()]
            except Exception:
                pass
        if self.mode == "live" and working:
            def answer(yes: bool | None) -> None:
                if yes:
                    self.run_worker(self._quit(), group="quit")

            self.push_screen(ConfirmScreen("Quit LIVE desk?",
                                           f"{len(working)} order(s) are still open on the venue and stay there.\n"
                                           "Quit anyway?"), answer)
            return
        await self._quit()

    async def _quit(self) -> None:
        await self._stop_engine()
        self.exit(0)

    async def action_quit(self) -> None:
        await self.action_request_quit()

    # -- the pump: drain, fold, redraw at a capped rate -------------------------------------------
    async def _follow(self, venue: str, sub: Any) -> None:
        """Drain as soon as an event arrives, but not sooner than 1/refresh_hz after the last drain
        (bench_desk: a 15 Hz tick alone made a book wait up to 67 ms before its frame began).
        One follower per venue; each drain takes every venue's events."""
        gap = 1.0 / self.settings.ui.refresh_hz
        while self._following(venue, sub):
            await sub.ready()
            wait = self._last_pump + gap - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if self._following(venue, sub):
                self._pump()

    def _following(self, venue: str, sub: Any) -> bool:
        return self.subs.get(venue) is sub

    def _tick(self) -> None:
        """The timer: a drain when the follower has not drawn for a whole interval (a quiet market:
        the clock, the status line, a flash that expires)."""
        if time.monotonic() - self._last_pump >= 0.9 / self.settings.ui.refresh_hz:
            self._pump()

    def _pump(self) -> None:
        if not self.subs:
            return
        self._last_pump = time.monotonic()
        for venue, sub in list(self.subs.items()):
            state = self.states[venue]
            events = sub.drain()
            dirty = state.apply(events) if events else set()
            if venue != self.focus:  # another venue's events change only the panes listing every venue
                dirty &= SHARED_PANES
            self._dirty |= dirty
            for severity, message in state.alerts:
                level: Any = severity if severity in ("information", "warning", "error") else "information"
                self.notify(f"{venue}: {message}" if self.multi else message, severity=level, timeout=6)
            state.alerts.clear()
        now = time.monotonic()
        if now - self._last_status >= 0.25:
            self._last_status = now
            self._dirty.add("status")
        if now - self._last_slow >= 0.5:
            self._last_slow = now
            self._dirty.update(("risk",))
        if self._dirty or self._book_flash_drawn:
            todo, self._dirty = self._dirty, set()
            # The book first, in a frame of its own: the ladder's changed rows are the frame the
            # trader waits for, and they should not wait for the status bar, positions or risk
            # to be rebuilt and composited with them.
            if self._redraw(todo, only_book=True):
                self._paint(only_book=True)
            self._redraw(todo, book=False)
            self._paint()
        self.full_gc.after_frame()  # the frames are out: the next drain is 1/refresh_hz away
        self.frames += 1

    def _paint(self, only_book: bool = False) -> None:
        """Write the frame now, in this callback, when it only repaints panes (frames.py: Textual's
        own path waits for idle turns and a 60 Hz timer, each a chance for the engine to run first)."""
        desk = self.screen_stack[0] if self.screen_stack else None
        try:
            top = self.screen
        except ScreenStackError:  # the app is closing: its last screen is gone, nothing to paint on
            return
        if desk is top and isinstance(desk, DeskScreen) and desk.is_mounted:
            widgets = desk.painted_widgets()
            if only_book:
                widgets = [w for w in widgets if isinstance(w, BookLadder)]
            if widgets and frames.supported(desk, widgets[0]):
                frames.paint_now(desk, widgets, only=only_book)

    def redraw_all(self) -> None:
        self._redraw({"book", "tape", "chart", "status", "orders", "positions", "balances", "risk", "signals", "log"},
                     force=True)

    @property
    def trading(self) -> Any:
        return getattr(self.engine, "trading", None) if self.engine is not None else None

    def market(self, symbol: str) -> dict | None:
        return (getattr(self.engine, "markets", None) or {}).get(symbol) if self.engine is not None else None

    def _places(self) -> dict[str, int]:
        return {s: price_decimals(self.market(s)) for s in self.symbols}

    def _venue_places(self) -> dict[tuple[str, str], int]:
        """Price decimals of each venue's symbols (a symbol may tick differently on two venues)."""
        out = {}
        for v in self.venue_ids:
            markets = getattr(self.engine_of(v), "markets", None) or {}
            for s in self.states[v].symbols:
                out[(v, s)] = price_decimals(markets.get(s))
        return out

    def _available(self, venue: str) -> bool:
        return getattr(self.engine_of(venue), "trading", None) is not None

    def venue_health(self) -> list[VenueHealth]:
        """Each venue's health for the status bar: down / connecting / stale / reconnecting / resync
        / up (every book feed connected), whether its kill switch is engaged, whether it is focused."""
        out = []
        for v in self.venue_ids:
            failed = self.venues.failed.get(v) if self.venues is not None else None
            st = self.states[v]
            started = getattr(self.engine_of(v), "started_at", None) is not None
            health = feed_health(st, failed=bool(failed) or self.engine_error is not None, started=started)
            out.append(VenueHealth(v, health, st.kill is not None and st.kill.engaged, v == self.focus))
        return out

    def _redraw(self, dirty: set[str], force: bool = False, *, book: bool = True, only_book: bool = False) -> bool:
        """Update the panes named in ``dirty`` (``book=False``: all but the ladder; ``only_book``:
        the ladder alone). True when the ladder was updated."""
        try:
            desk = self.screen_stack[0]
        except IndexError:
            return False
        if not isinstance(desk, DeskScreen) or not desk.is_mounted:
            return False
        panes = desk.panes()
        found = desk.status_bar()
        status_bar = found if isinstance(found, StatusBar) else None
        # Still composing, or being torn down at exit (widgets go one by one while this timer
        # still fires): draw on a later tick, never crash on a missing pane.
        if not PANES <= panes.keys() or status_bar is None:
            if not only_book:
                self._dirty |= dirty
            return False
        sym = self.symbol
        market = self.market(sym)
        pp, sp = price_decimals(market), amount_decimals(market)
        book_pane: BookLadder = panes["book"]
        # One more draw after the last flash expires: on a quiet book nothing else would redraw
        # the ladder, and a flash would stay on screen until the next update.
        drew_book = False
        if book and ("book" in dirty or book_pane.flashing or self._book_flash_drawn):
            own: dict[tuple[str, float], float] = {}
            for o in self.state.working_orders(sym):
                if o.price is not None:
                    own[("b" if o.side == "buy" else "a", float(o.price))] = float(o.remaining)
            status = self.engine_error or ("waiting for the first book..." if self.ready else "connecting to the venue...")
            book_pane.show(self.state.books.get(sym), own, status)
            self._book_flash_drawn = book_pane.flashing  # what was just drawn (show() starts new flashes)
            drew_book = True
        if only_book:
            return drew_book
        if "tape" in dirty:
            panes["tape"].show(self.state.trades.get(sym, ()), pp, sp)
        if "chart" in dirty and panes["chart"].display:
            # plotext builds are the costliest part of a frame: at most one every 2 s (candles are 1m+)
            now = time.monotonic()
            if not force and panes["chart"].shown_bars and now - self._last_chart < 2.0:
                self._dirty.add("chart")
            else:
                self._last_chart = now
                args = (sym, self.settings.symbols.timeframe, list(self.state.bars.get(sym, {}).values()),
                        list(self.state.fills.get(sym, ())), self._protective_levels(sym))
                # after this frame is written: a 10-30 ms plotext build must not hold back the book
                # drawn in the same tick (it set bench_desk's p99)
                if force:
                    panes["chart"].show(*args)
                else:
                    self.call_after_refresh(panes["chart"].show, *args)
        if "status" in dirty:
            status_bar.draw(self.state, sym, failed=self.engine_error is not None or
                            (self.venues is not None and self.focus in self.venues.failed),
                            now_ms=self.clock() * 1000 if self.frozen_clock else None,
                            venues=self.venue_health() if self.multi else None)
        if self.multi:
            self._redraw_venue_rows(panes, dirty)
        else:
            available = self.trading is not None
            if "orders" in dirty:
                panes["orders"].show_orders([(self.focus, o) for o in self.state.working_orders()],
                                            self._venue_places())
            if "positions" in dirty:
                panes["positions"].show_positions([(self.focus, p) for p in self.state.positions.values()],
                                                  self._venue_places(), available)
            if "balances" in dirty:
                panes["balances"].show_balances(self.state.portfolio, available)
        if "risk" in dirty:
            limits = self.trading.broker.risk.settings if self.trading is not None else self.settings.risk
            panes["risk"].show_trading(self.state, self.trading, limits, total=self._total_limits())
        if "signals" in dirty or "chart" in dirty:  # a closed bar moves the strategy's clock
            runner = getattr(self.engine, "runner", None) if self.engine is not None else None
            panes["signals"].show_signals(list(self.state.signals), runner is not None, strategy_clock(runner, self.symbol))
        if "log" in dirty:
            lines = self._new_log_lines()
            if lines:
                panes["log"].add(lines)
                if isinstance(self.screen, LogScreen):
                    self.screen.add(lines)
        return drew_book

    def _total_limits(self) -> Any:
        """With several venues: where all of them stand against the limits over every venue (the
        engine's VenueSet.limits, P&L today as of each venue's update on screen); None otherwise."""
        if not self.multi or self.venues is None:
            return None
        from ..engine.multivenue import TotalLimits

        try:
            lim = self.venues.limits(marked={v: self.states[v].portfolio for v in self.venue_ids
                                             if self.states[v].portfolio is not None}, peek=True)
        except Exception as err:  # never a traceback on the trader's screen; told once in the log
            lim = TotalLimits(self.venues.report_currency, None, None, unavailable=f"{type(err).__name__}: {err}")
        if lim.unavailable is not None and lim.unavailable != self._limits_error:
            self.state.note("error", "limits over all venues unknown", error=lim.unavailable)
        self._limits_error = lim.unavailable
        return lim

    def _new_log_lines(self) -> list[Any]:
        """Every venue's log lines since the last draw (with several venues, each names its venue)."""
        lines: list[Any] = []
        for v in self.venue_ids:
            st = self.states[v]
            lines += [venue_line(redact_event(e), v) if self.multi else redact_event(e) for e in st.new_log]
            st.new_log.clear()
        if self.multi:
            lines.sort(key=lambda e: e.ts)
        return lines

    def log_events(self) -> list[Any]:
        """The log screen's lines: every venue's, oldest first."""
        if not self.multi:
            return [redact_event(e) for e in self.state.log]
        return sorted((venue_line(redact_event(e), v) for v in self.venue_ids for e in self.states[v].log),
                      key=lambda e: e.ts)

    def _redraw_venue_rows(self, panes: dict[str, Any], dirty: set[str]) -> None:
        """Positions, orders and balances of every venue, each row naming its venue; the totals are
        the engine's (VenueSet.totals: per venue and in the reporting currency), never added here."""
        places = self._venue_places()
        available = {v: self._available(v) for v in self.venue_ids}
        if "orders" in dirty:
            panes["orders"].show_orders([(v, o) for v in self.venue_ids for o in self.states[v].working_orders()],
                                        places, venues=True)
        if not dirty & {"positions", "balances"}:
            return
        try:
            # each venue's equity and P&L as of the update its rows show (not as marked this
            # instant): the totals below the rows must add up to the rows above them
            totals = self.venues.totals({v: self.states[v].portfolio for v in self.venue_ids
                                         if self.states[v].portfolio is not None})
            self._totals_error = None
        except Exception as err:  # never a traceback on the trader's screen; told once in the log
            totals = None
            why = f"{type(err).__name__}: {err}"
            if why != self._totals_error:
                self._totals_error = why
                self.state.note("error", "venue totals unavailable", error=why)
        # both panes, whichever was marked: their pinned rows come from one computation on the
        # venues' last updates, and an update alone marks only balances (the positions' fees row
        # stayed at 0.00 under a booked fee while no mark moved). Unchanged rows are not repainted.
        panes["positions"].show_positions(
            [(v, p) for v in self.venue_ids for p in self.states[v].positions.values()], places,
            any(available.values()), venues=True, totals=totals)
        panes["balances"].show_venue_balances({v: self.states[v].portfolio for v in self.venue_ids}, available,
                                              totals)

    # -- symbol ---------------------------------------------------------------------------------
    def select_symbol(self, index: int) -> None:
        if not 0 <= index < len(self.symbols):
            self.notify(f"no symbol {index + 1}: watching {len(self.symbols)}", severity="warning", timeout=3)
            return
        self.symbol = self.symbols[index]
        market = self.market(self.symbol)
        try:
            desk = self.screen_stack[0]
        except IndexError:
            return
        venue = self.focus if self.multi else None
        if isinstance(desk, DeskScreen) and desk.is_mounted:
            desk.query_one("#book", BookLadder).set_symbol(f"{venue}:{self.symbol}" if venue else self.symbol,
                                                           price_decimals(market), amount_decimals(market))
            desk.update_titles(self.symbol, self.settings.symbols.timeframe, venue=venue)
        if self.ready and (self.focus, self.symbol) not in self._history:
            self._history.add((self.focus, self.symbol))
            self.run_worker(self._load_history(self.symbol), group="history")
        self.redraw_all()

    async def _load_history(self, symbol: str) -> None:
        """Recent candles for the chart, once per symbol (the live candle stream continues them)."""
        from ..engine.events import BarEvent

        state = self.state  # the focused venue's, whose client fetches them
        venue = getattr(self.engine, "venue", None)
        client = getattr(venue, "client", None)
        if client is None or not getattr(client, "has", {}).get("fetchOHLCV", True):
            return
        tf = self.settings.symbols.timeframe
        try:
            candles = await client.fetch_ohlcv(symbol, tf, limit=90)
        except Exception as err:
            state.note("warning", f"no candle history for {symbol}", error=type(err).__name__)
            return
        bars = state.bars.setdefault(symbol, {})  # type: ignore[arg-type]
        for c in candles or []:
            ts = int(c[0])
            if ts not in bars:
                bars[ts] = BarEvent(symbol, tf, ts, float(c[1]), float(c[2]), float(c[3]), float(c[4]), float(c[5] or 0), True)
        ordered = sorted(bars.items())
        bars.clear()
        bars.update(ordered[-240:])
        self._dirty.add("chart")

    # -- orders ---------------------------------------------------------------------------------
    def open_ticket(self, side: str) -> None:
        from .screens.ticket import TicketScreen

        if not self.ready:
            self.notify("the engine is not running yet", severity="warning")
            return
        trading = self.trading
        kill = bool(trading is not None and getattr(trading.broker, "killed", False))
        venues = self._ticket_venues(self.symbol)
        screen = TicketScreen(mode=self.mode, side=side, symbol=self.symbol, market=self.market(self.symbol),
                              book_fn=lambda s=self.symbol: self.state.books.get(s), trading_available=trading is not None,
                              kill_engaged=kill, admit_fn=self._admit if trading is not None else None,
                              venues=venues, venue_fn=partial(self._venue_parts, symbol=self.symbol) if venues else None)

        def placed(req: Any) -> None:
            if req is not None:
                venue = screen.venue
                if venue is not None and self.venues is not None and self.venues.engines[venue] is not self.engine:
                    self.run_worker(self._place(req, self.venues.engines[venue].trading), group="orders")
                else:
                    self.run_worker(self._place(req), group="orders")

        self.push_screen(screen, placed)

    def _ticket_venues(self, symbol: str) -> list[str]:
        """With several venues: the running ones listing ``symbol`` (the shown venue first)."""
        if self.venues is None:
            return []
        running = self.venues.running
        names = [v for v, e in running.items() if e is self.engine] + [v for v, e in running.items() if e is not self.engine]
        return [v for v in names if symbol in running[v].markets and running[v].trading is not None]

    def _venue_parts(self, venue: str, symbol: str) -> dict[str, Any]:
        """What the ticket needs of ``venue``: its market (fees), its book, its order entry's verdict."""
        engine = self.venues.engines[venue]
        trading = engine.trading
        if engine is self.engine:
            book_fn: Any = lambda: self.state.books.get(symbol)  # noqa: E731
        else:
            from ..engine.events import BookEvent

            seen: dict[str, Any] = {}

            def book_fn() -> Any:  # the venue's engine book, as the event the ticket reads (one per update)
                b = engine.books.get(symbol)
                if b is None or not b.bids or not b.asks:
                    return None
                if seen.get("seq") != (b.seq, b.ts) or "event" not in seen:
                    seen["seq"], seen["event"] = (b.seq, b.ts), BookEvent(symbol=symbol, bids=b.bids, asks=b.asks,
                                                                          ts=b.ts, seq=b.seq)
                return seen["event"]

        return {"market": engine.markets.get(symbol), "book_fn": book_fn,
                "admit_fn": (lambda req: trading.broker.entry.admit(req).reason) if trading is not None else None,
                "trading_available": trading is not None,
                "kill_engaged": bool(trading is not None and trading.broker.killed)}

    def _admit(self, req: Any) -> str | None:
        """What the engine's order entry would say of ``req`` now (None: it would pass): the
        ticket checks the limits in force and the free balance with it, before review."""
        trading = self.trading
        if trading is None:
            return "trading layer not available"
        return trading.broker.entry.admit(req).reason

    async def _place(self, req: Any, trading: Any = None) -> None:
        trading = trading or self.trading
        if trading is None:
            self.notify("trading layer not available", severity="error")
            return
        try:
            o = await trading.broker.place(req)
        except Exception as err:
            msg = getattr(err, "reason", None) or f"{type(err).__name__}: {err}"
            self.state.note("error", "order failed", error=msg)
            self.notify(f"order failed: {msg}", severity="error", timeout=8)
            return
        status = str(getattr(o, "status", ""))
        if status != "rejected":
            self.notify(f"{o.side} {o.amount.normalize():f} {o.symbol}: {status}", timeout=4)

    def _protective_levels(self, symbol: str) -> list[tuple[float, str]]:
        """The chart's lines: each working stop's and take-profit's level, a bracket entry's too."""
        out: list[tuple[float, str]] = []
        for o in self.state.working_orders(symbol):
            trig = getattr(o, "trigger_price", None)
            if trig is not None:
                out.append((float(trig), "take" if str(o.type).startswith("take_profit") else "stop"))
            for attr, kind in (("stop_loss_price", "stop"), ("take_profit_price", "take")):
                level = getattr(o, attr, None)
                if level is not None:
                    out.append((float(level), kind))
        return out

    def _venue_of_order(self, coid: str) -> str:
        """The venue whose desk state holds the order ``coid`` (the focused one if none does)."""
        return next((v for v in self.venue_ids if coid in self.states[v].orders), self.focus)

    def cancel_order(self, coid: str) -> None:
        venue = self._venue_of_order(coid)
        st = self.states[venue]
        o = st.orders.get(coid)
        group = getattr(o, "oco_group", None) if o is not None and getattr(o, "trigger_state", None) else None
        legs = [x for x in st.working_orders() if getattr(x, "oco_group", None) == group] if group else []
        if group and len(legs) > 1:
            # one leg of an OCO cancels its whole group: the trader says yes first
            names = ", ".join(f"{x.type} {x.client_order_id[-6:]}" for x in legs)

            def answered(yes: bool | None) -> None:
                if yes:
                    self.run_worker(self._cancel(coid), group="orders")
            self.push_screen(ConfirmScreen("cancel OCO group", f"Cancel the whole OCO group {group[-4:]} "
                                           f"({len(legs)} legs: {names})?"), answered)
            return
        self.run_worker(self._cancel(coid), group="orders")

    async def _cancel(self, coid: str) -> None:
        trading = getattr(self.engine_of(self._venue_of_order(coid)), "trading", None)
        if trading is None:
            self.notify("trading layer not available", severity="error")
            return
        try:
            o = await trading.broker.cancel(coid)
        except Exception as err:
            self.state.note("error", "cancel failed", error=f"{type(err).__name__}: {err}")
            self.notify(f"cancel failed: {err}", severity="error")
            return
        if o is None:
            self.notify("order not found (already done?)", severity="warning")

    def cancel_all(self, symbol: str) -> None:
        """Every open order of ``symbol`` on the focused venue."""
        venue = self.focus

        async def run() -> None:
            trading = getattr(self.engine_of(venue), "trading", None)
            if trading is None:
                self.notify("trading layer not available", severity="error")
                return
            try:
                n = await trading.broker.cancel_all(symbol)
            except Exception as err:
                self.state.note("error", "cancel all failed", error=f"{type(err).__name__}: {err}")
                self.notify(f"cancel all failed: {err}", severity="error")
                return
            self.notify(f"cancelled {n} order(s) on {symbol}" + (f" at {venue}" if self.multi else ""), timeout=4)

        self.run_worker(run(), group="orders")

    def action_kill_switch(self) -> None:
        if self.venues is not None:
            self._kill_all_venues()
            return
        trading = self.trading
        if trading is None:
            self.notify("trading layer not available: nothing to kill", severity="warning")
            return
        broker = trading.broker
        if isinstance(self.screen, ConfirmScreen):
            return
        if getattr(broker, "killed", False):
            def release(yes: bool | None) -> None:
                if yes:
                    broker.release()
                    self.redraw_all()

            self.push_screen(ConfirmScreen("Release kill switch?", "Orders will be accepted again. Release?"), release)
            return

        def engage(yes: bool | None) -> None:
            if yes:
                async def run() -> None:
                    try:
                        await broker.kill("kill switch (desk)")
                    except Exception as err:
                        self.state.note("error", "kill switch failed", error=f"{type(err).__name__}: {err}")
                        self.notify(f"kill switch failed: {err}", severity="error")
                    self.redraw_all()

                self.run_worker(run(), group="orders")

        self.push_screen(ConfirmScreen("KILL SWITCH",
                                       "Cancel ALL open entry orders on every symbol and block new orders?\n"
                                       "Stops and take-profits keep working (a triggered exit passes the switch)."), engage)

    def _kill_all_venues(self) -> None:
        """f9 with several venues: every venue's kill switch at once (or, when any is engaged, release all)."""
        venues = self.venues
        if isinstance(self.screen, ConfirmScreen):
            return
        running = venues.running
        if any(e.trading is not None and e.trading.broker.killed for e in running.values()):
            def release(yes: bool | None) -> None:
                if yes:
                    venues.release()
                    self.redraw_all()

            self.push_screen(ConfirmScreen("Release kill switch?", f"Orders will be accepted again on every venue "
                                           f"({', '.join(running)}). Release?"), release)
            return

        def engage(yes: bool | None) -> None:
            if yes:
                async def run() -> None:
                    try:
                        await venues.kill(None, "kill switch (desk)")
                    except Exception as err:
                        self.state.note("error", "kill switch failed", error=f"{type(err).__name__}: {err}")
                        self.notify(f"kill switch failed: {err}", severity="error")
                    self.redraw_all()

                self.run_worker(run(), group="orders")

        self.push_screen(ConfirmScreen("KILL SWITCH: EVERY VENUE",
                                       f"Cancel ALL open entry orders on every venue ({', '.join(running)}) and block "
                                       "new orders?\nStops and take-profits keep working (a triggered exit passes the "
                                       "switch)."), engage)

    # -- other screens --------------------------------------------------------------------------
    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.mode))

    def action_limits(self) -> None:
        """The risk limits screen (screens/limits.py); changes go through engine/risk/limits.py."""
        from .screens.limits import LimitsScreen

        trading = self.trading
        if trading is None:
            self.notify("trading layer not available: no limits to change", severity="warning")
            return
        if isinstance(self.screen, LimitsScreen):
            return

        def apply(changes: dict[str, str] | None) -> None:
            if not changes:
                return

            async def run() -> None:
                from ..engine.risk.limits import LimitError, change_limits

                try:
                    diff = await change_limits(trading, changes)
                except LimitError as err:
                    self.notify(str(err), severity="error")
                    return
                except Exception as err:  # e.g. the database write failed: nothing was applied
                    self.notify(f"limits not changed: {type(err).__name__}: {err}", severity="error")
                    return
                self.notify("; ".join(f"{k} {a} -> {b}" for k, a, b in diff) or "no limit changed")
                self.redraw_all()

            self.run_worker(run(), group="orders")

        self.push_screen(LimitsScreen(trading.broker.risk.settings, live=self.mode == "live"), apply)

    def action_backtest(self) -> None:
        from .screens.backtest import BacktestScreen

        self.push_screen(BacktestScreen(db=self.settings.database.path))

    def action_divergence(self) -> None:
        from .screens.divergence import DivergenceScreen

        if isinstance(self.screen, DivergenceScreen):
            return
        rec = getattr(self.engine, "recorder", None)
        root = getattr(self.engine, "record_dir", None) if rec is not None else None
        self.push_screen(DivergenceScreen(root, self.settings, flush=rec.writer.sync if rec is not None else None))

    def action_models(self) -> None:
        from .screens.models import ModelsScreen

        if not isinstance(self.screen, ModelsScreen):
            self.push_screen(ModelsScreen(self.settings.database.target, self.settings.ml.psi_warn))



def venue_line(e: LogEvent, venue: str) -> LogEvent:
    """A log line as the desk shows it with several venues: its venue first."""
    return LogEvent(level=e.level, message=f"{venue}: {e.message}", fields=e.fields, ts=e.ts)
