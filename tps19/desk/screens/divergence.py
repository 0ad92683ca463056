"""`e`: the divergence ledger of this session (recorded with --record DIR).

The session's recording is flushed, then replayed twice in a worker thread (at the recorded
points, and at each bar's close): the desk keeps drawing meanwhile. A session that is not
recorded says how to record one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static


class DivergenceScreen(Screen[None]):
    CSS_PATH = "divergence.tcss"
    BINDINGS = [Binding("escape,e,q", "close", "Back"), Binding("g", "refresh", "Recompute")]

    def __init__(self, root: Path | None, settings: Any, flush: Any = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.root = root
        self.settings = settings
        self.flush = flush  # makes the recording's open batch a closed file (blocking: run in a thread)
        self.report: Any = None
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._text(), id="divergence-body")
        yield Footer(compact=True, show_command_palette=False)

    def _text(self) -> Any:
        if self.root is None:
            return ("This session is not recorded: there is nothing to compare.\n"
                    "Start the desk with --record DIR (or run `tps19 divergence DIR` on a recording).")
        if self.error is not None:
            return f"divergence of {self.root}: {self.error}"
        if self.report is None:
            return f"replaying {self.root} (at the recorded points, then at each bar's close)..."
        from ...engine.recording.table import ledger_table

        return ledger_table(self.report)

    def on_mount(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        if self.root is None:
            return
        self.report, self.error = None, None
        self.query_one("#divergence-body", Static).update(self._text())
        self.run_worker(self._compute, thread=True, exclusive=True, group="divergence")

    def _compute(self) -> None:
        import asyncio

        from ...engine.recording.divergence import divergence
        from ...engine.recording.reader import RecordingError

        try:
            if self.flush is not None:
                self.flush()
            report = asyncio.run(divergence(self.root, self.settings))
        except RecordingError as err:
            self.app.call_from_thread(self._show, None, str(err))
            return
        except Exception as err:  # never a traceback on the trader's screen
            self.app.call_from_thread(self._show, None, f"{type(err).__name__}: {err}")
            return
        self.app.call_from_thread(self._show, report, None)

    def _show(self, report: Any, error: str | None) -> None:
        self.report, self.error = report, error
        self.query_one("#divergence-body", Static).update(self._text())

    def action_close(self) -> None:
        self.dismiss(None)
