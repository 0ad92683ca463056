"""`?`: the desk's keys (the same table is in docs/desk.md)."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, str]] = [
    ("b / s", "order ticket: buy / sell the selected symbol"),
    ("enter", "in the ticket: review; paper: enter again places"),
    ("y", "in the ticket's LIVE review: send the order (enter never does)"),
    ("escape", "close the ticket / dialog without doing anything"),
    ("c", "cancel the selected open order (orders pane cursor); a leg of an OCO cancels its group (asks first)"),
    ("C", "cancel all open orders for the selected symbol, stops and take-profits included"),
    ("f9", "kill switch: cancel every entry order and block new ones (asks first); stops and take-profits "
           "keep working, a triggered exit passes it (docs/orders.md); again to release"),
    ("ctrl+t", "in the ticket: switch the order type between limit and market"),
    ("1-9", "select symbol 1..9"),
    ("ctrl+p", "command palette (symbols, kill switch, help, theme...)"),
    ("d", "order book depth: cycle 5/10/15/20/25/50 levels"),
    ("tab / shift+tab", "move between panes"),
    ("h", "history: finished orders and fills from the database (f: symbol filter)"),
    ("p", "P&L: equity chart, daily P&L, per-strategy figures"),
    ("l", "log: every line in full, the database file"),
    ("up / down", "in a table pane: scroll (the border says how many rows are hidden); orders: the cursor"),
    ("ctrl+b", "backtest screen"),
    ("m", "models: validation vs live hit rate, calibration, drift"),
    ("v", "venues (a run with several): state, equity and P&L each and in total, cross-venue spread after fees; "
          "k / r kill / release one; f9 kills every venue"),
    ("n", "next venue (a run with several): the book, trades, chart and risk pane show it, the ticket opens on "
          "it, C cancels there; positions, orders and balances always list every venue"),
    ("e", "explain the gap: this recorded session against its strategy at bar close (--record DIR)"),
    ("r", "risk limits: per-order cap, position and gross caps, loss limit... (changes are stored)"),
    ("?", "this help"),
    ("q, ctrl+q", "quit (live mode asks first when orders are open)"),
]


def keys_table() -> Table:
    t = Table(box=None, padding=(0, 2), show_header=False)
    t.add_column(style="bold", no_wrap=True)
    t.add_column()
    for k, v in KEYS:
        t.add_row(k, v)
    return t


class HelpScreen(ModalScreen[None]):
    CSS_PATH = "help.tcss"
    BINDINGS = [Binding("escape,question_mark,q,enter", "dismiss_help", "close", show=True)]

    def __init__(self, mode: str = "paper", **kw: Any) -> None:
        super().__init__(**kw)
        self.mode = mode

    def compose(self) -> ComposeResult:
        with VerticalScroll() as v:
            v.border_title = "TPS19 desk keys"
            v.border_subtitle = "escape closes"
            yield Static(keys_table())
            note = ("LIVE mode: every order is reviewed and confirmed by typing y."
                    if self.mode == "live" else "PAPER mode: orders fill against the live book, no real money.")
            yield Static(note, classes="note")
            yield Static("tab / shift+tab move between panes; ctrl+p opens the command palette", classes="note")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
