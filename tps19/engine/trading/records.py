"""Every field-by-field copy of an order, in one place: the order's state to its bus event, to
its database row, and back. Kept explicit (no reflection) because money moves through them:
a field added to one side must be added here, where the other copies are in sight."""

from __future__ import annotations

from ..storage.models import Order
from .events import OrderUpdate
from .orders import OrderState, OrderStatus, OrderType, Side, TriggerState

# the protective columns, copied as they are (Decimal/str/int or None) between state and row
PROTECTIVE_FIELDS = ("trigger_price", "trailing_pct", "trailing_distance", "activation_price", "high_water", "placement",
                     "triggered_ms", "checked_ms", "oco_group", "parent_id", "stop_loss_price", "take_profit_price",
                     "stop_loss_pct", "take_profit_pct", "trailing_stop_pct")


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
        trigger_price=o.trigger_price,
        trigger_state=o.trigger_state.value if o.trigger_state is not None else None,
        placement=o.placement,
        oco_group=o.oco_group,
        parent_id=o.parent_id,
        trailing_pct=o.trailing_pct,
        trailing_distance=o.trailing_distance,
        activation_price=o.activation_price,
        high_water=o.high_water,
        stop_loss_price=o.stop_loss_price,
        take_profit_price=o.take_profit_price,
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
        trigger_state=o.trigger_state.value if o.trigger_state is not None else None,
        **{f: getattr(o, f) for f in PROTECTIVE_FIELDS},
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
        trigger_state=TriggerState.parse(r.trigger_state) if r.trigger_state is not None else None,
        **{f: getattr(r, f) for f in PROTECTIVE_FIELDS},
    )
