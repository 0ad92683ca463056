"""`v`: every venue of a run with several (`tps19 paper --exchange A --exchange B`): state, equity
and P&L per venue and in total (reporting currency, conversions stated), open orders, kill switch;
and each symbol listed on several venues: bid/ask and taker rate per venue and the cross-venue
edge after fees. `k` kills the selected venue, `r` releases it (f9 on the desk: every venue)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ...engine.multivenue import VenueSet, consolidated


def _money(x: str | None) -> str:
    if x is None:
        return "-"
    try:
        return f"{float(x):,.2f}"
    except ValueError:
        return x


def venues_view(venues: VenueSet, selected: int) -> Group:
    """The screen's content (also what a test reads)."""
    totals = venues.totals()
    cur = totals["currency"]
    t = Table(title=f"venues (totals in {cur})", box=None, padding=(0, 1))
    for col in ("", "venue", "state", "equity", "ccy", f"equity {cur}", "net P&L", "fees", "orders", "kill", "conversion"):
        t.add_column(col, justify="right" if col in ("equity", f"equity {cur}", "net P&L", "fees", "orders") else "left")
    for i, (v, row) in enumerate(totals["venues"].items()):
        mark = ">" if i == selected else ""
        if row["state"] != "up":
            t.add_row(mark, v, Text("down", style="bold red"), "-", "-", "-", "-", "-", "-", "-", row.get("reason", "")[:60])
            continue
        in_rep = _money(row["in_report"]["equity"]) if "in_report" in row else "-"
        t.add_row(mark, v, Text("up", style="green"), _money(row["equity"]), row["currency"], in_rep,
                  _money(row.get("net_pnl")), _money(row.get("fees")), str(row["open_orders"]),
                  Text("KILLED", style="bold red") if row["killed"] else "off", row.get("conversion", ""))
    tot = totals["total"]
    t.add_row("", "total", "", "", "", _money(tot["equity"]), _money(tot["net_pnl"]), _money(tot["fees"]), "", "",
              ("not in total: " + ", ".join(totals["not_in_total"])) if totals.get("not_in_total") else "")
    parts: list[Any] = [t]
    for sym, c in consolidated(venues).items():
        x = Table(title=f"{sym} across venues", box=None, padding=(0, 1))
        for col in ("venue", "bid", "ask", "taker"):
            x.add_column(col, justify="left" if col == "venue" else "right")
        for v, q in c["quotes"].items():
            x.add_row(v, q["bid"], q["ask"], f"{float(q['taker']) * 100:.3f} %")
        parts.append(x)
        parts.append(Text("  ".join(f"{k}: {e} bp" for k, e in c["edge_bp_after_fees"].items())
                          + "   (after both taker fees, bp of the mid)"))
    parts.append(Text("up/down select   k kill the selected venue   r release it   f9 (desk) every venue   "
                      "escape close", style="dim"))
    return Group(*parts)


class VenuesScreen(ModalScreen[None]):
    CSS_PATH = "venues.tcss"
    BINDINGS = [
        Binding("escape,v", "dismiss", "close"),
        Binding("up", "move(-1)", "up", show=False),
        Binding("down", "move(1)", "down", show=False),
        Binding("k", "kill", "kill venue"),
        Binding("r", "release", "release venue"),
    ]

    def __init__(self, venues: VenueSet, **kw: Any) -> None:
        super().__init__(**kw)
        self.venues = venues
        self.selected = 0

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(id="venues-body")

    def on_mount(self) -> None:
        self.refresh_view()
        self.set_interval(1.0, self.refresh_view)

    def refresh_view(self) -> None:
        try:
            body: Any = venues_view(self.venues, self.selected)
        except Exception as err:  # never a traceback on the trader's screen
            body = Text(f"venues unavailable: {type(err).__name__}: {err}", style="red")
        self.query_one("#venues-body", Static).update(body)

    @property
    def venue(self) -> str:
        return list(self.venues.engines)[self.selected]

    def action_move(self, step: int) -> None:
        self.selected = (self.selected + step) % len(self.venues.engines)
        self.refresh_view()

    def action_kill(self) -> None:
        venue = self.venue
        if venue not in self.venues.running:
            self.notify(f"{venue} is not running", severity="warning")
            return

        async def run() -> None:
            try:
                n = await self.venues.kill(venue, "kill switch (desk, one venue)")
                self.notify(f"{venue}: kill switch engaged, {n.get(venue, 0)} orders cancelled", severity="warning")
            except Exception as err:
                self.notify(f"{venue}: kill failed: {err}", severity="error")
            self.refresh_view()

        self.run_worker(run(), group="venue-kill")

    def action_release(self) -> None:
        self.venues.release(self.venue)
        self.notify(f"{self.venue}: kill switch released")
        self.refresh_view()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
