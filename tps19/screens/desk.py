"""The desk: one screen with every pane, and the trader's keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer

from ..widgets.book import DEPTHS, BookLadder
from ..widgets.chart import PriceChart
from ..widgets.panes import LogPane, OrdersTable, PositionsPane, RiskPane, SignalsPane
from ..widgets.status import StatusBar
from ..widgets.tape import TradeTape

if TYPE_CHECKING:
    from ..app import DeskApp


class DeskScreen(Screen[None]):
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
            yield PriceChart(id="chart", classes="pane")
        with Horizontal(id="mid"):
            yield PositionsPane("trading layer not available", id="positions", classes="pane")
            yield OrdersTable(id="orders", classes="pane")
        with Horizontal(id="bottom"):
            yield LogPane(id="log", classes="pane")
            yield RiskPane(id="risk", classes="pane")
            yield SignalsPane("no strategy running", id="signals", classes="pane")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        titles = {"book": "Book", "tape": "Trades", "chart": "Chart", "positions": "Positions & P&L",
                  "orders": "Open orders", "log": "Log",
                  "risk": "Risk", "signals": "Signals"}
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title
        self.query_one("#book", BookLadder).set_depth(self.desk.settings.ui.book_levels)
        self.query_one("#book").focus()

    # -- which of the duplicated panes is showing ------------------------------------
    def orders_table(self) -> OrdersTable:
        return self.query_one("#orders", OrdersTable)

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
