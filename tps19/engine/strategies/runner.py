"""Run a strategy live (paper or real) on the EventBus.

The runner takes closed ``BarEvent``s from the bus, feeds them to the strategy's incremental
path (one strategy instance per symbol), and for every Signal: publishes a ``SignalEvent`` on
the bus, stores it in the ``TradingSignal`` table (if a Database was given) and hands the
target to the order sink (if any). The broker lives elsewhere; the sink only has to provide::

    async def submit_target(symbol: str, target_fraction: float, signal: Signal) -> None

(or be such a function itself, sync or async).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..bus import EventBus
from ..events import BarEvent
from .base import PortfolioView, Strategy
from .signals import Signal, SignalEvent

if TYPE_CHECKING:
    from ..ml.decisions import DecisionLog
    from ..storage import Database

log = logging.getLogger(__name__)


@runtime_checkable
class OrderSink(Protocol):
    async def submit_target(self, symbol: str, target_fraction: float, signal: Signal) -> None: ...


TargetFn = Callable[[str, float, Signal], Awaitable[None] | None]


class StrategyRunner:
    def __init__(
        self,
        bus: EventBus,
        strategy: Strategy,
        *,
        symbols: Iterable[str] | None = None,
        timeframe: str | None = None,
        db: Database | None = None,
        order_sink: OrderSink | TargetFn | None = None,
        portfolio: PortfolioView | None = None,
        shadows: Iterable[Strategy] = (),
        books: Mapping[str, Any] | None = None,
    ) -> None:
        self.bus = bus
        self.prototype = strategy
        self.symbols = set(symbols) if symbols else None
        self.timeframe = timeframe
        self.db = db
        self.order_sink = order_sink
        self.portfolio = portfolio
        self.strategies: dict[str, Strategy] = {}
        self.last_ts: dict[str, int] = {}
        self.signals: list[SignalEvent] = []
        self.bars_seen = 0
        self.errors = 0
        # Models in shadow predict on the same bars and have their decisions stored; no signal, no order.
        self.shadows = list(shadows)
        self.shadow_strategies: dict[str, list[Strategy]] = {}
        self.books = books  # symbol -> live L2 book, for the book features of a decision
        # called with every handled bar after its decisions are stored (the model lifecycle)
        self.after_bar: list[Callable[[BarEvent], Awaitable[None]]] = []
        self.decisions: DecisionLog | None = None
        if db is not None and any(hasattr(s, "last_prediction") for s in [strategy, *self.shadows]):
            from ..ml.decisions import DecisionLog

            self.decisions = DecisionLog(db)
        self._sub = bus.subscribe(BarEvent, coalesce=None)
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def strategy_for(self, symbol: str) -> Strategy:
        st = self.strategies.get(symbol)
        if st is None:
            st = self.prototype.clone()
            self.strategies[symbol] = st
        return st

    def shadows_for(self, symbol: str) -> list[Strategy]:
        sh = self.shadow_strategies.get(symbol)
        if sh is None:
            sh = self.shadow_strategies[symbol] = [s.clone() for s in self.shadows]
        return sh

    def add_shadow(self, strategy: Strategy, warm: Mapping[str, Iterable[BarEvent]] | None = None) -> None:
        """Run ``strategy`` in shadow from the next bar, its per-symbol instances first fed ``warm``."""
        self.shadows.append(strategy)
        for symbol, sh in self.shadow_strategies.items():
            inst = strategy.clone()
            for bar in (warm or {}).get(symbol, ()):
                inst.on_bar(bar)
            sh.append(inst)

    def drop_shadow(self, strategy: Strategy) -> None:
        i = self.shadows.index(strategy)
        self.shadows.pop(i)
        for sh in self.shadow_strategies.values():
            sh.pop(i)

    def promote(self, shadow: Strategy) -> None:
        """The shadow ``shadow`` becomes the strategy: its warm per-symbol instances trade from the
        next bar (their targets reach the order sink at their next signal); the old one stops."""
        i = self.shadows.index(shadow)
        self.shadows.pop(i)
        for symbol, sh in self.shadow_strategies.items():
            self.strategies[symbol] = sh.pop(i)
        self.prototype = shadow

    def warm_up(self, symbol: str, bar: BarEvent) -> Signal | None:
        """Feed a history bar to the strategy and its shadows: no decision stored, nothing traded."""
        for sh in self.shadows_for(symbol):
            sh.on_bar(bar)
        return self.strategy_for(symbol).on_bar(bar)

    def _wants(self, bar: BarEvent) -> bool:
        if not bar.closed:
            return False
        if self.symbols is not None and bar.symbol not in self.symbols:
            return False
        if self.timeframe is not None and bar.timeframe != self.timeframe:
            return False
        last = self.last_ts.get(bar.symbol)
        return last is None or bar.ts > last  # duplicates and stale bars are ignored

    async def handle(self, bar: BarEvent) -> SignalEvent | None:
        """Process one bar (the loop calls this; tests may too)."""
        if not self._wants(bar):
            return None
        self.last_ts[bar.symbol] = bar.ts
        self.bars_seen += 1
        strategy = self.strategy_for(bar.symbol)
        signal = strategy.on_bar(bar, self.portfolio)
        for sh in self.shadows_for(bar.symbol):
            sh.on_bar(bar, self.portfolio)
        self._publish_predictions(bar, strategy)
        if self.decisions is not None:
            await self._decide(bar, strategy)
        for hook in self.after_bar:
            try:
                await hook(bar)
            except Exception:  # the lifecycle must not stop trading decisions
                self.errors += 1
                log.exception("after-bar hook failed")
        if signal is None:
            retry = getattr(self.order_sink, "retry_pending", None)
            if retry is not None and getattr(self.order_sink, "pending", None):
                try:
                    await retry(bar.symbol)  # a target whose order failed for a passing reason
                except Exception:
                    self.errors += 1
                    log.exception("re-evaluating a pending target failed")
            return None
        ev = SignalEvent(
            strategy=self.prototype.name,
            symbol=bar.symbol,
            timeframe=bar.timeframe,
            ts=bar.ts,
            signal=signal,
            params=self.prototype.param_dict(),
        )
        self.signals.append(ev)
        self.bus.publish(ev)
        if self.db is not None:
            try:
                await self._persist(ev)
            except Exception:  # storage trouble must not stop trading decisions
                self.errors += 1
                log.exception("could not store signal")
        if self.order_sink is not None:
            try:
                await self._submit(ev)
            except Exception:
                self.errors += 1
                log.exception("order sink failed")
        return ev

    def _publish_predictions(self, bar: BarEvent, strategy: Strategy) -> None:
        """Each model's prediction on this bar as a DecisionEvent (a shadow's too: it trades nothing,
        but the trader sees what it would hold)."""
        from .signals import DecisionEvent

        for st, shadow in [(strategy, False), *((s, True) for s in self.shadows_for(bar.symbol))]:
            pred = getattr(st, "last_prediction", None)
            if pred is not None and pred.ts == bar.ts:
                self.bus.publish(DecisionEvent(pred.model_id, bar.symbol, bar.timeframe, bar.ts,
                                               float(pred.probability), str(pred.action), float(pred.target), shadow))

    async def _decide(self, bar: BarEvent, strategy: Strategy) -> None:
        """Store this bar's predictions (strategy and shadows) and join outcomes now due."""
        assert self.decisions is not None
        from ..ml.decisions import book_summary

        try:
            book = book_summary(self.books.get(bar.symbol) if self.books else None)
            await self.decisions.resolve(bar.symbol, bar.ts, bar.close)
            for st, shadow in [(strategy, False), *((s, True) for s in self.shadows_for(bar.symbol))]:
                pred = getattr(st, "last_prediction", None)
                if pred is not None:
                    params = st.param_dict()
                    await self.decisions.record(bar.symbol, bar.timeframe, pred, shadow=shadow, book=book,
                                                enter=params.get("enter"), exit_=params.get("exit"))
        except Exception:  # storage trouble must not stop trading decisions
            self.errors += 1
            log.exception("could not store AI decision")

    async def _persist(self, ev: SignalEvent) -> None:
        from ..storage import TradingSignal

        assert self.db is not None
        async with self.db.session() as s:
            s.add(
                TradingSignal(
                    ts=ev.ts,
                    strategy=ev.strategy,
                    symbol=ev.symbol,
                    direction=ev.signal.direction,
                    strength=ev.signal.strength,
                    reason=ev.signal.reason,
                    params={**ev.params, "target": ev.signal.target, "timeframe": ev.timeframe},
                )
            )
            await s.commit()

    async def _submit(self, ev: SignalEvent) -> None:
        sink = self.order_sink
        if sink is None:
            return
        fn: TargetFn = sink.submit_target if isinstance(sink, OrderSink) else sink
        res = fn(ev.symbol, ev.signal.target, ev.signal)
        if inspect.isawaitable(res):
            await res

    async def run(self) -> None:
        while not self._stop.is_set():
            for event in await self._sub.wait(timeout=0.5):
                try:
                    await self.handle(event)
                except Exception:  # one bad bar (a model that cannot predict) must not end the runner
                    self.errors += 1
                    log.exception("strategy failed on a bar")

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=f"strategy-{self.prototype.name}")
        return self._task

    async def drain(self) -> None:
        """Process everything already queued (useful in tests and at shutdown)."""
        for event in self._sub.drain():
            await self.handle(event)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.drain()
        self._sub.close()
