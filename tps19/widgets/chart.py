"""Recent candles (textual-plotext) with our own fills marked."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual_plotext import PlotextPlot

from ..engine.events import BarEvent

MAX_CANDLES = 90


class PriceChart(PlotextPlot, can_focus=True):
    DEFAULT_CSS = "PriceChart { height: 1fr; }"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.symbol = ""
        self.timeframe = ""

    def show(self, symbol: str, timeframe: str, bars: Iterable[BarEvent], fills: Iterable[Any]) -> None:
        self.symbol, self.timeframe = symbol, timeframe
        bars = list(bars)[-MAX_CANDLES:]
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(f"{symbol} {timeframe}")
        if not bars:
            plt.title(f"{symbol} {timeframe}: waiting for candles")
            self.refresh()
            return
        xs = list(range(len(bars)))
        data = {"Open": [b.open for b in bars], "Close": [b.close for b in bars],
                "High": [b.high for b in bars], "Low": [b.low for b in bars]}
        plt.candlestick(xs, data)
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
        labels = [i for i in xs if i % max(1, len(xs) // 4) == 0]
        import time as _t

        plt.xticks(labels, [_t.strftime("%H:%M", _t.gmtime(bars[i].ts / 1000)) for i in labels])
        self.refresh()
