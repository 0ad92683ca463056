"""`p`: how the account and its strategies are doing.

Equity over time (the stored portfolio snapshots, then the live figure from the engine's
PortfolioUpdate), P&L per UTC day, and per strategy: trades, win rate, P&L and the drawdown
since it started. Read through the engine's query functions (``TradingHistory``).
"""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from .history import no_history, stamp, table_pane
from ..widgets.equity import EquityChart
from ..widgets.fmt import fnum
from ..widgets.panes import PnlStyle
from ..widgets.rows import Col, RowsPane

LIVE_REFRESH_S = 1.0


class PerformanceScreen(Screen[None]):
    CSS_PATH = "performance.tcss"
    BINDINGS = [Binding("escape,p,q", "close", "Back"), Binding("r", "reload", "Reload")]

    def __init__(self, history: Any, state: Any, strategies: list[str], venue: str = "", **kw: Any) -> None:
        super().__init__(**kw)
        self.venue = venue  # several venues run: the one whose figures these are (the desk's focused venue)
        self.history = history
        self.state = state  # the desk's DeskState: the live equity points
        self.strategies = strategies
        self.stored: list[tuple[int, Any]] = []
        self.loaded = 0
        self._live_seen: Any = None
        self._days: list[Any] = []  # the stored daily rows; today's is redrawn from each live figure

    def compose(self) -> ComposeResult:
        where = f"  {self.venue} only (n on the desk: another; v: every venue and the total)" if self.venue else ""
        yield Static(Text(f" P&L{where}  (r: reload · escape: back)", style="bold"), id="perf-head")
        chart = EquityChart(id="perf-equity", classes="pane")
        chart.border_title = "Equity"
        yield chart
        with Horizontal(id="perf-bottom"):
            yield table_pane("perf-daily", "Daily P&L (UTC)")
            yield table_pane("perf-strategies", "Strategies (since start)")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#perf-daily").focus()
        self.action_reload()
        self.set_interval(LIVE_REFRESH_S, self._live, name="perf-live")

    def action_reload(self) -> None:
        self.run_worker(self._load(), group="perf-load", exclusive=True)

    def _live(self) -> None:
        """The newest equity figure the engine published extends the stored series."""
        pf = self.state.portfolio
        if pf is not None and pf is not self._live_seen:
            self._live_seen = pf
            self._chart()
            if self._days:
                self._show_daily()

    def _chart(self) -> None:
        last = self.stored[-1][0] if self.stored else 0
        live = [(t, v) for t, v in self.state.equity_points if t > last]
        pf = self.state.portfolio
        self.query_one("#perf-equity", EquityChart).show(self.stored + live, getattr(pf, "valuation", "USDT"))

    async def _load(self) -> None:
        daily = self.query_one("#perf-daily", RowsPane)
        strat = self.query_one("#perf-strategies", RowsPane)
        if no_history(self.history, daily, strat):
            self.loaded += 1
            return
        try:
            self.stored = list(await self.history.equity_series())
            days = await self.history.daily_pnl(days=30)
            names = sorted(set(await self.history.strategies()) | set(self.strategies))
            # what a strategy still holds is valued at the desk's latest marks
            marks = {s: p.mark for s, p in self.state.positions.items() if p.mark is not None}
            stats = [await self.history.strategy_stats(name, marks) for name in names]
        except Exception as err:  # one line, never a traceback
            daily.message(f"could not read the history: {type(err).__name__}: {err}")
            self.loaded += 1
            return
        self._chart()
        self._days = list(days)
        self._show_daily()
        pnl = PnlStyle(self.app.current_theme)
        strat.show((Col("strategy", right=False), Col("trades"), Col("win rate"), Col("P&L net"), Col("fees"),
                    Col("max drawdown"), Col("since", right=False)),
                   [[s.strategy, str(s.trades), f"{s.win_rate * 100:.0f}%" if s.win_rate is not None else "--",
                     pnl(s.net_pnl), fnum(s.fees, 2), fnum(s.max_drawdown, 2), stamp(s.since_ms)] for s in stats],
                   empty="no strategy has traded on this account")
        self.loaded += 1

    def _show_daily(self) -> None:
        pnl = PnlStyle(self.app.current_theme)
        rows = [[d.day, fnum(d.start_equity, 2), fnum(d.end_equity, 2), pnl(d.pnl), ""] for d in self._days]
        pf = self.state.portfolio
        today = time.strftime("%Y-%m-%d", time.gmtime())
        if pf is not None and pf.pnl_today is not None and rows and rows[0][0] == today:
            # today so far: the live figures (redrawn with each one), P&L today being the one the
            # daily loss limit enforces
            rows[0][2:5] = [fnum(pf.equity, 2), pnl(pf.pnl_today), Text("live", style="dim")]
        self.query_one("#perf-daily", RowsPane).show(
            (Col("day", right=False), Col("start equity"), Col("end equity"), Col("P&L"), Col("", right=False)),
            rows, empty="no stored snapshots yet (one a minute while the engine runs)")

    def action_close(self) -> None:
        self.dismiss(None)
