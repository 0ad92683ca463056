"""Live risk metrics for the desk's Risk pane and the headless log.

Every ``interval_s`` the monitor computes, with the same functions as `tps19 risk` and the
backtest reports (``risk/metrics.py``): exposure per held symbol and in total, leverage (gross
exposure / equity), and over the closed bars seen since the start (every symbol's closes on the
times they share) the held portfolio's realised volatility, VaR/CVaR 95/99 %, max drawdown and the
correlation between held symbols; plus the drawdown of equity from its peak (the breaker's figure).
It keeps the latest figures in ``latest`` and publishes them as a ``RiskMetricsEvent``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..events import BarEvent, now_ms
from .metrics import RiskReport, bars_per_year, report, simple_returns

if TYPE_CHECKING:
    from ..trading import Portfolio

MAX_BARS = 1000
log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class RiskMetricsEvent:
    equity: float | None
    report: RiskReport
    peak_equity: float | None = None
    drawdown_pct: float | None = None  # of equity below its peak, in %
    ts: int = field(default_factory=now_ms)


class RiskMonitor:
    def __init__(self, portfolio: Portfolio, bus: Any = None, *, breakers: Any = None, interval_s: float = 2.0) -> None:
        self.portfolio = portfolio
        self.bus = bus
        self.breakers = breakers  # its peak equity is the drawdown's reference
        self.interval_s = interval_s
        self.closes: dict[str, OrderedDict[int, float]] = {}
        self.latest: RiskMetricsEvent | None = None
        self._task: asyncio.Task[None] | None = None
        self.failures = 0
        self._cache: tuple[Any, dict[str, np.ndarray], float] | None = None
        if bus is not None:
            from ..trading.events import PortfolioUpdate

            bus.on(BarEvent, self.on_bar)
            # the figures follow the marks (the engine publishes at most a few updates a second), so the
            # pane always shows the portfolio's current state, not one up to an interval old
            bus.on(PortfolioUpdate, self._on_portfolio)

    def _on_portfolio(self, _ev: Any) -> None:
        try:
            self.latest = self.compute()
        except Exception as e:  # counted and logged; the loop tries again
            self.failures += 1
            log.warning("risk metrics failed (#%d): %s: %s", self.failures, type(e).__name__, e)

    def on_bar(self, ev: BarEvent) -> None:
        if not ev.closed:
            return
        d = self.closes.setdefault(ev.symbol, OrderedDict())
        d[ev.ts] = ev.close
        while len(d) > MAX_BARS:
            d.popitem(last=False)

    def exposure(self) -> dict[str, float]:
        """What the account holds of each marked symbol's base currency, at the mark: the
        holdings equity is made of (and the Risk pane's exposure row), not only what TPS19's own
        fills bought, so leverage and VaR describe the account a trader actually risks."""
        pf = self.portfolio
        out: dict[str, float] = {}
        for cur, held in sorted(pf.balances.items()):
            if not held or cur == pf.valuation:
                continue
            # valued as equity values it (through USDT if need be); excluded currencies are not
            v = pf.value_of(cur, held)
            if v is None:
                continue
            out[pf.symbol_for_currency(cur) or cur] = float(v)
        return out

    def _returns(self, symbols: list[str]) -> tuple[dict[str, np.ndarray], float]:
        # bars close once a timeframe; refreshes come every few seconds: reuse the aligned returns
        key = tuple((s, len(d), next(reversed(d))) if (d := self.closes.get(s)) else (s, 0, 0) for s in symbols)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        rets, per_year = self._align(symbols)
        self._cache = (key, rets, per_year)
        return rets, per_year

    def _align(self, symbols: list[str]) -> tuple[dict[str, np.ndarray], float]:
        series = [self.closes.get(s) for s in symbols]
        if not symbols or any(not d for d in series):
            return {s: np.zeros(0) for s in symbols}, 0.0
        common = sorted(set.intersection(*(set(d) for d in series if d is not None)))
        ts = np.asarray(common, dtype=np.int64)
        rets = {s: simple_returns(np.asarray([d[t] for t in common])) for s, d in zip(symbols, series, strict=True)
                if d is not None}
        return rets, bars_per_year(ts)

    def compute(self) -> RiskMetricsEvent:
        eq, unpriced = self.portfolio.equity()
        equity = None if unpriced else float(eq)
        exposure = self.exposure()
        # returns of the symbols whose bars the engine sees (a held currency marked by a ticker
        # poll has none: its exposure counts, its returns cannot)
        rets, per_year = self._returns(sorted(s for s in exposure if s in self.closes))
        rep = report(rets, exposure, equity or 0.0, per_year)
        peak = getattr(self.breakers, "peak", None)
        dd = None
        if equity is not None:
            # the breaker's peak, or the equity itself until the breaker has seen one
            peak = max(peak, eq) if peak is not None else eq
            dd = max(0.0, float((peak - eq) / peak * 100)) if peak > 0 else 0.0
        return RiskMetricsEvent(equity=equity, report=rep, peak_equity=float(peak) if peak is not None else None,
                                drawdown_pct=dd)

    def refresh(self) -> RiskMetricsEvent:
        self.latest = ev = self.compute()
        if self.bus is not None:
            self.bus.publish(ev)
        return ev

    async def _loop(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception as e:  # analytics never stop trading: counted, logged, tried again next round
                self.failures += 1
                log.warning("risk metrics failed (#%d): %s: %s", self.failures, type(e).__name__, e)
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="risk:metrics")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
