"""Every field-by-field copy of an order, in one place: the order's state to its bus event, to
its database row, and back. Kept explicit (no reflection) because money moves through them:
a field added to one side must be added here, where the other copies are in sight."""

from __future__ import annotations

from ..storage.models import Order
from .events import OrderUpdate
from .orders import OrderState, OrderStatus, OrderType, Side


def order_update(o: OrderState, previous: OrderStatus | None) -> OrderUpdate:
    return OrderUpdate(
        client_order_id=o.client_order_id,
        venue_order_id=o.venue_order_id,
        mode=o.mode,
        symbol=o.symbol,
        side=o.side.value,
        type=o.type.value,
        amount=o.amount,
        price=o.price,
        filled=o.filled,
        avg_price=o.avg_price,
        fee=o.fee,
        status=o.status.value,
        previous_status=previous.value if previous is not None else None,
        reason=o.reason,
        adopted=o.adopted,
        ts=o.updated_ms,
    )


def order_values(o: OrderState) -> dict:
    return dict(
        venue_order_id=o.venue_order_id,
        exchange=o.exchange,
        mode=o.mode,
        symbol=o.symbol,
        side=o.side.value,
        type=o.type.value,
        amount=o.amount,
        price=o.price,
        filled=o.filled,
        avg_price=o.avg_price,
        fee=o.fee,
        status=o.status.value,
        reason=o.reason,
        adopted=o.adopted,
        created_ms=o.created_ms,
        updated_ms=o.updated_ms,
    )


def row_to_state(r: Order) -> OrderState:
    return OrderState(
        client_order_id=r.client_order_id,
        mode=r.mode,
        exchange=r.exchange,
        symbol=r.symbol,
        side=Side.parse(r.side),
        type=OrderType.parse(r.type),
        amount=r.amount,
        price=r.price,
        status=OrderStatus(r.status),
        venue_order_id=r.venue_order_id,
        filled=r.filled,
        avg_price=r.avg_price,
        fee=r.fee,
        reason=r.reason,
        adopted=r.adopted,
        created_ms=r.created_ms,
        updated_ms=r.updated_ms,
    )
