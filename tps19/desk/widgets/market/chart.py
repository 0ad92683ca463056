"""Recent candles (textual-plotext) with our own fills marked, and the levels of our working
stops (red) and take-profits (green) of the symbol as horizontal lines.

plotext builds a chart in pure Python (10-30 ms). PlotextPlot rebuilds on every render; here the
chart is built once per data change (the app asks at most once every 2 s) and the widget renders
the cached result. (Building in a worker thread was tried: the GIL convoy effect made the book
frames wait 100-150 ms behind it, far worse than a short synchronous build.)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, cast

from rich.text import Text
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

from ....engine.events import BarEvent

MAX_CANDLES = 90


class PriceChart(PlotextPlot, can_focus=True):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.symbol = ""
        self.timeframe = ""
        self._data: tuple[str, str, list[BarEvent], list[Any], list[tuple[float, str]]] | None = None
        self._cache: Text | None = None
        self.shown_bars = 0  # candles in the cached chart (0: nothing drawn yet)
        self.levels: list[tuple[float, str]] = []  # the stop / take-profit levels drawn

    def show(self, symbol: str, timeframe: str, bars: Iterable[BarEvent], fills: Iterable[Any],
             levels: Iterable[tuple[float, str]] = ()) -> None:
        """``levels``: (price, "stop" | "take") of the symbol's protective orders."""
        self.symbol, self.timeframe = symbol, timeframe
        self.levels = sorted(set(levels))
        self._data = (symbol, timeframe, list(bars)[-MAX_CANDLES:], list(fills), self.levels)
        self._schedule()

    def on_resize(self) -> None:
        self._schedule()

    def _schedule(self) -> None:
        if self._data is None or not self.size.width or not self.size.height:
            return
        theme = self._get_plotext_theme_name(self.app.theme)
        try:
            self._cache = self._build(self._data, self.size.width, self.size.height, theme)
            self.shown_bars = len(self._data[2])
        except Exception as err:  # a plotting bug must not take the desk down
            self._cache = Text(f"chart unavailable: {type(err).__name__}", style="dim")
        self.refresh()

    def _build(self, data: tuple[str, str, list[BarEvent], list[Any], list[tuple[float, str]]], width: int,
               height: int, theme: str) -> Text:
        symbol, timeframe, bars, fills, levels = data
        plt = Plot()  # a fresh figure per build: plotext keeps state across clear_figure() (tick layout)
        plt.plotsize(width, height)
        plt._set_size(width, height)
        plt.theme(theme)
        if not bars:
            plt.title(f"{symbol} {timeframe}: waiting for candles")
            return Text.from_ansi(plt.build())
        plt.title(f"{symbol} {timeframe}")
        xs = list(range(len(bars)))
        # plotext types candlestick()'s x as date strings; it plots numeric positions as well (bar index
        # here, labelled with times below)
        plt.candlestick(cast(Any, xs), {"Open": [b.open for b in bars], "Close": [b.close for b in bars],
                             "High": [b.high for b in bars], "Low": [b.low for b in bars]})
        # Own fills: placed on the candle whose time span holds the fill.
        start = bars[0].ts
        step = (bars[1].ts - bars[0].ts) if len(bars) > 1 else 60_000
        for side, marker, color in (("buy", "▲", "green"), ("sell", "▼", "red")):
            fx, fy = [], []
            for f in fills:
                if f.side != side or f.ts < start:
                    continue
                fx.append(min(len(bars) - 1, (f.ts - start) // step))
                fy.append(float(f.price))
            if fx:
                plt.scatter(fx, fy, marker=marker, color=color, label=f"own {side}")
        for price, kind in levels:
            plt.hline(price, "red" if kind == "stop" else "green")
        if levels:
            marks = ", ".join(f"{'stop' if k == 'stop' else 'target'} {p:,.2f}" for p, k in levels[:3])
            plt.title(f"{symbol} {timeframe}  ({marks}{' ...' if len(levels) > 3 else ''})")
        # Few enough time labels that plotext never has to resolve overlaps (its overlap handling
        # varies between processes, which made snapshots flaky).
        n = max(2, min(5, width // 14))
        step_i = max(1, (len(xs) - 1) // (n - 1))
        labels = list(range(0, len(xs), step_i))[:n]
        plt.xticks([float(i) for i in labels], [time.strftime("%H:%M", time.gmtime(bars[i].ts / 1000)) for i in labels])
        return Text.from_ansi(plt.build())

    def render(self) -> Any:
        if self._cache is None:
            return Text("waiting for candles...", style="dim")
        return self._cache
