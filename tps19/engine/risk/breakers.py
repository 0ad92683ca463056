"""Circuit breakers: the daily loss limit and the max drawdown from peak equity.

Crossing one engages the kill switch with the reason, prefixed ``circuit breaker: `` so the risk
stage refuses only risk-adding orders (exits pass) and the halt, stored in the ``kill_switch``
table, comes back after a restart until the trader releases it. Optionally the breaker also
cancels every open order (``TPS19_RISK__BREAKER_CANCEL_ORDERS``) and sells every holding at
market (``TPS19_RISK__BREAKER_FLATTEN``).

Peak equity starts from the largest stored portfolio snapshot since the kill switch last changed
(so a release starts a fresh peak), then follows the live equity. When the trader releases a
breaker's halt, the peak restarts at the current equity and the day's loss counts from now:
the next trip needs a fresh drawdown or a fresh day's loss.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ...config import RiskSettings
from ..trading.events import KillSwitchEvent
from ..trading.risk import BREAKER

if TYPE_CHECKING:
    from ..trading import Portfolio
    from ..trading.base import BaseBroker

log = logging.getLogger(__name__)
ZERO = Decimal(0)
HUNDRED = Decimal(100)


def drawdown_pct(equity: Decimal, peak: Decimal) -> Decimal:
    """How far ``equity`` is below ``peak``, in % of the peak (0 at or above it)."""
    return max(ZERO, (peak - equity) / peak * HUNDRED) if peak > 0 else ZERO


def breaker_reason(settings: RiskSettings, *, pnl_today: Decimal | None, equity: Decimal | None,
                   peak: Decimal | None) -> str | None:
    """Which breaker the figures trip (None: neither). A breaker trips AT its limit."""
    if equity is not None and peak is not None and peak > 0:
        dd = drawdown_pct(equity, peak)
        if dd >= settings.max_drawdown_pct:
            return (f"max drawdown {settings.max_drawdown_pct}% reached (equity {equity:.2f} is {dd:.2f}% "
                    f"below its peak {peak:.2f})")
    if pnl_today is not None and pnl_today <= -settings.daily_loss_limit:
        return f"daily loss limit {settings.daily_loss_limit} reached (P&L today {pnl_today:.2f})"
    return None


class BreakerWatch:
    """Watches one trading stack's equity and day P&L; trips the breakers."""

    def __init__(self, broker: BaseBroker, portfolio: Portfolio, settings: RiskSettings, *, interval_s: float = 1.0) -> None:
        self.broker = broker
        self.portfolio = portfolio
        self.settings = settings
        self.interval_s = interval_s
        self.peak: Decimal | None = None
        self.trips = 0
        self._was_halted = False
        self._task: asyncio.Task[None] | None = None

    def equity(self) -> Decimal | None:
        eq, unpriced = self.portfolio.equity()
        return None if unpriced else eq  # a holding without a price would fake a drawdown

    def _follow_release(self, equity: Decimal | None) -> None:
        risk = self.broker.risk
        halted = risk.halted_by_breaker
        if self._was_halted and not risk.killed:  # the trader released the halt
            self.peak = equity
            net = self.portfolio.totals()["net_pnl"]
            risk.set_day_start(net)
        self._was_halted = halted

    def evaluate(self) -> str | None:
        """Update the peak and say which breaker the current figures trip (None while halted)."""
        equity = self.equity()
        self._follow_release(equity)
        if equity is not None and (self.peak is None or equity > self.peak):
            self.peak = equity
        if self.broker.risk.killed:
            return None
        return breaker_reason(self.settings, pnl_today=self.broker.risk.pnl_today(), equity=equity, peak=self.peak)

    async def check(self) -> str | None:
        """Evaluate and, if a breaker trips, halt (and cancel / flatten as set). Returns the reason."""
        reason = self.evaluate()
        if reason is not None:
            await self.trip(reason)
        return reason

    async def trip(self, reason: str) -> None:
        self.trips += 1
        full = BREAKER + reason
        log.warning("%s", full)
        b = self.broker
        if self.settings.breaker_cancel_orders:
            await b.kill(full)  # engage, persist, cancel every open entry (protection stays), publish
        else:
            b.risk.engage(full)
            try:
                await b.store.set_kill_state(True, full)
            except Exception as e:  # the in-memory halt holds regardless
                b.report("db", f"breaker halt not persisted: {e}")
            b.publish(KillSwitchEvent(True, detail=full))
        self._was_halted = True
        if self.settings.breaker_flatten:
            await self.flatten()

    async def flatten(self) -> list[Any]:
        """Sell every free holding that has a market in the valuation currency (exits pass a halt)."""
        from ..trading.entry import locked_balances

        pf = self.portfolio
        locked = locked_balances(self.broker.open_orders(), pf.markets)
        placed = []
        for cur, amt in sorted(pf.balances.items()):
            free = amt - locked.get(cur, ZERO)
            symbol = f"{cur}/{pf.valuation}"
            if cur == pf.valuation or free <= 0 or symbol not in pf.markets:
                continue
            placed.append(await self.broker.place_order(symbol, "sell", "market", free))
            # what protected the holding has nothing left to protect
            await self.broker.cancel_all(symbol, protective=True)
        return placed

    async def seed_peak(self) -> None:
        """Peak equity from the snapshots stored since the kill switch last changed."""
        db = self.portfolio.db
        if db is None:
            return
        from sqlmodel import col, select

        from ..storage.models import KillSwitchState, PortfolioSnapshot

        store = self.broker.store
        async with db.session() as s:
            ks = await s.get(KillSwitchState, (store.mode, store.exchange))
            since = ks.ts if ks is not None else 0
            # equity is stored as text: SQL's max() would compare it as text, so Python takes the max
            q = select(col(PortfolioSnapshot.equity)).where(PortfolioSnapshot.mode == self.portfolio.mode,
                                                       col(PortfolioSnapshot.ts) >= since)
            stored = (await s.execute(q)).scalars().all()
        if stored:
            self.peak = max(max(stored), self.peak or ZERO)
        self._was_halted = self.broker.risk.halted_by_breaker

    async def _loop(self) -> None:
        while True:
            try:
                await self.check()
            except Exception as e:  # reported, counted, survived: the watch goes on
                self.broker.report("breaker", f"circuit breaker check failed: {type(e).__name__}: {e}")
            await asyncio.sleep(self.interval_s)

    async def start(self) -> None:
        await self.seed_peak()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="risk:breakers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
