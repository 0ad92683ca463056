"""The desk's Backtest screen: pick a strategy, parameters and data, run, inspect.

The backtest runs in a worker *thread* (numpy releases the GIL for the heavy parts and the
UI keeps drawing); results come back to the UI thread with ``call_from_thread``.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Input, Label, Select, Static
from textual_plotext import PlotextPlot


class BacktestScreen(Screen[None]):
    """Backtest a built-in strategy on a CSV/Parquet file or on bars stored in the database."""

    CSS_PATH = "backtest.tcss"

    BINDINGS = [
        Binding("ctrl+r", "run", "Run backtest"),
        Binding("escape", "close", "Back"),
    ]

    class Finished(Message):
        """Posted when a run ends (result is None on error)."""

        def __init__(self, result: Any, error: str | None) -> None:
            super().__init__()
            self.result = result
            self.error = error

    def __init__(self, data: str | Path | None = None, strategy: str = "sma_cross", params: str = "",
                 db: str | Path | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._data = str(data) if data else ""
        self._strategy = strategy
        self._params = params
        self._db = str(db) if db else ""
        self.result: Any = None
        self.error: str | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        from ...engine.strategies import names

        with VerticalScroll(id="bt-form"):
            yield Label("Strategy")
            yield Select([(n, n) for n in names()], value=self._strategy, allow_blank=False, id="bt-strategy")
            yield Label("Parameters (k=v k=v)")
            yield Input(self._params, placeholder="fast=10 slow=20", id="bt-params")
            yield Static("", id="bt-defaults")
            yield Label("Data file (CSV/Parquet) ...")
            yield Input(self._data, placeholder="/path/to/ohlcv.csv", id="bt-data")
            yield Label("... or stored bars: exchange symbol timeframe")
            yield Input("", placeholder="sim BTC/USDT 1m", id="bt-source")
            yield Label("Database (for stored bars)")
            yield Input(self._db, placeholder="tps19.db", id="bt-db")
            yield Label("Since / until (UTC, optional)")
            with Horizontal(classes="bt-row"):
                yield Input("", placeholder="2024-01-01", id="bt-since")
                yield Input("", placeholder="2024-02-01", id="bt-until")
            yield Label("Cash / fee / slippage bps")
            with Horizontal(classes="bt-row"):
                yield Input("10000", id="bt-cash", type="number")
                yield Input("0.001", id="bt-fee", type="number")
                yield Input("0", id="bt-slip", type="number")
            yield Label("Stop-loss / take-profit / trailing % (optional)")
            with Horizontal(classes="bt-row"):
                yield Input("", placeholder="stop", id="bt-stop", type="number")
                yield Input("", placeholder="target", id="bt-take", type="number")
                yield Input("", placeholder="trail", id="bt-trail", type="number")
            yield Button("Run backtest", id="bt-run", variant="primary")
            yield Static("Pick a strategy and data, then Run (ctrl+r).", id="bt-status")
        with Vertical(id="bt-results"):
            with Horizontal(id="bt-top"):
                yield DataTable(id="bt-metrics", show_header=False, cursor_type="none")
                yield PlotextPlot(id="bt-equity")
            yield DataTable(id="bt-trades", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        m = self.query_one("#bt-metrics", DataTable)
        m.add_columns("metric", "value")
        t = self.query_one("#bt-trades", DataTable)
        t.add_columns("#", "side", "entry", "entry px", "exit", "exit px", "why", "units", "P&L", "return")
        self._show_defaults()
        plt = self.query_one("#bt-equity", PlotextPlot).plt
        plt.title("Equity")

    # --- form ----------------------------------------------------------------------------

    @on(Select.Changed, "#bt-strategy")
    def _strategy_changed(self, event: Select.Changed) -> None:
        self._show_defaults()

    def _show_defaults(self) -> None:
        from ...engine.strategies import describe

        name = self.query_one("#bt-strategy", Select).value
        info = next((d for d in describe() if d["name"] == name), None)
        if info:
            text = " ".join(f"{p['name']}={p['default']}" for p in info["params"])
            self.query_one("#bt-defaults", Static).update(f"[dim]defaults: {text}[/]")

    def _form(self) -> dict[str, Any]:
        def val(i: str) -> str:
            return self.query_one(f"#{i}", Input).value.strip()

        return {
            "strategy": str(self.query_one("#bt-strategy", Select).value),
            "params": val("bt-params"),
            "data": val("bt-data"),
            "source": val("bt-source"),
            "db": val("bt-db"),
            "since": val("bt-since"),
            "until": val("bt-until"),
            "cash": val("bt-cash") or "10000",
            "fee": val("bt-fee") or "0",
            "slip": val("bt-slip") or "0",
            "stop_loss": val("bt-stop"),
            "take_profit": val("bt-take"),
            "trailing_stop": val("bt-trail"),
        }

    # --- running -------------------------------------------------------------------------

    @on(Button.Pressed, "#bt-run")
    def _run_pressed(self) -> None:
        self.action_run()

    def action_run(self) -> None:
        if self.running:
            return
        self.running = True
        self.query_one("#bt-run", Button).disabled = True
        self.query_one("#bt-status", Static).update("running ...")
        form = self._form()
        self.run_worker(lambda: self._work(form), thread=True, exclusive=True, group="backtest", name="backtest")

    def action_close(self) -> None:
        if len(self.app.screen_stack) > 1:
            self.app.pop_screen()

    def _work(self, form: dict[str, Any]) -> None:
        """Worker thread: no widget access here."""
        try:
            result = run_form(form)
            error = None
        except Exception as err:  # shown in the status line, never a crash of the desk
            result, error = None, (str(err).splitlines()[0] if str(err) else type(err).__name__)
        self.app.call_from_thread(self._done, result, error)

    def _done(self, result: Any, error: str | None) -> None:
        self.running = False
        self.query_one("#bt-run", Button).disabled = False
        self.result, self.error = result, error
        status = self.query_one("#bt-status", Static)
        if error is not None:
            status.update(f"[red]error: {error}[/]")
        else:
            res, notes = result
            m = res.metrics
            status.update(f"[green]done[/]: {m['bars']} bars, {m['trades']} trades, "
                          f"return {m['total_return'] * 100:.2f}%" + (f"\n[yellow]{notes}[/]" if notes else ""))
            self._show(res)
        self.post_message(self.Finished(result, error))

    def _show(self, res: Any) -> None:
        from ...engine.backtest.report import SHORT_REASON, iso, metric_rows

        m = self.query_one("#bt-metrics", DataTable)
        m.clear()
        for k, v in metric_rows(res.metrics):
            m.add_row(k, v)
        t = self.query_one("#bt-trades", DataTable)
        t.clear()
        for i, tr in enumerate(res.trades, 1):
            t.add_row(str(i), tr.side, iso(tr.entry_ts) or "", f"{tr.entry_price:.8g}",
                      "open" if tr.open else (iso(tr.exit_ts) or ""), f"{tr.exit_price:.8g}" if tr.exit_price else "",
                      SHORT_REASON[tr.exit_reason], f"{tr.units:.6g}", f"{tr.pnl:,.2f}", f"{tr.return_pct * 100:.2f}%")
        plot = self.query_one("#bt-equity", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        n = len(res.equity)
        step = max(1, n // 400)
        xs = ((res.ts[::step] - res.ts[0]) / 86_400_000.0).tolist()
        eq = res.equity[::step]
        dd = res.drawdown()[::step] * 100.0
        plt.plot(xs, eq.tolist(), label="equity", marker="braille")
        plt.plot(xs, dd.tolist(), label="drawdown %", marker="braille", yside="right", color="red")
        plt.title(f"{res.strategy}: equity and drawdown")
        plt.xlabel("days")
        plot.refresh()


def run_form(form: dict[str, Any]) -> tuple[Any, str]:
    """Run a backtest from the form's strings (no Textual here; used by the worker and tests)."""
    import asyncio

    from ...engine.backtest import BacktestConfig, run_backtest
    from ...engine.history import StoredBars, load_backtest_bars, parse_time_value
    from ...engine.strategies import create

    from ...engine.protection import parse_protection

    strat = create(form["strategy"], shlex.split(form.get("params") or ""))

    def pct(key: str) -> float | None:
        raw = (form.get(key) or "").strip()
        return float(raw) if raw else None

    # the CLI's --stop-loss/--take-profit/--trailing-stop; a bad value is the status line's error
    protection = parse_protection(pct("stop_loss"), pct("take_profit"), pct("trailing_stop"))
    config = BacktestConfig(cash=float(form["cash"]), fee=float(form["fee"]), slippage_bps=float(form["slip"]),
                            protection=protection)
    since = parse_time_value(form.get("since") or None)
    until = parse_time_value(form.get("until") or None)
    source: str | StoredBars
    if form.get("data"):
        source = form["data"]
    elif form.get("source"):
        parts = form["source"].split()
        if len(parts) != 3:
            raise ValueError("stored bars: give 'exchange symbol timeframe'")
        source = StoredBars(form.get("db") or "tps19.db", parts[0], parts[1], parts[2])
    else:
        raise ValueError("give a data file or stored bars")
    df, rep = asyncio.run(load_backtest_bars(source, since, until))
    if len(df) < 2:
        raise ValueError("not enough bars in the chosen range")
    notes = "; ".join(rep.lines(limit=2)[1:])
    from ...engine.risk.metrics import with_risk_figures

    return with_risk_figures(run_backtest(strat, df, config)), notes
