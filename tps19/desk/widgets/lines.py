"""LinePane: a pane of text lines that repaints only the lines that changed, and nothing when none did.

A plain ``refresh()`` repaints the whole widget: Textual re-styles every line, the compositor
cuts them all again and every line is written to the terminal, even when the new data reads
exactly as the old (another symbol's book, a level deeper than the ladder shows, a flash that
has not expired yet). Here ``redraw()`` builds the pane's Rich Text at once, compares it line by
line (characters and styles) with what is on screen, and asks Textual to repaint only the rows
that differ, or nothing. Textual still converts the text the usual way (``render()`` returns
it), so the pixels, text selection and themes are Textual's own.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from rich.text import Text
from textual.geometry import Region
from textual.widget import Widget


def line_key(line: Text) -> Hashable:
    """What a line reads: its characters, its base style and every styled span."""
    return line.plain, str(line.style), tuple((s.start, s.end, str(s.style)) for s in line.spans)


def changed_rows(old: list[Hashable], new: list[Hashable]) -> list[int]:
    """Rows whose key differs, rows added and rows gone."""
    n = max(len(old), len(new))
    return [y for y in range(n) if y >= len(old) or y >= len(new) or old[y] != new[y]]


def row_regions(rows: list[int], width: int) -> list[Region]:
    """Runs of consecutive rows as one region each."""
    regions: list[Region] = []
    if not rows:
        return regions
    start = prev = rows[0]
    for y in rows[1:] + [-1]:
        if y != prev + 1:
            regions.append(Region(0, start, width, prev - start + 1))
            start = y
        prev = y
    return regions


class LinePane(Widget):
    """Subclasses implement ``build() -> Text`` (one line per row) and call ``redraw()`` where they
    would call ``refresh()``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._text: Text = Text()
        self._keys: list[Hashable] = []
        self._basis: Any = None  # what the text was built for: size and theme

    def build(self) -> Text:
        raise NotImplementedError

    def _current_basis(self) -> Any:
        return self.size, self.app.theme

    def _take(self, text: Text) -> list[int]:
        """Keep ``text``; return the rows that read differently from before."""
        keys = [line_key(t) for t in text.split("\n", allow_blank=True)] if text.plain else [line_key(text)]
        changed = changed_rows(self._keys, keys)
        self._text, self._keys = text, keys
        return changed

    def redraw(self) -> None:
        """Rebuild the text now; repaint the rows that changed (every row on a new size or theme)."""
        basis = self._current_basis()
        if not self.is_mounted or not self.size or basis != self._basis:
            self._basis = basis if self.is_mounted and self.size else None
            self._take(self.build())
            self.refresh()
            return
        changed = self._take(self.build())
        if changed:
            self.refresh(*row_regions(changed, self.size.width))

    def render(self) -> Any:
        basis = self._current_basis()
        if basis != self._basis:  # resized or a new theme since the last build: built anew for it
            self._basis = basis
            self._take(self.build())
        return self._text
