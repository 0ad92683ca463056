"""The desk: one screen with every pane, and the trader's keys."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget

from ..widgets.footer import KeysFooter
from ..widgets.market.book import DEPTHS, BookLadder
from ..widgets.market.chart import PriceChart
from ..widgets.panes import BalancesPane, LogPane, OrdersTable, PositionsPane, RiskPane, SignalsPane
from ..widgets.status import StatusBar
from ..widgets.market.tape import TradeTape


class DeskScreen(Screen[None]):
    """The panes and the trader's keys. A key becomes a message the app acts on (the screen knows
    nothing of the engine or the app): ticket, cancel, cancel all, symbol, depth."""

    class TicketRequested(Message):
        def __init__(self, side: str) -> None:
            super().__init__()
            self.side = side

    class CancelRequested(Message):
        def __init__(self, order_id: str) -> None:
            super().__init__()
            self.order_id = order_id

    class CancelAllRequested(Message):
        """Cancel every open order of the selected symbol."""

    class SymbolSelected(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    class VenueCycled(Message):
        """Focus the next venue (several venues)."""

    class DepthChanged(Message):
        def __init__(self, levels: int) -> None:
            super().__init__()
            self.levels = levels

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall"), (46, "-roomy")]
    # keys kept out of an 80-column footer, shown when the terminal is wide enough (most used first)
    FOOTER_EXTRAS = ("depth", "cancel_all", "limits", "models", "backtest", "divergence", "venues")
    BINDINGS = [
        Binding("b", "ticket('buy')", "Buy"),
        Binding("s", "ticket('sell')", "Sell"),
        Binding("c", "cancel_selected", "Cancel"),
        Binding("C", "cancel_all", "Cancel all", show=False),
        Binding("d", "depth", "Depth", show=False),
        Binding("h", "app.history", "History"),
        Binding("p", "app.performance", "P&L"),
        Binding("l", "app.log_screen", "Log"),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.request_quit", "Quit"),
        *[Binding(str(i), f"symbol({i - 1})", f"symbol {i}", show=False) for i in range(1, 10)],
        Binding("n", "next_venue", "Next venue"),
    ]

    def __init__(self, *, mode: str, book_levels: int, venue_id: str = "", clock: Callable[[], float] = time.time,
                 replay: bool = False, several_venues: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.several_venues = several_venues  # `n` (next venue) shows and works only then
        self.mode = mode
        self.replay = replay
        self.venue_id = venue_id
        self.book_levels = book_levels
        self.clock = clock
        self._painted: list[Widget] = []

    def compose(self) -> ComposeResult:
        yield StatusBar(self.mode, venue_id=self.venue_id, clock=self.clock, replay=self.replay, id="status")
        with Horizontal(id="main"):
            yield BookLadder(levels=self.book_levels, id="book", classes="pane")
            yield TradeTape(id="tape", classes="pane")
            with Vertical(id="side"):
                yield PriceChart(id="chart", classes="pane")
                yield LogPane(id="log", classes="pane")
        with Horizontal(id="mid"):
            yield PositionsPane("trading layer not available", id="positions", classes="pane")
            yield OrdersTable(id="orders", classes="pane")
        with Horizontal(id="bottom"):
            yield BalancesPane("trading layer not available", id="balances", classes="pane")
            yield RiskPane(id="risk", classes="pane")
            yield SignalsPane("no strategy running", id="signals", classes="pane")
        yield KeysFooter()

    def on_mount(self) -> None:
        if self.several_venues:
            self.add_class("-venues")
        titles = {"book": "Book", "tape": "Trades", "chart": "Chart", "positions": "Positions & P&L",
                  "orders": "Open orders", "log": "Log (l: all)", "balances": "Balances",
                  "risk": "Risk", "signals": "Signals"}
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title
        self.query_one("#book", BookLadder).set_depth(self.book_levels)
        self.query_one("#book").focus()

    # -- which of the duplicated panes is showing ------------------------------------
    def orders_table(self) -> OrdersTable:
        return self.query_one("#orders", OrdersTable)

    # -- actions -------------------------------------------------------------------------
    def action_ticket(self, side: str) -> None:
        self.post_message(self.TicketRequested(side))

    def action_cancel_selected(self) -> None:
        coid = self.orders_table().selected_order_id()
        if coid is None:
            self.notify("no open order selected", severity="warning")
            return
        self.post_message(self.CancelRequested(coid))

    def action_cancel_all(self) -> None:
        self.post_message(self.CancelAllRequested())

    def action_symbol(self, index: int) -> None:
        self.post_message(self.SymbolSelected(index))

    def action_depth(self) -> None:
        book = self.query_one("#book", BookLadder)
        nxt = next((d for d in DEPTHS if d > book.levels), DEPTHS[0])
        book.set_depth(nxt)
        self.post_message(self.DepthChanged(nxt))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_venue" and not self.several_venues:
            return False  # hidden from the footer with one venue
        return True

    def action_next_venue(self) -> None:
        self.post_message(self.VenueCycled())

    def update_titles(self, symbol: str, timeframe: str, venue: str | None = None) -> None:
        """``venue``: several venues run: the panes that draw one venue say which."""
        at = f"{venue} " if venue else ""
        self.query_one("#book").border_title = f"Book {at}{symbol}"
        self.query_one("#tape").border_title = f"Trades {at}{symbol}"
        self.query_one("#chart").border_title = f"Chart {at}{symbol} {timeframe}"
        self.query_one("#risk").border_title = f"Risk {venue}" if venue else "Risk"

    def panes(self) -> dict[str, Any]:
        """The panes by id (from ``painted_widgets``' lookup: two DOM queries per drain were ~18 %
        of the drain's CPU in bench_desk's profile)."""
        return {w.id: w for w in self.painted_widgets() if w.id and w.has_class("pane")}

    def status_bar(self) -> Widget | None:
        return next((w for w in self.painted_widgets() if w.id == "status"), None)

    def painted_widgets(self) -> list[Widget]:
        """What the desk's pump redraws: the panes and the status bar (looked up once while they
        are all mounted; a DOM query per frame showed in bench_desk's profile)."""
        cached = self._painted
        if cached and all(w.is_attached for w in cached):
            return cached
        found: list[Widget] = [*self.query(".pane").results(Widget), *self.query("#status").results(Widget)]
        self._painted = found if found and all(w.is_mounted for w in found) else []
        return found
