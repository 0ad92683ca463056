"""KeysFooter: the footer with a screen's extra keys, as many as fit.

A screen keeps some keys out of Textual's footer (``show=False``) so that an 80-column footer
still reads; on a wider terminal the footer had room for them and still hid them (issue 20: "the
footer shows the screens' keys that fit"). A screen lists those extra keys' actions, most useful
first, in ``FOOTER_EXTRAS``; this footer shows the usual keys and then each extra key while the
whole line fits the terminal's width, and lays itself out again when the width changes.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


def key_cells(key_display: str, description: str) -> int:
    """Cells a compact footer key takes: the key, a space, the description, the gap after it."""
    return cell_len(key_display) + 1 + cell_len(description) + 1


class KeysFooter(Footer):
    """A compact footer (no command palette key) that adds ``screen.FOOTER_EXTRAS`` while they fit."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("compact", True)
        kw.setdefault("show_command_palette", False)
        super().__init__(**kw)
        self._width = 0

    def _keys(self) -> list[tuple[Binding, bool, str]]:
        """The keys to show: every ``show`` binding, then the screen's extras that fit."""
        active = self.screen.active_bindings
        shown: list[tuple[Binding, bool, str]] = []
        seen: set[str] = set()
        for _node, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                shown.append((binding, enabled, tooltip))
        width = self.app.size.width
        used = sum(key_cells(self.app.get_key_display(b), b.description) for b, _, _ in shown)
        by_action = {b.action: (b, enabled, tooltip) for _node, b, enabled, tooltip in active.values()
                     if not b.show and b.description}
        for action in getattr(self.screen, "FOOTER_EXTRAS", ()):
            found = by_action.get(action)
            if found is None or action in seen:
                continue
            cells = key_cells(self.app.get_key_display(found[0]), found[0].description)
            if used + cells > width:
                break  # the extras are in order of use: none after one that does not fit
            used += cells
            seen.add(action)
            shown.append(found)
        return shown

    def compose(self) -> Any:
        if not getattr(self, "_bindings_ready", True):
            return
        keys = self._keys()
        self.styles.grid_size_columns = len(keys)
        for binding, enabled, tooltip in keys:
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            disabled=not enabled, tooltip=tooltip).data_bind(compact=Footer.compact)

    def on_resize(self, event: Resize) -> None:
        if self.app.size.width != self._width:
            self._width = self.app.size.width
            self.call_after_refresh(self.recompose)
