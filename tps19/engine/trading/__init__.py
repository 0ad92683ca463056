"""Trading: orders, paper and live brokers, portfolio and recovery — the parts of one venue's
order path. Wiring them into a running stack (with the risk level above: breakers, monitor) is
``tps19.engine.assembly``'s job; this face only re-exports.

Public API (all money is ``Decimal``)::

    o = await broker.place(OrderRequest("BTC/USDT", "buy", "limit", Decimal("0.01"), Decimal("50000")))
    o = await broker.place_order("BTC/USDT", "sell", "market", "0.01")   # str/float/Decimal
    await broker.cancel(o.client_order_id)   # -> OrderState | None
    await broker.cancel_all(symbol=None)     # -> number cancelled
    await broker.kill(reason)                # cancel everything, block new orders (persisted)
    broker.release()                         # allow orders again
    broker.open_orders(symbol=None)          # -> [OrderState]
    broker.killed, broker.risk.orders_today, broker.issues
    broker.risk.decide(validated)   # the risk stage every order passes (risk.py, entry.py)
    portfolio.balances / .positions / .marks / .totals() / .equity() / await .snapshot()

``place`` never raises: a refused order comes back ``status == rejected`` with ``reason``
("not sent: ..." when it never left TPS19). Events on the bus (``events.py``): OrderUpdate,
FillEvent, PositionEvent, BalanceDiscrepancy, KillSwitchEvent, TradingIssue, EquitySnapshot.
"""

from __future__ import annotations

from .events import (
    BalanceDiscrepancy,
    EquitySnapshot,
    FillEvent,
    KillSwitchEvent,
    OrderUpdate,
    PositionEvent,
    TradingIssue,
)
from .orders import (
    IllegalTransition,
    OrderRejected,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Side,
    validate_order,
)
from .portfolio import Portfolio
from .protocol import Broker

__all__ = [
    "BalanceDiscrepancy", "Broker", "EquitySnapshot", "FillEvent", "IllegalTransition", "KillSwitchEvent",
    "OrderRejected", "OrderRequest", "OrderState", "OrderStatus", "OrderType", "OrderUpdate",
    "Portfolio", "PositionEvent", "Side", "TradingIssue", "validate_order",
]
