"""Equity over time (textual-plotext): stored portfolio snapshots, then the live figure."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from rich.text import Text
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot


class EquityChart(PlotextPlot):
    """``show(points)``: ``[(ts_ms, equity)]`` oldest first. Built once per data change (plotext is
    pure Python) and cached; render draws the cache."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.points: list[tuple[int, Decimal]] = []
        self._cache: Text | None = None

    def show(self, points: list[tuple[int, Any]], valuation: str = "USDT") -> None:
        self.points = [(int(t), Decimal(str(v))) for t, v in points]
        self.valuation = valuation
        self._build()

    def on_resize(self) -> None:
        self._build()

    def _build(self) -> None:
        w, h = self.size.width, self.size.height
        if not w or not h:
            return
        plt = Plot()
        plt.plotsize(w, h)
        plt._set_size(w, h)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        pts = self.points
        if len(pts) < 2:
            self._cache = Text("equity: waiting for a second figure (snapshots are stored every minute)", style="dim")
            self.refresh()
            return
        first = float(pts[0][1])
        last = float(pts[-1][1])
        plt.title(f"equity {last:,.2f} {getattr(self, 'valuation', '')}  ({last - first:+,.2f} over the period)")
        # x is time (seconds from the first point): live points come every second, stored ones every minute
        t0 = pts[0][0]
        xs = [(t - t0) / 1000 for t, _ in pts]
        plt.plot(xs, [float(v) for _, v in pts], marker="braille")
        n = max(2, min(5, w // 16))
        span = xs[-1] or 1.0
        ticks = [span * i / (n - 1) for i in range(n)]
        fmt = "%H:%M:%S" if span < 3_600 else "%H:%M" if span < 86_400 else "%m-%d %H:%M"
        plt.xticks(ticks, [time.strftime(fmt, time.gmtime(t0 / 1000 + x)) for x in ticks])
        try:
            self._cache = Text.from_ansi(plt.build())
        except Exception as err:  # a plotting bug must not take the screen down
            self._cache = Text(f"chart unavailable: {type(err).__name__}", style="dim")
        self.refresh()

    def render(self) -> Any:
        return self._cache if self._cache is not None else Text("loading...", style="dim")
