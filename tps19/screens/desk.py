"""The desk: one screen with every pane, and the trader's keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from ..widgets.book import DEPTHS, BookLadder
from ..widgets.chart import PriceChart
from ..widgets.panes import LogPane, OrdersTable, PositionsPane, RiskPane, SignalsPane
from ..widgets.status import StatusBar
from ..widgets.tape import TradeTape

if TYPE_CHECKING:
    from ..app import DeskApp

DESK_CSS = """
DeskScreen { layout: vertical; }
DeskScreen .pane { border: round $foreground 30%; border-title-color: $text-muted; padding: 0 0; }
DeskScreen .pane:focus, DeskScreen .pane:focus-within { border: round $accent; border-title-color: $accent; }
DeskScreen #main { height: 1fr; }
DeskScreen #book { width: 46; }
DeskScreen #tape { width: 34; }
DeskScreen #right { width: 1fr; }
DeskScreen #chart { height: 1fr; min-height: 8; }
DeskScreen #positions { height: auto; min-height: 4; max-height: 12; }
DeskScreen #orders { height: auto; min-height: 4; max-height: 10; }
DeskScreen #bottom { height: 9; }
DeskScreen #log { width: 1fr; }
DeskScreen #risk { width: 38; height: 1fr; }
DeskScreen #signals { width: 36; height: 1fr; }

/* 80 columns: the chart, signals and risk panes collapse (risk state stays in the status bar). */
DeskScreen.-narrow #book { width: 1fr; }
DeskScreen.-narrow #tape { width: 30; }
DeskScreen.-narrow #right { width: 1fr; }
DeskScreen.-narrow #chart { display: none; }
DeskScreen.-narrow #signals { display: none; }
DeskScreen.-narrow #risk { display: none; }
DeskScreen.-narrow #right { display: none; }
DeskScreen.-narrow #bottom { height: 8; }
DeskScreen.-narrow #bottomright { display: block; width: 1fr; }
DeskScreen #bottomright { display: none; }
DeskScreen #orders2 { height: 1fr; max-height: 100; }
DeskScreen.-short #bottom { height: 7; }
DeskScreen.-narrow.-short #bottom { height: 9; }
DeskScreen.-narrow.-short #log { display: none; }
"""


class DeskScreen(Screen[None]):
    DEFAULT_CSS = DESK_CSS
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (32, "-tall")]
    BINDINGS = [
        Binding("b", "ticket('buy')", "Buy"),
        Binding("s", "ticket('sell')", "Sell"),
        Binding("c", "cancel_selected", "Cancel"),
        Binding("C", "cancel_all", "Cancel all"),
        Binding("d", "depth", "Depth", show=False),
        Binding("question_mark", "app.help", "Help"),
        Binding("q", "app.request_quit", "Quit"),
        *[Binding(str(i), f"symbol({i - 1})", f"symbol {i}", show=False) for i in range(1, 10)],
    ]

    @property
    def desk(self) -> DeskApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        app = self.desk
        yield StatusBar(app.mode, clock=app.clock, id="status")
        with Horizontal(id="main"):
            yield BookLadder(levels=app.settings.ui.book_levels, id="book", classes="pane")
            yield TradeTape(id="tape", classes="pane")
            with Vertical(id="right"):
                yield PriceChart(id="chart", classes="pane")
                yield PositionsPane("trading layer not available", id="positions", classes="pane")
                yield OrdersTable(id="orders", classes="pane")
        with Horizontal(id="bottom"):
            yield LogPane(id="log", classes="pane")
            with Vertical(id="bottomright"):
                yield PositionsPane("trading layer not available", id="positions2", classes="pane")
                yield OrdersTable(id="orders2", classes="pane")
            yield RiskPane(id="risk", classes="pane")
            yield SignalsPane("no strategy running", id="signals", classes="pane")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        titles = {"book": "Book", "tape": "Trades", "chart": "Chart", "positions": "Positions & P&L",
                  "positions2": "Positions & P&L", "orders": "Open orders", "orders2": "Open orders", "log": "Log",
                  "risk": "Risk", "signals": "Signals"}
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title
        self.query_one("#book", BookLadder).set_depth(self.desk.settings.ui.book_levels)
        self.query_one("#book").focus()

    # -- which of the duplicated panes is showing ------------------------------------
    def orders_table(self) -> OrdersTable:
        return self.query_one("#orders2" if self.has_class("-narrow") else "#orders", OrdersTable)

    # -- actions -------------------------------------------------------------------------
    def action_ticket(self, side: str) -> None:
        self.desk.open_ticket(side)

    def action_cancel_selected(self) -> None:
        coid = self.orders_table().selected_order_id()
        if coid is None:
            self.notify("no open order selected", severity="warning")
            return
        self.desk.cancel_order(coid)

    def action_cancel_all(self) -> None:
        self.desk.cancel_all(self.desk.symbol)

    def action_symbol(self, index: int) -> None:
        self.desk.select_symbol(index)

    def action_depth(self) -> None:
        book = self.query_one("#book", BookLadder)
        nxt = next((d for d in DEPTHS if d > book.levels), DEPTHS[0])
        book.set_depth(nxt)
        self.desk.redraw_all()

    def update_titles(self, symbol: str, timeframe: str) -> None:
        self.query_one("#book").border_title = f"Book {symbol}"
        self.query_one("#tape").border_title = f"Trades {symbol}"
        self.query_one("#chart").border_title = f"Chart {symbol} {timeframe}"

    def panes(self) -> dict[str, Any]:
        return {w.id: w for w in self.query(".pane") if w.id}
