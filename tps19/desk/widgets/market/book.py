"""Order book ladder: asks above, bids below, cumulative size, size bars, spread/mid, flashes, own orders."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip

from ....engine.events import BookEvent
from ..lines import LinePane

FLASH_S = 0.35
BAR_CHARS = " ▏▎▍▌▋▊▉█"
DEPTHS = (5, 10, 15, 20, 25, 50)


def bar(fraction: float, width: int) -> str:
    """A horizontal bar of ``fraction`` (0..1) of ``width`` cells, in eighths."""
    fraction = max(0.0, min(1.0, fraction))
    eighths = int(round(fraction * width * 8))
    full, part = divmod(eighths, 8)
    return ("█" * full + (BAR_CHARS[part] if part else "")).ljust(width)


class BookLadder(LinePane, can_focus=True):
    """Draws the latest BookEvent for one symbol; ``show`` repaints the rows that changed (lines.py)."""

    def __init__(self, levels: int = 15, **kw: Any) -> None:
        super().__init__(**kw)
        self.levels = levels
        self.symbol = ""
        self.event: BookEvent | None = None
        self.price_places = 2
        self.size_places = 4
        self.own: dict[tuple[str, float], float] = {}  # (side, price) -> our remaining size
        self._prev: dict[tuple[str, float], float] = {}
        self._flash: dict[tuple[str, float], float] = {}
        self._status = "waiting for the first book..."
        # Latency probe for the benchmark: perf_counter stamps when a new event was first rendered.
        self.rendered: list[tuple[float, float]] = []  # (event.received, rendered_at)
        self.probe = False
        self._probed: BookEvent | None = None
        self.clock = time.monotonic

    def set_symbol(self, symbol: str, price_places: int, size_places: int) -> None:
        if symbol != self.symbol:
            self.symbol = symbol
            self.event = None
            self._prev.clear()
            self._flash.clear()
        self.price_places, self.size_places = price_places, size_places
        self.redraw()

    def set_depth(self, levels: int) -> None:
        self.levels = levels
        self._depth_note(self._per_side())
        self.redraw()

    def _per_side(self) -> int:
        rows = self.size.height or self.levels * 2 + 2
        return max(1, min(self.levels, (rows - 2) // 2))

    def on_resize(self) -> None:
        # The border is painted from the subtitle as it was before render() runs: a note changed
        # only inside render() stays stale on screen until something else repaints the ladder
        # (the desk no longer runs a layout pass every frame). Set it as soon as the size is known.
        self._depth_note(self._per_side())
        # and repaint the whole ladder, border included: the note may already have been changed by a
        # render() that ran at the new size before this event, whose repaint of the border can be
        # lost (the ladder's later frames repaint changed rows only, never the border): "depth 9 of
        # 15" stayed on screen over 7 levels a side, 1 run in 3 of test_desk_frames
        self.refresh()

    def _depth_note(self, shown: int) -> bool:
        """The border says the depth the ladder draws, and the depth chosen when fewer fit (True:
        the note changed)."""
        note = f"depth {self.levels}" if shown >= self.levels else f"depth {shown} of {self.levels} (d)"
        if self.border_subtitle != note:
            self.border_subtitle = note
            return True
        return False

    def show(self, event: BookEvent | None, own: dict[tuple[str, float], float], status: str = "") -> None:
        if event is not None and event is not self.event:
            now = self.clock()
            cur: dict[tuple[str, float], float] = {}
            for side, levels in (("b", event.bids), ("a", event.asks)):
                for p, q in levels[: self.levels]:
                    cur[(side, p)] = q
            if self._prev:
                for k, q in cur.items():
                    if self._prev.get(k) != q:
                        self._flash[k] = now + FLASH_S
            self._prev = cur
            if len(self._flash) > 4 * self.levels:
                self._flash = {k: t for k, t in self._flash.items() if t > now}
            self.event = event
        self.own = own
        self._status = status
        self.redraw()

    @property
    def flashing(self) -> bool:
        now = self.clock()
        return any(t > now for t in self._flash.values())

    def render_lines(self, crop: Region) -> list[Strip]:
        # Textual paints the border from the subtitle as it is when it starts rendering the widget's
        # lines, before render() runs, and keeps those lines cached: a note changed inside render()
        # (the first render at a new size, right in the layout pass that resized the ladder) went
        # out stale in that frame and stayed in the cache, and the ladder's later frames repaint
        # changed rows only. Settled here, before the lines: a change clears the cache (the setter
        # refreshes the whole widget, border included), so this frame's lines carry the new note and
        # the next frame repaints the whole ladder with it
        self._depth_note(self._per_side())
        return super().render_lines(crop)

    def render(self) -> Any:
        text = super().render()
        ev = self.event
        if ev is not None and self.probe and ev is not self._probed:
            self._probed = ev
            self.rendered.append((ev.received, time.perf_counter()))
        return text

    def build(self) -> Text:
        ev = self.event
        if ev is None:
            return Text(self._status or "waiting for the first book...", style="dim")
        theme = self.app.current_theme
        bid_c, ask_c = theme.success or "green", theme.error or "red"
        flash_bg = "reverse"
        now = self.clock()
        per_side = self._per_side()
        self._depth_note(per_side)  # outside a render (show, set_depth); render_lines settles it first
        asks = list(ev.asks[:per_side])
        bids = list(ev.bids[:per_side])
        cum_a, cum_b = [], []
        t = 0.0
        for _, q in asks:
            t += q
            cum_a.append(t)
        t = 0.0
        for _, q in bids:
            t += q
            cum_b.append(t)
        max_cum = max(cum_a[-1] if cum_a else 0, cum_b[-1] if cum_b else 0) or 1.0
        width = self.size.width or 40
        pp, sp = self.price_places, self.size_places
        pw = max(len(f"{(asks[-1][0] if asks else 0):,.{pp}f}"), len(f"{(bids[0][0] if bids else 0):,.{pp}f}"), 5)
        sw = max(8, sp + 5)
        # One Text of fixed-width lines: far cheaper to lay out than a Table at 15-20 frames/s.
        cw = 1 + 1 + pw + 1 + sw + 1 + sw + 1
        bar_w = max(0, width - cw)
        out = Text(no_wrap=True, overflow="crop", end="")
        out.append(f"  {'price':>{pw}} {'size':>{sw}} {'cum':>{sw}}\n", style="dim")

        def row(side: str, p: float, q: float, cum: float, color: str) -> None:
            key = (side, p)
            style = f"{color} {flash_bg}" if self._flash.get(key, 0) > now else color
            out.append("◆ " if key in self.own else "  ", style="bold")
            out.append(f"{p:>{pw},.{pp}f} {q:>{sw},.{sp}f}", style=style)
            out.append(f" {cum:>{sw},.{sp}f} ", style="dim")
            if bar_w >= 3:
                out.append(bar(cum / max_cum, bar_w - 1).rstrip(), style=color)
            out.append("\n")

        for i in range(len(asks) - 1, -1, -1):
            p, q = asks[i]
            row("a", p, q, cum_a[i], ask_c)
        if ev.spread is not None and ev.mid is not None:
            bps = ev.spread / ev.mid * 10_000 if ev.mid else 0.0
            out.append(f"  mid {ev.mid:,.{pp + 1}f}", style="bold")
            out.append(f"  spread {ev.spread:,.{pp}f} ({bps:.1f} bp)\n")
        else:
            out.append("  one-sided book\n", style="bold")
        for i, (p, q) in enumerate(bids):
            row("b", p, q, cum_b[i], bid_c)
        out.rstrip()
        return out
