"""The broker as the rest of TPS19 sees it (the desk, the strategy executor, the engine).

Paper and live brokers both satisfy it; nothing outside ``tps19.engine.trading`` should need
more of a broker than this.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from .orders import OrderRequest, OrderState
from .portfolio import Portfolio
from .risk import RiskEngine


class Broker(Protocol):
    mode: str
    risk: RiskEngine  # the risk stage every order passes (day counters, kill switch)
    portfolio: Portfolio  # balances and positions
    issues: dict[str, int]  # trouble reported so far, by kind

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def place(self, req: OrderRequest) -> OrderState:
        """Never raises: a refused order comes back rejected with a reason."""
        ...

    async def place_order(self, symbol: str, side: str, type: str, amount: Decimal | str | float,
                          price: Decimal | str | float | None = None,
                          client_order_id: str | None = None) -> OrderState: ...

    async def cancel(self, client_order_id: str, *, group: bool = True) -> OrderState | None:
        """A leg of an OCO group cancels its group (``group=False``: only the leg)."""
        ...

    async def cancel_all(self, symbol: str | None = None, *, protective: bool = True) -> int: ...

    async def kill(self, reason: str = "kill switch") -> int:
        """Block new orders, then cancel every open entry; protective orders keep working."""
        ...

    def release(self) -> None: ...

    def open_orders(self, symbol: str | None = None, *, protective: bool = True) -> list[OrderState]:
        """Working orders; the protective orders TPS19 holds included unless ``protective=False``."""
        ...

    @property
    def killed(self) -> bool: ...


__all__ = ["Broker"]
