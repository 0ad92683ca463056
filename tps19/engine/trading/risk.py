"""Pre-trade risk: per-order notional cap, daily order count cap, position cap, daily loss
limit, kill switch.

The position cap and the loss limit only ever refuse orders that would add risk: an order that
reduces the position stays allowed, so a trader at the limit can still get out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from ...config import RiskSettings
from .orders import OrderRejected, ValidatedOrder


def utc_day_start_ms(ts: float | None = None) -> int:
    d = datetime.fromtimestamp(ts if ts is not None else time.time(), UTC)
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


class RiskGate:
    def __init__(self, settings: RiskSettings, *, orders_today: int = 0) -> None:
        self.settings = settings
        self.orders_today = orders_today
        self._day = utc_day_start_ms()
        self.killed = False
        self.kill_reason = ""
        self.rejections = 0
        # Set by the broker: signed net position of a symbol, and the portfolio's net P&L
        # (realized + unrealized - fees). Without them the two checks below are skipped.
        self.position_of: Callable[[str], Decimal] | None = None
        self.net_pnl: Callable[[], Decimal] | None = None
        self._pnl_day_start: Decimal | None = None  # net P&L when this UTC day was first seen

    def _roll(self) -> None:
        day = utc_day_start_ms()
        if day != self._day:
            self._day = day
            self.orders_today = 0
            self._pnl_day_start = None

    def set_day_start(self, net_pnl: Decimal) -> None:
        """Restore today's starting net P&L (e.g. from the day's first stored snapshot)."""
        self._roll()
        self._pnl_day_start = net_pnl

    def pnl_today(self) -> Decimal | None:
        """Net P&L since the engine first saw this UTC day (None without a portfolio)."""
        if self.net_pnl is None:
            return None
        self._roll()
        now = self.net_pnl()
        if self._pnl_day_start is None:
            self._pnl_day_start = now
        return now - self._pnl_day_start

    def check(self, v: ValidatedOrder) -> None:
        self._roll()
        if self.killed:
            raise OrderRejected(f"kill switch engaged{': ' + self.kill_reason if self.kill_reason else ''}; release it to trade")
        if v.notional is None:
            raise OrderRejected(f"no price for {v.symbol} to check the order value against the cap")
        cap = self.settings.max_order_notional
        if v.notional > cap:
            raise OrderRejected(f"order value {v.notional:f} exceeds the per-order cap {cap}")
        if self.orders_today >= self.settings.max_daily_orders:
            raise OrderRejected(f"daily order limit reached ({self.settings.max_daily_orders} orders)")
        if self.position_of is None:
            return
        qty = self.position_of(v.symbol)
        after = qty + (v.amount if v.side == "buy" else -v.amount)
        reduces = abs(after) < abs(qty) and (after == 0 or (after > 0) == (qty > 0))
        if reduces:
            return
        pnl = self.pnl_today()
        limit = self.settings.daily_loss_limit
        if pnl is not None and pnl <= -limit:
            raise OrderRejected(f"daily loss limit reached (P&L today {pnl:.2f} <= -{limit}); only orders that reduce a position are allowed")
        px = v.notional / v.amount if v.amount else None
        if px is not None:
            exposure = abs(after) * px
            pcap = self.settings.max_position_notional
            if exposure > pcap:
                raise OrderRejected(f"position after this order would be {exposure:.2f} > the position cap {pcap}")

    def count(self) -> None:
        self._roll()
        self.orders_today += 1
