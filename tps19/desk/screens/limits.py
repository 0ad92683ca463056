"""The risk limits screen (key `r`): every limit the risk stage enforces, editable.

Enter (or `ctrl+s`) asks to save; escape leaves without a change. A value the settings' rules
refuse is said on the screen, its field marked and focused, and every edit kept. In live mode the change must
be confirmed by typing `change` in the confirmation field. The screen only collects the values:
the app applies them through ``engine/risk/limits.change_limits`` (validated by the settings'
own rules, stored in ``risk_limit_changes`` and logged) and shows a refusal in one line.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from ...engine.risk.limits import EDITABLE, LimitError, validated

LABELS = {
    "max_order_notional": "max order value", "max_position_notional": "max position value",
    "max_gross_exposure": "max gross exposure", "daily_loss_limit": "daily loss limit",
    "max_drawdown_pct": "max drawdown %", "price_band_pct": "price band %", "max_daily_orders": "orders per day",
    "max_orders_per_minute": "orders per minute", "max_open_orders": "max open orders",
}
CONFIRM_WORD = "change"


class LimitsScreen(ModalScreen[dict[str, str] | None]):
    """Dismissed with the changed limits (name -> typed text), or None."""

    CSS_PATH = "limits.tcss"
    BINDINGS = [Binding("escape", "cancel", "cancel"), Binding("ctrl+s", "save", "save")]

    def __init__(self, limits: Any, *, live: bool, **kw: Any) -> None:
        super().__init__(**kw)
        self.limits = limits
        self.live = live
        self.error: str | None = None  # the refusal shown, if any

    def compose(self) -> ComposeResult:
        with Vertical() as v:
            v.border_title = "Risk limits" + (" (LIVE)" if self.live else "")
            with Grid(id="limits-grid"):
                for name in EDITABLE:
                    yield Label(LABELS[name])
                    yield Input(str(getattr(self.limits, name)), id=f"limit-{name}")
            if self.live:
                yield Label(f"type {CONFIRM_WORD} to confirm a change of LIVE limits")
                yield Input("", id="limit-confirm", placeholder=CONFIRM_WORD)
            yield Static("enter / ctrl+s = save    escape = cancel", classes="dim")
            yield Static("", id="limit-error")

    def changes(self) -> dict[str, str]:
        out = {}
        for name in EDITABLE:
            text = self.query_one(f"#limit-{name}", Input).value.strip()
            if text != str(getattr(self.limits, name)):
                out[name] = text
        return out

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        changes = self.changes()
        if not changes:
            self.dismiss(None)
            return
        for box in self.query(".-invalid"):
            box.remove_class("-invalid")
        try:  # the settings' own rules, here: a refused value keeps every edit and marks its field
            validated(self.limits, changes)
        except LimitError as err:
            self.error = f"{err}: nothing changed, fix the marked field"
            self.query_one("#limit-error", Static).update(self.error)
            if err.limit in EDITABLE:
                box = self.query_one(f"#limit-{err.limit}", Input)
                box.add_class("-invalid")
                box.focus()
            return
        if self.live and self.query_one("#limit-confirm", Input).value.strip().lower() != CONFIRM_WORD:
            self.query_one("#limit-error", Static).update(f"type {CONFIRM_WORD} to confirm: LIVE limits are not changed")
            return
        self.dismiss(changes)

    def action_cancel(self) -> None:
        self.dismiss(None)
