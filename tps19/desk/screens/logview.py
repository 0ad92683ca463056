"""`l`: every log line the desk holds, whole (wrapped, every field), and where the desk writes.

The desk's log pane cuts long lines at its width; this screen is where they are read in full,
with the session's facts (mode, venue, database file) that the status bar has no room for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import RichLog, Static

from ..widgets.footer import KeysFooter
from ..widgets.panes import log_line


class LogScreen(Screen[None]):
    CSS_PATH = "logview.tcss"
    BINDINGS = [Binding("escape,l,q", "close", "Back"),
                Binding("end", "end", "Newest", show=False)]
    FOOTER_EXTRAS = ("end",)

    def __init__(self, facts: list[tuple[str, str]], lines: Iterable[Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.facts = facts
        self.lines = list(lines)

    def compose(self) -> ComposeResult:
        head = Text(no_wrap=False)
        for k, v in self.facts:
            head.append(f"{k} ", style="dim")
            head.append(f"{v}   ", style="bold")
        yield Static(head, id="log-facts")
        log = RichLog(id="log-all", wrap=True, markup=False, highlight=False, max_lines=2_000)
        log.border_title = f"Log: {len(self.lines)} lines, newest last (up/down/pgup/pgdn scroll)"
        yield log
        yield KeysFooter()

    def on_mount(self) -> None:
        log = self.query_one("#log-all", RichLog)
        for e in self.lines:
            log.write(log_line(e, self.app.current_theme, full=True))
        log.focus()

    def add(self, events: Iterable[Any]) -> None:
        """Lines that arrive while the screen is open."""
        log = self.query_one("#log-all", RichLog)
        for e in events:
            log.write(log_line(e, self.app.current_theme, full=True))

    def action_end(self) -> None:
        self.query_one("#log-all", RichLog).scroll_end(animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
