"""RowsPane: a pane of aligned rows whose header and totals never scroll away.

Every table-like pane of the desk (positions, balances, open orders, risk, signals) is one of
these: a fixed header line, rows that scroll (up/down/page keys when the pane has focus, or the
row cursor), pinned rows at the bottom (totals, equity), and a border subtitle that says how many
rows are out of view whenever the pane cannot show them all. Drawn as one ``Text`` per frame
(a Rich ``Table`` per frame costs ~10x more on a busy desk).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widget import Widget

Cell = str | Text


@dataclass(frozen=True)
class Col:
    name: str
    right: bool = True  # numbers right-aligned, names left
    # > 0: hidden (lowest first) while the pane is too narrow for every column, and its border
    # says so; for a column another pane or column also tells (cropping the right end instead cut
    # numbers short: a fees cell of 3.93 read "3.9")
    hide: int = 0


def _cell(c: Cell) -> Text:
    return c if isinstance(c, Text) else Text(c)


class RowsPane(Widget, can_focus=True):
    """``show(cols, rows, pinned=..., keys=..., empty=...)``; ``cursor=True`` adds a row cursor."""

    BINDINGS = [
        Binding("up", "move(-1)", "up", show=False),
        Binding("down", "move(1)", "down", show=False),
        Binding("pageup", "move(-10)", "page up", show=False),
        Binding("pagedown", "move(10)", "page down", show=False),
        Binding("home", "move(-1000000)", "top", show=False),
        Binding("end", "move(1000000)", "end", show=False),
    ]

    def __init__(self, text: str = "", *, cursor: bool = False, header: bool = True, **kw: Any) -> None:
        super().__init__(**kw)
        self.with_cursor = cursor
        self.with_header = header
        self.cols: list[Col] = []
        self.rows: list[list[Cell]] = []
        self.pinned: list[list[Cell]] = []
        self.keys: list[str] = []
        self.empty = text
        self.top = 0  # first row in view
        self.row_cursor = 0
        self.rows_hidden = 0  # rows out of view at the last render
        self.cols_hidden: list[str] = []  # columns left out for want of width (Col.hide)
        self._shown: list[int] | None = None  # indices of the columns drawn (None: all)
        self._key: Any = None
        self._lead = " "

    # -- data ------------------------------------------------------------------------------
    def unchanged(self, key: Any) -> bool:
        """True when ``key`` (what the pane would show) is what it shows already."""
        if key == self._key:
            return True
        self._key = key
        return False

    def show(self, cols: Sequence[Col], rows: Sequence[Sequence[Cell]], *, pinned: Sequence[Sequence[Cell]] = (),
             keys: Sequence[str] = (), empty: str = "") -> None:
        keep = self.selected_key()
        before = self._shape()
        self.cols, self.rows, self.pinned = list(cols), [list(r) for r in rows], [list(r) for r in pinned]
        self.keys = list(keys)
        self.empty = empty
        if keep is not None and keep in self.keys:
            self.row_cursor = self.keys.index(keep)
        self.row_cursor = max(0, min(self.row_cursor, len(self.rows) - 1))
        self._view()
        # a layout pass arranges the whole screen (the costliest part of a desk frame in
        # bench_desk's profile): only when the rows this pane asks room for change in number
        self.refresh(layout=self._shape() != before)

    def _shape(self) -> tuple[bool, int, int]:
        return bool(self.cols), len(self.rows), len(self.pinned)

    def message(self, text: str) -> None:
        """Only a line of text (no rows): "no positions", "trading layer not available"."""
        self.show([], [], empty=text)

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def selected_key(self) -> str | None:
        if not self.with_cursor or not self.rows or not self.keys:
            return None
        return self.keys[min(self.row_cursor, len(self.keys) - 1)]

    # -- keys --------------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        if not self.rows:
            return
        if self.with_cursor:
            self.row_cursor = max(0, min(len(self.rows) - 1, self.row_cursor + delta))
        else:
            self.top = max(0, min(len(self.rows) - self._room(), self.top + delta))
        self._view()
        self.refresh()

    # -- layout --------------------------------------------------------------------------------
    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        if not self.rows and not self.pinned:
            return 1
        return int(self.with_header and bool(self.cols)) + len(self.rows) + len(self.pinned)

    def _room(self) -> int:
        """Rows that fit between the header and the pinned rows."""
        h = self.size.height or (len(self.rows) + len(self.pinned) + 1)
        return max(1, h - int(self.with_header and bool(self.cols)) - len(self.pinned))

    def _all_widths(self) -> list[int]:
        w = [len(c.name) if self.with_header else 0 for c in self.cols]
        for r in self.rows + self.pinned:
            for i, c in enumerate(r[: len(w)]):
                w[i] = max(w[i], _cell(c).cell_len)
        return w

    def _fit(self) -> None:
        """Which columns are drawn at this width: every one when they fit (one blank between),
        else without the ``Col.hide`` ones, lowest first, until the rest fit."""
        self._shown, self.cols_hidden = None, []
        width = self.size.width
        if not width or not any(c.hide for c in self.cols):
            return
        w = self._all_widths()
        shown = list(range(len(self.cols)))
        for i in sorted((i for i, c in enumerate(self.cols) if c.hide), key=lambda i: self.cols[i].hide):
            if sum(w[j] for j in shown) + len(shown) - 1 <= width:
                break
            shown.remove(i)
            self.cols_hidden.append(self.cols[i].name)
        if self.cols_hidden:
            self._shown = shown

    def _widths(self) -> list[int]:
        w = self._all_widths()
        return w if self._shown is None else [w[i] for i in self._shown]

    def _drawn(self, cells: Sequence[Any]) -> list[Any]:
        return list(cells) if self._shown is None else [cells[i] if i < len(cells) else "" for i in self._shown]

    def _view(self) -> tuple[int, int]:
        """Scroll position and rows in view for the current size; updates the border's count.
        Called when the data, the size or the position changes (never from render: a border
        changed while rendering is not repainted)."""
        self._fit()
        room = self._room()
        n = len(self.rows)
        if self.with_cursor:  # keep the cursor in view
            self.top = min(max(self.top, self.row_cursor - room + 1), self.row_cursor)
        self.top = max(0, min(self.top, n - room)) if n > room else 0
        shown = min(room, n - self.top)
        self._subtitle(self.top, shown, n)
        return self.top, shown

    def on_resize(self) -> None:
        self._view()

    def render(self) -> Any:
        if not self.rows and not self.pinned:
            return Text(self.empty, style="dim", no_wrap=True, overflow="ellipsis")
        widths = self._widths()
        width = self.size.width or sum(widths) + 2 * len(widths)
        # two spaces between columns and one before when that fits, else one between and none before
        roomy = sum(widths) + 2 * (len(widths) - 1) + 1 <= width
        gap, self._lead = (2, " ") if roomy else (1, "")
        top, shown = self.top, min(self._room(), len(self.rows) - self.top)
        out = Text(no_wrap=True, overflow="crop", end="")
        if self.with_header and self.cols:
            out.append_text(self._line([Text(c.name) for c in self._drawn(self.cols)], widths, gap, "dim"))
            out.append("\n")
        for i, r in enumerate(self.rows[top: top + shown]):
            selected = self.with_cursor and top + i == self.row_cursor and self.has_focus
            out.append_text(self._line(self._drawn(r), widths, gap, "reverse" if selected else ""))
            out.append("\n")
        for r in self.pinned:
            out.append_text(self._line(self._drawn(r), widths, gap, "bold"))
            out.append("\n")
        out.rstrip()
        return out

    def _line(self, cells: Sequence[Cell], widths: list[int], gap: int, style: str) -> Text:
        line = Text(self._lead, style=style, no_wrap=True)
        for i, (col, w) in enumerate(zip(self._drawn(self.cols), widths)):
            c = _cell(cells[i]) if i < len(cells) else Text("")
            pad = " " * max(0, w - c.cell_len)
            if i:
                line.append(" " * gap)
            if col.right:
                line.append(pad)
                line.append_text(c)
            else:
                line.append_text(c)
                line.append(pad)
        return line

    def _subtitle(self, first: int, shown: int, total: int) -> None:
        self.rows_hidden = total - shown
        if not self.rows_hidden:
            sub = ""
        else:
            above, below = first, total - first - shown
            arrows = " ".join(p for p in (f"↑{above}" if above else "", f"↓{below}" if below else "") if p)
            sub = f"{self.rows_hidden} more row{'s' if self.rows_hidden != 1 else ''} {arrows}"
        if self.cols_hidden:
            sub = " · ".join(p for p in (f"{', '.join(self.cols_hidden)} hidden (narrow)", sub) if p)
        if self.border_subtitle != sub:
            self.border_subtitle = sub

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
