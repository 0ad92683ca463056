"""Pre-trade risk: per-order notional cap, daily order count cap, position cap, daily loss
limit, kill switch.

The risk stage is its own object with explicit inputs: the risk settings, a portfolio view
(signed position per symbol, net P&L) and the validated order (whose value was priced from the
market view by the order entry, ``entry.py``). Every order passes it before a broker sees it;
it holds the day's counters and the kill switch, and knows nothing about brokers.

The position cap and the loss limit only ever refuse orders that would add risk: an order that
reduces the position stays allowed, so a trader at the limit can still get out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from ...config import RiskSettings
from .orders import OrderRejected, ValidatedOrder


def utc_day_start_ms(ts: float | None = None) -> int:
    d = datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


class PortfolioView(Protocol):
    """What risk reads of the book: holdings and P&L, nothing it could change."""

    def position(self, symbol: str) -> Decimal:
        """Signed net position of ``symbol`` in its base currency."""
        ...

    def net_pnl(self) -> Decimal:
        """Realized + unrealized - fees, over the portfolio's lifetime."""
        ...


@dataclass(frozen=True, slots=True)
class Decision:
    """The risk stage's answer: accepted, or refused with one line for the trader."""

    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None


ACCEPT = Decision()


class RiskEngine:
    def __init__(self, settings: RiskSettings, portfolio: PortfolioView | None = None, *,
                 orders_today: int = 0) -> None:
        self.settings = settings
        # without a portfolio view the position cap and the loss limit are skipped
        self.portfolio = portfolio
        self.orders_today = orders_today
        self._day = utc_day_start_ms()
        self.killed = False
        self.kill_reason = ""
        self.rejections = 0
        self._pnl_day_start: Decimal | None = None  # net P&L when this UTC day was first seen

    def _view(self) -> PortfolioView | None:
        return self.portfolio

    def _roll(self) -> None:
        day = utc_day_start_ms()
        if day != self._day:
            self._day = day
            self.orders_today = 0
            self._pnl_day_start = None

    # ---------------------------------------------------------------- kill switch
    def engage(self, reason: str) -> None:
        self.killed = True
        self.kill_reason = reason

    def release(self) -> None:
        self.killed = False
        self.kill_reason = ""

    # ---------------------------------------------------------------- the day
    def set_day_start(self, net_pnl: Decimal) -> None:
        """Restore today's starting net P&L (e.g. from the day's first stored snapshot)."""
        self._roll()
        self._pnl_day_start = net_pnl

    def pnl_today(self) -> Decimal | None:
        """Net P&L since the engine first saw this UTC day (None without a portfolio)."""
        view = self._view()
        if view is None:
            return None
        self._roll()
        now = view.net_pnl()
        if self._pnl_day_start is None:
            self._pnl_day_start = now
        return now - self._pnl_day_start

    def count(self) -> None:
        self._roll()
        self.orders_today += 1

    # ---------------------------------------------------------------- the check
    def decide(self, v: ValidatedOrder) -> Decision:
        self._roll()
        if self.killed:
            return Decision(f"kill switch engaged{': ' + self.kill_reason if self.kill_reason else ''}; release it to trade")
        if v.notional is None:
            return Decision(f"no price for {v.symbol} to check the order value against the cap")
        cap = self.settings.max_order_notional
        if v.notional > cap:
            return Decision(f"order value {v.notional:f} exceeds the per-order cap {cap}")
        if self.orders_today >= self.settings.max_daily_orders:
            return Decision(f"daily order limit reached ({self.settings.max_daily_orders} orders)")
        view = self._view()
        if view is None:
            return ACCEPT
        qty = view.position(v.symbol)
        after = qty + (v.amount if v.side == "buy" else -v.amount)
        reduces = abs(after) < abs(qty) and (after == 0 or (after > 0) == (qty > 0))
        if reduces:
            return ACCEPT
        pnl = self.pnl_today()
        limit = self.settings.daily_loss_limit
        if pnl is not None and pnl <= -limit:
            return Decision(f"daily loss limit reached (P&L today {pnl:.2f} <= -{limit}); only orders that reduce a position are allowed")
        px = v.notional / v.amount if v.amount else None
        if px is not None:
            exposure = abs(after) * px
            pcap = self.settings.max_position_notional
            if exposure > pcap:
                return Decision(f"position after this order would be {exposure:.2f} > the position cap {pcap}")
        return ACCEPT

    def check(self, v: ValidatedOrder) -> None:
        """``decide`` for callers that want an exception: raises OrderRejected with the reason."""
        d = self.decide(v)
        if d.reason is not None:
            raise OrderRejected(d.reason)


class _Callables:
    def __init__(self, position_of: Callable[[str], Decimal], net_pnl: Callable[[], Decimal]) -> None:
        self.position = position_of
        self.net_pnl = net_pnl


class RiskGate(RiskEngine):
    """The risk engine over two plain functions instead of a portfolio (scripts, tests):
    set ``position_of`` and ``net_pnl``; until both are set the position cap and the loss limit
    are skipped."""

    def __init__(self, settings: RiskSettings, *, orders_today: int = 0) -> None:
        super().__init__(settings, orders_today=orders_today)
        self.position_of: Callable[[str], Decimal] | None = None
        self.net_pnl: Callable[[], Decimal] | None = None

    def _view(self) -> PortfolioView | None:
        if self.position_of is None or self.net_pnl is None:
            return None
        return _Callables(self.position_of, self.net_pnl)
