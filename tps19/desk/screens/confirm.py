"""A yes/no question that needs an explicit `y` (escape or `n` says no)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    CSS_PATH = "confirm.tcss"
    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, title: str, question: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.title_text = title
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = self.title_text
            yield Static(self.question, classes="question")
            yield Static("y = yes    n / escape = no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class MessageScreen(ModalScreen[None]):
    """A message that must be acknowledged (e.g. the engine could not start)."""

    CSS_PATH = "confirm.tcss"
    BINDINGS = [Binding("escape,enter,q", "close", "close")]

    def __init__(self, title: str, message: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.title_text = title
        self.message = message

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = self.title_text
            yield Static(self.message)
            yield Static("press q to quit", classes="dim")

    def action_close(self) -> None:
        self.dismiss(None)
