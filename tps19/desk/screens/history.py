"""`h`: the account's own orders and fills, from the database (so they survive a restart).

Filled, cancelled, rejected and expired orders (newest first) and every fill with its price,
amount, fee and the realized P&L it booked. `f` cycles the symbol filter, `r` reloads, tab
moves between the two tables, up/down/page keys scroll them. The screen reads the engine only
through its query functions (``tps19.engine.trading.history.TradingHistory``).
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from ...figures import fee as fee_text
from ..widgets.fmt import fnum
from ..widgets.panes import PnlStyle, amount_text
from ..widgets.rows import Col, RowsPane

LIMIT = 500  # rows loaded per table; the title says when there are more
DONE = ("filled", "cancelled", "rejected", "expired", "partially_filled")


def stamp(ms: int | None) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.gmtime(ms / 1000)) if ms else "--"


def table_pane(pane_id: str, title: str) -> RowsPane:
    """A table of a stored-figures screen (history, P&L): "loading..." until its first load shows."""
    pane = RowsPane("loading...", id=pane_id, classes="pane")
    pane.border_title = title
    return pane


def no_history(history: Any, *panes: RowsPane) -> bool:
    """True when there is no trading layer to read the figures from; each pane then says so."""
    if history is not None:
        return False
    for pane in panes:
        pane.message("trading layer not available")
    return True


class HistoryScreen(Screen[None]):
    CSS_PATH = "history.tcss"
    BINDINGS = [
        Binding("escape,h,q", "close", "Back"),
        Binding("f", "filter", "Symbol filter"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, history: Any, symbols: list[str], price_places: dict[str, int], venue: str = "",
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.venue = venue  # several venues run: the one whose rows these are (the desk's focused venue)
        self.history = history  # TradingHistory (or None: trading layer not available)
        self.symbols = symbols
        self.places = price_places
        self.symbol: str | None = None  # None: every symbol
        self.loaded = 0  # completed loads (tests wait on it)
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="hist-head")
        yield table_pane("hist-orders", "Orders")
        yield table_pane("hist-fills", "Fills")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._head()
        self.query_one("#hist-orders").focus()
        self.action_reload()

    def _head(self, note: str = "") -> None:
        t = Text()
        t.append(" History ", style="bold reverse")
        if self.venue:
            t.append("  venue: ", style="dim")
            t.append(f"{self.venue} only (n on the desk: another)", style="bold")
        t.append("  symbol: ", style="dim")
        t.append(self.symbol or "all", style="bold")
        t.append("  (f: next symbol · r: reload · tab: next table · escape: back)", style="dim")
        if note:
            t.append(f"  {note}", style="bold")
        self.query_one("#hist-head", Static).update(t)

    def action_filter(self) -> None:
        choices: list[str | None] = [None, *self.symbols]
        self.symbol = choices[(choices.index(self.symbol) + 1) % len(choices)]
        self._head()
        self.action_reload()

    def action_reload(self) -> None:
        self.run_worker(self._load(self.symbol), group="history-load", exclusive=True)

    async def _load(self, symbol: str | None) -> None:
        orders_pane = self.query_one("#hist-orders", RowsPane)
        fills_pane = self.query_one("#hist-fills", RowsPane)
        if no_history(self.history, orders_pane, fills_pane):
            self.loaded += 1
            return
        try:
            orders = await self.history.orders(symbol=symbol, statuses=DONE, limit=LIMIT)
            n_orders = await self.history.count_orders(symbol=symbol, statuses=DONE)
            fills = await self.history.fills(symbol=symbol, limit=LIMIT)
            n_fills = await self.history.count_fills(symbol=symbol)
        except Exception as err:  # one line, never a traceback
            self.error = f"{type(err).__name__}: {err}"
            self._head(f"could not read the history: {self.error}")
            self.loaded += 1
            return
        if symbol != self.symbol:
            return  # the filter moved on while this load ran
        self._show_orders(orders, n_orders)
        self._show_fills(fills, n_fills)
        self.loaded += 1

    def _show_orders(self, orders: list[Any], total: int) -> None:
        pane = self.query_one("#hist-orders", RowsPane)
        pane.border_title = f"Orders: {len(orders)}" + (f" newest of {total}" if total > len(orders) else "")
        theme = self.app.current_theme
        cols = (Col("updated", right=False), Col("id", right=False), Col("symbol", right=False), Col("side", right=False),
                Col("type", right=False), Col("amount"), Col("price"), Col("filled"), Col("avg"), Col("fee"),
                Col("status", right=False), Col("strategy", right=False), Col("reason", right=False))
        rows = []
        for o in orders:
            pp = self.places.get(o.symbol, 2)
            side = Text(o.side, style=(theme.success or "green") if o.side == "buy" else (theme.error or "red"))
            status = Text(o.status, style="bold " + (theme.error or "red") if o.status == "rejected" else "")
            rows.append([stamp(o.updated_ms), o.client_order_id[-6:], o.symbol, side, o.type, amount_text(o.amount),
                         fnum(o.price, pp) if o.price is not None else "mkt", amount_text(o.filled),
                         fnum(o.avg_price, pp) if o.avg_price is not None else "--", fee_text(o.fee, group=True), status,
                         o.strategy or "desk", Text(o.reason or "", style="dim")])
        pane.show(cols, rows, keys=[o.client_order_id for o in orders],
                  empty="no finished orders" + (f" on {self.symbol}" if self.symbol else ""))

    def _show_fills(self, fills: list[Any], total: int) -> None:
        pane = self.query_one("#hist-fills", RowsPane)
        pane.border_title = f"Fills: {len(fills)}" + (f" newest of {total}" if total > len(fills) else "")
        theme = self.app.current_theme
        pnl = PnlStyle(theme)
        cols = (Col("time", right=False), Col("order", right=False), Col("symbol", right=False), Col("side", right=False),
                Col("price"), Col("amount"), Col("fee"), Col("fee ccy", right=False), Col("liq.", right=False),
                Col("realized P&L"))
        rows = []
        for f in fills:
            pp = self.places.get(f.symbol, 2)
            side = Text(f.side, style=(theme.success or "green") if f.side == "buy" else (theme.error or "red"))
            rows.append([stamp(f.ts), (f.client_order_id or "")[-6:], f.symbol, side, fnum(f.price, pp),
                         amount_text(f.amount), fee_text(f.fee, group=True), f.fee_currency or "", f.liquidity or "",
                         pnl(f.realized_pnl, 4)])
        pane.show(cols, rows, keys=[f.fill_id for f in fills],
                  empty="no fills" + (f" on {self.symbol}" if self.symbol else ""))

    def action_close(self) -> None:
        self.dismiss(None)
