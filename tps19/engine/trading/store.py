"""Persistence of orders, order events, fills and balances: one transaction per change.

A change to an order (its status, fills and the balances they move) is committed atomically,
so after a crash the database holds either all of it or none of it. Fills are unique per
(exchange, fill_id): booking the same venue trade twice is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, or_
from sqlmodel import col, select

from ..events import now_ms
from ..storage import Database, upsert
from ..storage.models import (
    Fill,
    KillSwitchState,
    Order,
    OrderEvent,
    PaperOrderState,
    PositionAdjustment,
    TradingBalance,
)
from .events import FillEvent
from .orders import WORKING, OrderState, OrderStatus
from .records import order_values, row_to_state


ORDERS = Order.__table__  # type: ignore[attr-defined]
FILLS = Fill.__table__  # type: ignore[attr-defined]
EVENTS = OrderEvent.__table__  # type: ignore[attr-defined]
QUEUE = PaperOrderState.__table__  # type: ignore[attr-defined]
ADJ = PositionAdjustment.__table__  # type: ignore[attr-defined]


@dataclass(slots=True, frozen=True)
class FillRecord:
    fill_id: str
    client_order_id: str | None
    venue_order_id: str | None
    symbol: str
    side: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str | None
    liquidity: str | None
    ts: int

    def to_event(self, mode: str) -> FillEvent:
        return FillEvent(
            fill_id=self.fill_id,
            client_order_id=self.client_order_id,
            venue_order_id=self.venue_order_id,
            mode=mode,
            symbol=self.symbol,
            side=self.side,
            price=self.price,
            amount=self.amount,
            fee=self.fee,
            fee_currency=self.fee_currency,
            liquidity=self.liquidity,
            ts=self.ts,
        )


class TradingStore:
    def __init__(self, db: Database, *, mode: str, exchange: str) -> None:
        self.db = db
        self.mode = mode
        self.exchange = exchange
        self.writes = 0

    # ---------------------------------------------------------------- writes
    async def save(
        self,
        order: OrderState | None,
        *,
        insert: bool = False,
        from_status: OrderStatus | None = None,
        to_status: OrderStatus | None = None,
        detail: str | None = None,
        fills: Iterable[FillRecord] = (),
        balances: dict[str, Decimal] | None = None,
        queue_ahead: Decimal | None = None,
        drop_queue: bool = False,
        adjustments: Iterable[PositionAdjustment] = (),
        prior_events: Iterable[tuple[OrderStatus | None, OrderStatus, str | None]] = (),
    ) -> list[FillRecord]:
        """Write one change atomically; returns the fills that were new (not booked before).

        Core statements in one transaction run in a single greenlet hop (``run_sync``): the ORM
        unit of work costs several times more per order."""
        assert self.db.engine is not None, "database is not open"
        async with self.db.engine.begin() as conn:
            new_fills = await conn.run_sync(
                self._save_sync, order, insert, from_status, to_status, detail, list(fills), balances,
                queue_ahead, drop_queue, list(adjustments), list(prior_events),
            )
        self.writes += 1
        return new_fills

    def _save_sync(self, conn, order, insert, from_status, to_status, detail, fills, balances,  # type: ignore[no-untyped-def]
                   queue_ahead, drop_queue, adjustments, prior_events) -> list[FillRecord]:
        ts = now_ms()
        new_fills: list[FillRecord] = []
        if fills:
            ids = [f.fill_id for f in fills]
            known = set(conn.execute(
                select(col(Fill.fill_id)).where(Fill.exchange == self.exchange, col(Fill.fill_id).in_(ids))
            ).scalars())
            rows = []
            for f in fills:
                if f.fill_id in known:
                    continue
                known.add(f.fill_id)
                new_fills.append(f)
                rows.append(dict(exchange=self.exchange, mode=self.mode, fill_id=f.fill_id,
                                 client_order_id=f.client_order_id, symbol=f.symbol, side=f.side, price=f.price,
                                 amount=f.amount, fee=f.fee, fee_currency=f.fee_currency, liquidity=f.liquidity,
                                 ts=f.ts))
            if rows:
                conn.execute(FILLS.insert(), rows)
        if order is not None:
            if insert:
                conn.execute(ORDERS.insert().values(client_order_id=order.client_order_id, **order_values(order)))
            else:
                conn.execute(ORDERS.update().where(ORDERS.c.client_order_id == order.client_order_id)
                             .values(**order_values(order)))
            evs = [dict(client_order_id=order.client_order_id, ts=ts, detail=det,
                        from_status=fs.value if fs is not None else None, to_status=t.value)
                   for fs, t, det in prior_events]
            if to_status is not None:
                evs.append(dict(client_order_id=order.client_order_id, ts=ts, detail=detail,
                                from_status=from_status.value if from_status is not None else None,
                                to_status=to_status.value))
            for ev in evs:  # one by one: ids keep their order
                conn.execute(EVENTS.insert().values(**ev))
            if queue_ahead is not None:
                conn.execute(upsert.insert(conn, PaperOrderState)
                             .values(client_order_id=order.client_order_id, queue_ahead=queue_ahead)
                             .on_conflict_do_update(index_elements=["client_order_id"], set_={"queue_ahead": queue_ahead}))
            if drop_queue:
                conn.execute(QUEUE.delete().where(QUEUE.c.client_order_id == order.client_order_id))
        if balances:
            for cur, amt in balances.items():
                conn.execute(upsert.insert(conn, TradingBalance)
                             .values(mode=self.mode, exchange=self.exchange, currency=cur, amount=amt, updated_ms=ts)
                             .on_conflict_do_update(index_elements=["mode", "exchange", "currency"],
                                                    set_={"amount": amt, "updated_ms": ts}))
        for adj in adjustments:
            conn.execute(ADJ.insert().values(**{c.name: getattr(adj, c.name) for c in ADJ.columns if c.name != "id"}))
        return new_fills

    async def insert_orders(self, orders: Iterable[OrderState], *, detail: str | None) -> None:
        """New orders (an OCO's legs) and their first event, in one transaction: all or none."""
        rows = list(orders)
        assert self.db.engine is not None, "database is not open"

        def run(conn) -> None:  # type: ignore[no-untyped-def]
            ts = now_ms()
            for o in rows:
                conn.execute(ORDERS.insert().values(client_order_id=o.client_order_id, **order_values(o)))
                conn.execute(EVENTS.insert().values(client_order_id=o.client_order_id, ts=ts, detail=detail,
                                                    from_status=None, to_status=o.status.value))

        async with self.db.engine.begin() as conn:
            await conn.run_sync(run)
        self.writes += 1

    async def update_orders(self, orders: Iterable[OrderState]) -> None:
        """Rows only, no event (a trailing stop's mark, when a trigger was last checked)."""
        rows = list(orders)
        assert self.db.engine is not None, "database is not open"

        def run(conn) -> None:  # type: ignore[no-untyped-def]
            for o in rows:
                conn.execute(ORDERS.update().where(ORDERS.c.client_order_id == o.client_order_id)
                             .values(**order_values(o)))

        async with self.db.engine.begin() as conn:
            await conn.run_sync(run)
        self.writes += 1

    # ---------------------------------------------------------------- reads
    async def working_orders(self) -> list[OrderState]:
        """Working orders the venue holds or may hold (not those TPS19's emulator holds)."""
        return [o for o in await self._working() if not o.held]

    async def held_orders(self) -> list[OrderState]:
        """Protective orders TPS19 holds: armed, or triggered and not yet at the venue."""
        return [o for o in await self._working() if o.held]

    async def _working(self) -> list[OrderState]:
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(Order).where(
                        Order.mode == self.mode,
                        Order.exchange == self.exchange,
                        col(Order.status).in_([st.value for st in WORKING]),
                    )
                )
            ).scalars()
            return [row_to_state(r) for r in rows]

    async def group(self, oco_group: str) -> list[OrderState]:
        """Every leg of an OCO group, finished or not, oldest first."""
        async with self.db.session() as s:
            rows = (await s.execute(select(Order).where(Order.oco_group == oco_group)
                                    .order_by(col(Order.created_ms), col(Order.client_order_id)))).scalars()
            return [row_to_state(r) for r in rows]

    async def brackets_to_check(self) -> list[OrderState]:
        """Bracket entries that filled something: their protection is checked at start."""
        async with self.db.session() as s:
            rows = (await s.execute(select(Order).where(
                Order.mode == self.mode, Order.exchange == self.exchange, col(Order.oco_group).is_not(None),
                col(Order.trigger_state).is_(None)))).scalars()
            states = [row_to_state(r) for r in rows]
            return [o for o in states if o.is_bracket and o.filled > 0]

    async def order(self, client_order_id: str) -> OrderState | None:
        async with self.db.session() as s:
            r = await s.get(Order, client_order_id)
            return row_to_state(r) if r is not None else None

    async def order_by_venue_id(self, venue_order_id: str) -> OrderState | None:
        async with self.db.session() as s:
            r = (
                await s.execute(
                    select(Order).where(Order.exchange == self.exchange, Order.venue_order_id == venue_order_id)
                )
            ).scalars().first()
            return row_to_state(r) if r is not None else None

    async def fills(self) -> list[Fill]:
        async with self.db.session() as s:
            return list(
                (
                    await s.execute(
                        select(Fill)
                        .where(Fill.mode == self.mode, Fill.exchange == self.exchange)
                        .order_by(col(Fill.ts), col(Fill.id))
                    )
                ).scalars()
            )

    async def fills_since(self, ts_ms: int) -> list[Fill]:
        """This venue's fills in this mode stamped at or after ``ts_ms`` (oldest first)."""
        async with self.db.session() as s:
            return list(
                (
                    await s.execute(
                        select(Fill)
                        .where(Fill.mode == self.mode, Fill.exchange == self.exchange, Fill.ts >= ts_ms)
                        .order_by(col(Fill.ts), col(Fill.id))
                    )
                ).scalars()
            )

    async def fill_ids(self) -> set[str]:
        async with self.db.session() as s:
            return set(
                (await s.execute(select(col(Fill.fill_id)).where(Fill.exchange == self.exchange))).scalars()
            )

    async def fills_for(self, client_order_id: str) -> list[Fill]:
        async with self.db.session() as s:
            return list(
                (await s.execute(select(Fill).where(Fill.client_order_id == client_order_id))).scalars()
            )

    async def balances(self) -> dict[str, Decimal]:
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(TradingBalance).where(
                        TradingBalance.mode == self.mode, TradingBalance.exchange == self.exchange
                    )
                )
            ).scalars()
            return {r.currency: r.amount for r in rows}

    async def adjustments(self) -> list[PositionAdjustment]:
        async with self.db.session() as s:
            return list(
                (
                    await s.execute(
                        select(PositionAdjustment)
                        .where(PositionAdjustment.mode == self.mode, PositionAdjustment.exchange == self.exchange)
                        .order_by(col(PositionAdjustment.ts), col(PositionAdjustment.id))
                    )
                ).scalars()
            )

    async def queue_states(self) -> dict[str, Decimal]:
        async with self.db.session() as s:
            return {r.client_order_id: r.queue_ahead for r in (await s.execute(select(PaperOrderState))).scalars()}

    async def orders_since(self, ts_ms: int) -> int:
        async with self.db.session() as s:
            return int(
                (
                    await s.execute(
                        select(func.count()).select_from(Order).where(
                            Order.mode == self.mode,
                            Order.exchange == self.exchange,
                            Order.created_ms >= ts_ms,
                            Order.adopted == False,  # noqa: E712
                            or_(col(Order.reason).is_(None), ~col(Order.reason).like("not sent: %")),
                        )
                    )
                ).scalar_one()
            )

    async def kill_state(self) -> tuple[bool, str]:
        async with self.db.session() as s:
            r = await s.get(KillSwitchState, (self.mode, self.exchange))
            return (bool(r.engaged), r.reason) if r is not None else (False, "")

    async def set_kill_state(self, engaged: bool, reason: str) -> None:
        assert self.db.engine is not None
        async with self.db.engine.begin() as conn:
            await conn.execute(upsert.insert(conn, KillSwitchState)
                               .values(mode=self.mode, exchange=self.exchange, engaged=engaged, reason=reason, ts=now_ms())
                               .on_conflict_do_update(index_elements=["mode", "exchange"],
                                                      set_={"engaged": engaged, "reason": reason, "ts": now_ms()}))
