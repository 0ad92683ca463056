"""The status bar: mode (LIVE unmistakable), venue, per-symbol feed state and latency, stale warning, clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

from rich.text import Text
from textual.widget import Widget

from .state import DeskState

Feed = tuple[str, str, float | None, bool]  # (symbol, state, latency_ms, selected)


def book_feeds(state: DeskState, symbols: list[str], selected: str, *, stopped: bool,
               now_ms: float | None = None) -> list[Feed]:
    """Each symbol's book feed as the engine published it (its last ConnectionEvent on the bus) and
    its latency: when the newest book arrived (local clock) minus its exchange timestamp, or
    ``now_ms`` minus that timestamp when given (a frozen clock: figures that do not move).
    ``stopped``: the engine is not running, so a feed it never reported is not coming either."""
    feeds: list[Feed] = []
    for s in symbols:
        conn = state.conn.get(("book", s))
        feed_state = conn.state.value if conn is not None else ("stopped" if stopped else "connecting")
        book = state.books.get(s)
        lat = None
        if book is not None and book.ts:
            # BookEvent.received is perf_counter time: carried back to the wall clock here.
            received_ms = now_ms if now_ms is not None else (time.time() - (time.perf_counter() - book.received)) * 1000
            lat = max(0.0, received_ms - book.ts)
        feeds.append((s, feed_state, lat, s == selected))
    return feeds


class VenueHealth(NamedTuple):
    """One venue in the status bar of a run with several."""

    venue: str
    health: str  # feed_health()
    killed: bool  # its kill switch is engaged
    focused: bool  # the book, trades, chart and feeds shown are this venue's


# the worst first: a venue shows the worst state of its book feeds
_WORST = ("stopped", "reconnecting", "resync", "stale", "connecting", "connected")


def feed_health(state: DeskState, *, failed: bool, started: bool) -> str:
    """One venue's health from what its engine published: "down" (it did not start, or a book feed
    stopped), the worst of its book feeds' states otherwise ("up" when every one is connected)."""
    if failed:
        return "down"
    states = [c.state.value for (stream, _), c in state.conn.items() if stream == "book"]
    if not states:
        return "connecting" if not started else "waiting"
    worst = min(states, key=lambda x: _WORST.index(x) if x in _WORST else 0)
    return {"connected": "up", "stopped": "down"}.get(worst, worst)


class StatusBar(Widget):
    """Drawn from the desk's state, i.e. what the engine published: the venue (VenueEvent), each
    book feed (ConnectionEvent, newest BookEvent), the kill switch (KillSwitchEvent)."""

    def __init__(self, mode: str, venue_id: str = "", clock: Callable[[], float] = time.time, replay: bool = False,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.mode = mode
        self.replay = replay  # serving a recording: the clock is the recording's
        self.venue_id = venue_id  # the configured exchange, named until the engine reports its venue
        self.clock = clock
        self.venue = "connecting..."
        self.feeds: list[Feed] = []
        self.kill = False
        self.halted = ""  # why orders are halted (the engine lost its database lock or file)
        self.trading = ""
        self.venues: list[VenueHealth] | None = None  # several venues
        if mode == "live":
            self.add_class("-live")

    def draw(self, state: DeskState, selected: str, *, failed: bool, now_ms: float | None = None,
             venues: list[VenueHealth] | None = None) -> None:
        """``failed``: the engine could not start. ``now_ms``: a frozen clock for the latencies.
        ``venues``: several venues run: each one's health (feed_health), the focused one marked;
        the feeds shown are the focused venue's."""
        self.venues = venues
        self.feeds = book_feeds(state, state.symbols, selected, stopped=failed, now_ms=now_ms)
        if state.venue is not None:
            self.venue = state.venue.name
        else:
            self.venue = "engine failed" if failed else f"{self.venue_id}: connecting..."
        self.kill = bool(state.kill is not None and state.kill.engaged)
        self.halted = state.storage.reason if state.storage is not None and state.storage.halted else ""
        self.trading = "market data only" if state.venue is not None and not state.venue.trading else ""
        self.refresh()

    def render(self) -> Any:
        theme = self.app.current_theme
        live = self.mode == "live"
        t = Text(no_wrap=True, overflow="ellipsis")
        if live:
            t.append(" ██ LIVE ██ ", style="bold reverse " + (theme.error or "red"))
        elif self.replay:
            t.append(" REPLAY ", style="bold reverse " + (theme.warning or "yellow"))
        else:
            t.append(" PAPER ", style="bold reverse " + (theme.primary or "blue"))
        if self.venues is None:
            t.append(f" {self.venue} ", style="bold")
        else:  # every venue's health; the focused one (whose feeds follow) underlined
            for name, health, killed, focused in self.venues:
                ok = health == "up"
                t.append(" ")
                t.append(name, style="bold underline" if focused else "bold")
                t.append(f" {health if ok else health.upper()}",
                         style=(theme.success or "green") if ok else "bold " + (
                             (theme.error or "red") if health == "down" else (theme.warning or "yellow")))
                if killed:
                    t.append(" KILL", style="bold " + (theme.warning or "yellow"))
            t.append(" |")
        if self.kill:
            t.append(" KILL SWITCH ", style="bold reverse " + (theme.warning or "yellow"))
        if self.halted:
            t.append(" HALTED: DATABASE ", style="bold reverse " + (theme.error or "red"))
        for sym, state, lat, sel in self.feeds:
            ok = state == "connected"
            style = (theme.success or "green") if ok else (theme.warning or "yellow")
            name = sym.split("/")[0]
            t.append(" ")
            t.append(name, style="bold underline" if sel else "")
            if ok:
                t.append(f" {lat:.0f}ms" if lat is not None else " --ms", style=style)
            else:
                t.append(f" {state.upper()}", style="bold " + style)
        if self.trading:
            t.append(f"  {self.trading}", style="dim")
        clock = time.strftime("%Y-%m-%d %H:%M:%S UTC" if self.replay else "%H:%M:%S UTC", time.gmtime(self.clock()))
        pad = max(1, self.size.width - t.cell_len - len(clock) - 1)
        t.append(" " * pad)
        t.append(clock + " ", style="bold")
        return t
