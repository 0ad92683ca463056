"""`m`: the models screen. Each registered model's validation figures beside how its live and
paper decisions turned out (hit rate, log loss, calibration), and a drift warning per feature
(PSI against the training data above ``TPS19_ML__PSI_WARN``). Read in a worker every 30 s
while open; `r` reloads now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static


def _f(x: Any, pct: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x * 100:.1f}%" if pct else f"{x:.3f}"


def _day(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


class ModelsScreen(Screen[None]):
    CSS_PATH = "models.tcss"
    BINDINGS = [Binding("escape", "close", "Back"), Binding("r", "reload", "Reload")]

    def __init__(self, db: str | Path, psi_warn: float = 0.25, **kw: Any) -> None:
        super().__init__(**kw)
        self.db = db
        self.psi_warn = psi_warn
        self.models: list[Any] = []
        self.error: str | None = None
        self.loaded = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Models: validation (purged CV) beside live/paper decisions; drift when a feature's PSI "
                         f"> {self.psi_warn:g}", id="models-head")
            table: DataTable[Any] = DataTable(id="models-table", cursor_type="row")
            table.add_columns("model", "trained on", "val AUC", "val acc", "val logloss", "live n", "live hit",
                              "live logloss", "drift")
            yield table
            yield Static("loading...", id="models-detail")
        yield Footer()

    REFRESH_S = 30.0  # decisions resolve once per bar: re-reading more often shows nothing new

    def on_mount(self) -> None:
        self.load()
        self.set_interval(self.REFRESH_S, self.load)

    def action_reload(self) -> None:
        self.load()

    def action_close(self) -> None:
        self.app.pop_screen()

    @work(exclusive=True, group="models")
    async def load(self) -> None:
        from ...engine.ml.overview import gather

        try:
            self.models, self.error = await gather(self.db, self.psi_warn), None
        except Exception as err:  # an unreadable database is a line on the screen, not a crash
            self.models, self.error = [], f"cannot read models from {self.db}: {type(err).__name__}: {err}"
        self.loaded = True
        self._fill()

    def _fill(self) -> None:
        table = self.query_one("#models-table", DataTable)
        keep = table.cursor_row  # a refresh keeps the trader's row
        table.clear()
        for m in self.models:
            if m.drifting:
                drift = Text(f"DRIFT {len(m.drifting)}", style="bold red")
            elif m.psi and all(v is None for v in m.psi.values()):
                drift = Text(f"n/a n={m.drift_n}", style="dim")  # too few live decisions to say
            else:
                drift = Text("ok", style="green")
            table.add_row(m.id, f"{_day(m.start_ms)}..{_day(m.end_ms)}", _f(m.validation.get("roc_auc")),
                          _f(m.validation.get("accuracy"), True), _f(m.validation.get("log_loss")),
                          str(m.live["resolved"]), _f(m.live["hit_rate"], True), _f(m.live["log_loss"]), drift,
                          key=m.id)
        row = min(max(keep, 0), len(self.models) - 1)
        if self.models:
            table.move_cursor(row=row)
        self._detail(self.models[row] if self.models else None)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        key = event.row_key.value if event.row_key is not None else None
        self._detail(next((m for m in self.models if m.id == key), None))

    def _detail(self, m: Any) -> None:
        detail = self.query_one("#models-detail", Static)
        if self.error:
            detail.update(Text(self.error, style="red"))
            return
        if m is None:
            detail.update("No models yet: train one with `tps19 train --data FILE --model hgb --horizon 5` "
                          "(docs/ml.md), then run it with `--strategy ml --param model=ID`.")
            return
        out = Text()
        prop = m.proposed
        if prop is not None:
            out.append(f"PROMOTION PROPOSED: {m.id} over {prop['champion']} (p {prop['p_value']:.4f} on "
                       f"{prop['pairs']} paired decisions): restart with --param model={m.id}\n", style="bold yellow")
        for v in m.verdicts:
            if v is not prop:
                out.append(f"promotion test against {v['champion']}: {v['decision']}"
                           f"{' (applied)' if v['applied'] else ''}, p {v['p_value']:.4f} on {v['pairs']} pairs\n")
        if m.lineage and m.lineage.get("parent"):
            from ...engine.ml.retrain_jobs import trained_where

            where = trained_where(m.lineage)
            out.append(f"retrained from {m.lineage['parent']} ({m.lineage.get('trigger')}) on {m.lineage.get('bars')} "
                       f"bars{', ' + where if where else ''}\n")
        out.append(f"{m.id}  ", style="bold")
        out.append(f"validation accuracy {_f(m.validation.get('accuracy'), True)}, live hit rate "
                   f"{_f(m.live['hit_rate'], True)} on {m.live['resolved']} resolved decisions\n")
        out.append("calibration (mean P(up) -> share that went up):\n", style="bold")
        for c in m.live["calibration"] or []:
            out.append(f"  {c['p_mean']:.2f} -> {c['up_rate'] * 100:.0f}%  (n={c['n']})\n")
        if not m.live["calibration"]:
            out.append("  no resolved decisions yet\n")
        from ...engine.ml.drift import MIN_SAMPLE

        out.append(f"drift (PSI per feature, {m.drift_n} live decisions vs training; computed from "
                   f"{MIN_SAMPLE} on):\n", style="bold")
        for name, v in m.psi.items():
            warn = v is not None and v > self.psi_warn
            out.append(f"  {name:<12} {_f(v)}{'  DRIFT' if warn else ''}\n", style="bold red" if warn else "")
        if not m.psi:
            out.append("  no live decisions yet\n")
        detail.update(out)
