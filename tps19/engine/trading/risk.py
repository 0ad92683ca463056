"""Pre-trade risk: per-order notional cap, daily order count cap, kill switch."""

from __future__ import annotations

import time
from datetime import UTC, datetime

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

    def _roll(self) -> None:
        day = utc_day_start_ms()
        if day != self._day:
            self._day = day
            self.orders_today = 0

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

    def count(self) -> None:
        self._roll()
        self.orders_today += 1
