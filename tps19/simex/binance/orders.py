"""Binance's view of the shared matching engine's orders: integer order ids, client order ids,
Binance statuses, stop orders waiting for their trigger, and OCO order lists.

A LIMIT / LIMIT_MAKER / MARKET order goes to the matching engine at once. A STOP_LOSS(_LIMIT) or
TAKE_PROFIT(_LIMIT) order waits here (status NEW, not working, its funds held) until the last
trade price reaches its stop price, then goes to the engine as a MARKET or LIMIT order under the
same Binance order id. The two legs of an OCO list cancel each other: a fill of one leg, or the
trigger of a stop leg, expires the other.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal

from ..engine import ZERO, Account, EngineError, MatchingEngine, Order
from ..instruments import Instrument

TRIGGER_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
LIMIT_TYPES = ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")


@dataclass(eq=False)
class BnOrder:
    id: int
    inst: Instrument
    account: Account
    client_id: str
    side: str  # BUY / SELL
    type: str  # a Binance order type
    tif: str | None
    qty: int  # lots (0 for a quoteOrderQty market buy until it fills)
    price: int | None
    stop: int | None
    quote_qty: Decimal | None
    time: int
    list_id: int = -1
    engine: Order | None = None
    own_status: str = "NEW"  # while no engine order exists: NEW (waiting for the trigger), CANCELED, EXPIRED
    update_time: int = 0
    hold: Decimal = ZERO  # held while waiting for the trigger
    working_time: int = -1
    canceled_by_user: bool = False

    @property
    def status(self) -> str:
        o = self.engine
        if o is None:
            return self.own_status
        if o.status == "ACTIVE":
            return "PARTIALLY_FILLED" if o.filled else "NEW"
        if o.status == "FILLED":
            return "FILLED"
        if o.status == "CANCELED":
            return "CANCELED" if self.canceled_by_user else "EXPIRED"
        return "EXPIRED"  # REJECTED in the engine (never reached: LIMIT_MAKER crossing is refused before)

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def waiting(self) -> bool:
        return self.engine is None and self.own_status == "NEW"

    @property
    def filled(self) -> int:
        return self.engine.filled if self.engine is not None else 0

    @property
    def cum_quote(self) -> Decimal:
        return self.engine.cum_value if self.engine is not None else ZERO

    @property
    def last_update(self) -> int:
        return max(self.update_time, self.engine.update_time if self.engine is not None else 0)


@dataclass(eq=False)
class OrderList:
    id: int
    client_id: str
    inst: Instrument
    account: Account
    legs: list[BnOrder]
    time: int
    done: bool = False


@dataclass
class BinanceBook:
    """Every account order the Binance dialect has accepted, by its ids."""

    engine: MatchingEngine
    orders: dict[int, BnOrder] = field(default_factory=dict)
    by_engine: dict[str, BnOrder] = field(default_factory=dict)
    by_client: dict[tuple[str, str], BnOrder] = field(default_factory=dict)  # (api key, client id)
    lists: dict[int, OrderList] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1_000_001))
    _list_ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        return next(self._ids)

    def next_list_id(self) -> int:
        return next(self._list_ids)

    def add(self, bn: BnOrder) -> None:
        self.orders[bn.id] = bn
        self.by_client[(bn.account.api_key, bn.client_id)] = bn
        if bn.engine is not None:
            self.by_engine[bn.engine.id] = bn

    def of_account(self, acct: Account) -> list[BnOrder]:
        return [o for o in self.orders.values() if o.account is acct]

    def waiting(self, symbol: str) -> list[BnOrder]:
        return [o for o in self.orders.values() if o.waiting and o.inst.symbol == symbol]

    # ---- stops -------------------------------------------------------------------------
    @staticmethod
    def triggers_at(bn: BnOrder, last: int) -> bool:
        assert bn.stop is not None
        stop_loss = bn.type.startswith("STOP_LOSS")
        if bn.side == "SELL":
            return last <= bn.stop if stop_loss else last >= bn.stop
        return last >= bn.stop if stop_loss else last <= bn.stop

    def hold_for_trigger(self, bn: BnOrder) -> Decimal:
        """What a waiting stop order reserves: the base to sell, or the quote to buy at its
        limit (market stops: at the stop price)."""
        inst = bn.inst
        if bn.side == "SELL":
            return inst.qty(bn.qty)
        ticks = bn.price if bn.price is not None else bn.stop
        assert ticks is not None
        return inst.price(ticks) * inst.qty(bn.qty)

    def place_hold(self, bn: BnOrder) -> None:
        ccy = bn.inst.base if bn.side == "SELL" else bn.inst.quote
        bn.hold = self.hold_for_trigger(bn)
        bn.account.hold(ccy, bn.hold)

    def release_hold(self, bn: BnOrder) -> None:
        if bn.hold:
            bn.account.release(bn.inst.base if bn.side == "SELL" else bn.inst.quote, bn.hold)
            bn.hold = ZERO

    def fire(self, bn: BnOrder, now: int) -> None:
        """The stop price was reached: expire the OCO siblings, then send the order to the engine."""
        self.release_hold(bn)
        self.expire_siblings(bn, now)
        bn.working_time = now
        bn.update_time = now
        order_type = "LIMIT" if bn.type in LIMIT_TYPES else "MARKET"
        try:
            o = self.engine.new_order(bn.account, bn.inst.symbol, bn.side, order_type, bn.qty,
                                      bn.price if order_type == "LIMIT" else None,
                                      tif=_engine_tif(bn.tif) if order_type == "LIMIT" else "GOOD_TILL_CANCEL")
        except EngineError:  # e.g. the funds went elsewhere meanwhile
            bn.own_status = "EXPIRED"
            return
        bn.engine = o
        self.by_engine[o.id] = bn

    def expire_siblings(self, bn: BnOrder, now: int) -> None:
        ol = self.lists.get(bn.list_id) if bn.list_id >= 0 else None
        if ol is None or ol.done:
            return
        ol.done = True
        for leg in ol.legs:
            if leg is bn:
                continue
            leg.update_time = now
            if leg.engine is not None:
                self.engine.cancel(leg.engine)  # not by the user: EXPIRED
            elif leg.own_status == "NEW":
                self.release_hold(leg)
                leg.own_status = "EXPIRED"

    def cancel(self, bn: BnOrder, now: int) -> bool:
        if not bn.is_open:
            return False
        bn.canceled_by_user = True
        bn.update_time = now
        if bn.engine is not None:
            return self.engine.cancel(bn.engine)
        self.release_hold(bn)
        bn.own_status = "CANCELED"
        return True


def _engine_tif(tif: str | None) -> str:
    return {"IOC": "IMMEDIATE_OR_CANCEL", "FOK": "FILL_OR_KILL"}.get(tif or "GTC", "GOOD_TILL_CANCEL")


engine_tif = _engine_tif
