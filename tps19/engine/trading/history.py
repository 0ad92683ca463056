"""What a trader looks back at, read from the database (so it survives a restart): finished
orders, fills with the P&L each one realized, per-strategy figures, the equity series and a
daily P&L table. Plain async reads; nothing here changes state.

Realized P&L per fill is average-cost, gross of fees, replayed over the symbol's booked fills
in time order, exactly as the portfolio books it (``Portfolio.apply_fill``). A day's P&L is the
change of net P&L (realized + unrealized - fees) between the day's first and last stored
snapshot: the daily loss limit's definition. A snapshot that does not value every holding
(``_unpriced`` in its positions) is never a period's start, a day's open or a chart point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from ..storage import Database
from ..storage.models import Fill, Order, PortfolioSnapshot
from .portfolio import Portfolio

ZERO = Decimal(0)
FINISHED = ("filled", "cancelled", "rejected", "expired", "partially_filled")
STRATEGY_PREFIX = "s19-"  # targets.strategy_prefix: s19-<name>-


def valued(snap: PortfolioSnapshot) -> bool:
    """Whether a snapshot values every holding: one stored before a holding had a price has the
    cash alone as equity, and as a period's start or a day's open it reads as a gain."""
    return not (snap.positions or {}).get("_unpriced")


def strategy_of(client_order_id: str | None) -> str | None:
    """The strategy tag of an order placed by a strategy (``s19-<tag>-...``), else None."""
    if not client_order_id or not client_order_id.startswith(STRATEGY_PREFIX):
        return None
    return client_order_id[len(STRATEGY_PREFIX):].split("-", 1)[0] or None


@dataclass(frozen=True, slots=True)
class OrderRow:
    client_order_id: str
    venue_order_id: str | None
    symbol: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None
    filled: Decimal
    avg_price: Decimal | None
    fee: Decimal
    status: str
    reason: str | None
    created_ms: int
    updated_ms: int
    strategy: str | None


@dataclass(frozen=True, slots=True)
class FillRow:
    fill_id: str
    client_order_id: str | None
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str | None
    liquidity: str | None
    ts: int
    realized_pnl: Decimal  # what this fill realized (average cost, gross of fees)
    fee_quote: Decimal  # the fee in the symbol's quote currency


@dataclass(frozen=True, slots=True)
class StrategyStats:
    strategy: str
    trades: int  # orders that filled (in part or whole)
    wins: int  # closing orders whose realized P&L beat their fees
    losses: int
    win_rate: float | None  # wins / (wins + losses); None before the first closing order
    realized_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal  # realized - fees (+ unrealized at the marks given)
    max_drawdown: Decimal  # largest fall of net P&L from a previous peak, since the first fill
    since_ms: int | None


@dataclass(frozen=True, slots=True)
class DailyPnl:
    day: str  # YYYY-MM-DD, UTC
    start_equity: Decimal
    end_equity: Decimal
    pnl: Decimal  # change of net P&L over the day's stored snapshots


def _order_row(r: Order) -> OrderRow:
    return OrderRow(r.client_order_id, r.venue_order_id, r.symbol, r.side, r.type, r.amount, r.price, r.filled,
                    r.avg_price, r.fee, r.status, r.reason, r.created_ms, r.updated_ms, strategy_of(r.client_order_id))


def realized_fills(fills: Sequence[Any], markets: dict[str, dict[str, Any]] | None = None) -> list[FillRow]:
    """Each fill with the P&L it realized, replayed in time order (oldest first in, same order out)."""
    book = Portfolio(mode="history", markets=markets or {})
    out = []
    for f in fills:
        p = book.position(f.symbol)
        before_r, before_f = p.realized, p.fees
        book.apply_fill(f, balances=False)
        out.append(FillRow(f.fill_id, f.client_order_id, f.symbol, f.side, f.price, f.amount, f.fee, f.fee_currency,
                           f.liquidity, f.ts, p.realized - before_r, p.fees - before_f))
    return out


class TradingHistory:
    def __init__(self, db: Database, mode: str, exchange: str | None = None,
                 markets: dict[str, dict[str, Any]] | None = None) -> None:
        self.db, self.mode, self.exchange, self.markets = db, mode, exchange, markets or {}

    def _orders_where(self, symbol: str | None, statuses: Sequence[str]) -> list[Any]:
        w = [Order.mode == self.mode, col(Order.status).in_(list(statuses))]
        if self.exchange is not None:
            w.append(Order.exchange == self.exchange)
        if symbol is not None:
            w.append(Order.symbol == symbol)
        return w

    def _fills_where(self, symbol: str | None) -> list[Any]:
        w = [Fill.mode == self.mode]
        if self.exchange is not None:
            w.append(Fill.exchange == self.exchange)
        if symbol is not None:
            w.append(Fill.symbol == symbol)
        return w

    async def orders(self, symbol: str | None = None, statuses: Sequence[str] = FINISHED, limit: int = 100,
                     offset: int = 0) -> list[OrderRow]:
        """Orders newest first (by last change), filtered by symbol and status, one page."""
        q = (select(Order).where(*self._orders_where(symbol, statuses))
             .order_by(col(Order.updated_ms).desc(), col(Order.client_order_id)).offset(offset).limit(limit))
        async with self.db.session() as s:
            return [_order_row(r) for r in (await s.execute(q)).scalars()]

    async def count_orders(self, symbol: str | None = None, statuses: Sequence[str] = FINISHED) -> int:
        q = select(func.count()).select_from(Order).where(*self._orders_where(symbol, statuses))
        async with self.db.session() as s:
            return int((await s.execute(q)).scalar_one())

    async def _all_fills(self, symbol: str | None = None) -> list[Fill]:
        q = select(Fill).where(*self._fills_where(symbol)).order_by(col(Fill.ts), col(Fill.id))
        async with self.db.session() as s:
            return list((await s.execute(q)).scalars())

    async def fills(self, symbol: str | None = None, limit: int = 100, offset: int = 0) -> list[FillRow]:
        """Fills newest first, one page, each with the P&L it realized."""
        rows = realized_fills(await self._all_fills(symbol), self.markets)
        rows.reverse()
        return rows[offset:offset + limit]

    async def count_fills(self, symbol: str | None = None) -> int:
        q = select(func.count()).select_from(Fill).where(*self._fills_where(symbol))
        async with self.db.session() as s:
            return int((await s.execute(q)).scalar_one())

    async def strategies(self) -> list[str]:
        """Tags of the strategies that placed orders in this mode."""
        q = select(col(Order.client_order_id)).where(Order.mode == self.mode,
                                                     col(Order.client_order_id).like(STRATEGY_PREFIX + "%"))
        async with self.db.session() as s:
            ids = (await s.execute(q)).scalars()
            return sorted({t for t in (strategy_of(i) for i in ids) if t})

    async def strategy_stats(self, strategy: str, marks: dict[str, Decimal] | None = None) -> StrategyStats:
        """Figures of one strategy (its tag, or its name: ``sma_cross`` -> ``smacross``) since its
        first fill; ``marks`` adds the unrealized P&L of what it still holds."""
        from ..targets import strategy_prefix

        tag = strategy_of(strategy_prefix(strategy)) or strategy
        fills = [f for f in await self._all_fills() if strategy_of(f.client_order_id) == tag]
        rows = realized_fills(fills, self.markets)
        per_order: dict[str, list[FillRow]] = {}
        net, peak, dd = ZERO, ZERO, ZERO
        for r in rows:
            per_order.setdefault(r.client_order_id or r.fill_id, []).append(r)
            net += r.realized_pnl - r.fee_quote
            peak = max(peak, net)
            dd = max(dd, peak - net)
        wins = losses = 0
        for group in per_order.values():
            realized = sum((r.realized_pnl for r in group), ZERO)
            if realized == 0:
                continue  # an opening order: nothing closed yet
            if realized - sum((r.fee_quote for r in group), ZERO) > 0:
                wins += 1
            else:
                losses += 1
        realized = sum((r.realized_pnl for r in rows), ZERO)
        fees = sum((r.fee_quote for r in rows), ZERO)
        unreal = ZERO
        if marks:
            book = Portfolio(mode="history", markets=self.markets)
            for f in fills:
                book.apply_fill(f, balances=False)
            for sym, p in book.positions.items():
                u = p.unrealized(marks.get(sym))
                unreal += u or ZERO
        if unreal:
            dd = max(dd, peak - (net + unreal))
        return StrategyStats(tag, len(per_order), wins, losses, wins / (wins + losses) if wins + losses else None,
                             realized, fees, realized - fees + unreal, dd, rows[0].ts if rows else None)

    async def _snapshots(self, since_ms: int | None) -> list[PortfolioSnapshot]:
        """The stored snapshots that value every holding, oldest first."""
        q = select(PortfolioSnapshot).where(PortfolioSnapshot.mode == self.mode)
        if since_ms is not None:
            q = q.where(PortfolioSnapshot.ts >= since_ms)
        async with self.db.session() as s:
            rows = (await s.execute(q.order_by(col(PortfolioSnapshot.ts), col(PortfolioSnapshot.id)))).scalars()
            return [r for r in rows if valued(r)]

    async def equity_series(self, since_ms: int | None = None, limit: int = 2000) -> list[tuple[int, Decimal]]:
        """(ts, equity) from stored snapshots, oldest first, thinned evenly to at most ``limit``
        points (the last one always kept)."""
        snaps = await self._snapshots(since_ms)
        pts = [(s.ts, s.equity) for s in snaps]
        if len(pts) > limit > 1:
            step = len(pts) / (limit - 1)
            pts = [pts[int(i * step)] for i in range(limit - 1)] + [pts[-1]]
        return pts

    async def daily_pnl(self, days: int = 30) -> list[DailyPnl]:
        """One row per UTC day with snapshots, newest first."""
        by_day: dict[str, list[PortfolioSnapshot]] = {}
        for s in await self._snapshots(None):
            day = datetime.fromtimestamp(s.ts / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
            by_day.setdefault(day, []).append(s)
        out = []
        for day in sorted(by_day, reverse=True)[:days]:
            first, last = by_day[day][0], by_day[day][-1]

            def net(x: PortfolioSnapshot) -> Decimal:
                return x.realized_pnl + x.unrealized_pnl - x.fees
            out.append(DailyPnl(day, first.equity, last.equity, net(last) - net(first)))
        return out


__all__ = ["DailyPnl", "FillRow", "OrderRow", "StrategyStats", "TradingHistory", "realized_fills", "strategy_of",
           "valued"]
