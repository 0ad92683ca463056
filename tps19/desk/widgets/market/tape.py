"""Trades tape: newest first, time, side (colour and a letter, so it reads without colour), price, size."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text

from ....engine.events import Trade
from ..fmt import hms
from ..lines import LinePane


class TradeTape(LinePane, can_focus=True):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.trades: list[Trade] = []
        self.own_fill_ids: set[str] = set()
        self.price_places = 2
        self.size_places = 4

    def show(self, trades: Iterable[Trade], price_places: int, size_places: int) -> None:
        rows = max(1, (self.size.height or 30))
        self.trades = list(trades)[-rows:]
        self.price_places, self.size_places = price_places, size_places
        self.redraw()

    def build(self) -> Text:
        if not self.trades:
            return Text("no trades yet", style="dim")
        theme = self.app.current_theme
        buy_c, sell_c = theme.success or "green", theme.error or "red"
        pp, sp = self.price_places, self.size_places
        out = Text(no_wrap=True, overflow="crop", end="")
        rows = self.trades[-(self.size.height or 30):]
        pw = max(len(f"{t.price:,.{pp}f}") for t in rows)
        for tr in reversed(rows):
            c = buy_c if tr.side == "buy" else sell_c if tr.side == "sell" else ""
            out.append(hms(tr.ts) + " ", style="dim")
            out.append(f"{'B' if tr.side == 'buy' else 'S' if tr.side == 'sell' else '?'} {tr.price:>{pw},.{pp}f}", style=c)
            out.append(f" {tr.amount:,.{sp}f}\n")
        out.rstrip()
        return out
