"""Crypto.com trigger orders and OCO lists on the simulated venue.

What ccxt 4.5.90's ``cryptocom`` client sends (read in its ``create_order_request`` and
``create_advanced_order_request``):

* ``private/create-order`` with ``type`` ``STOP_LOSS`` / ``TAKE_PROFIT`` (market when triggered)
  or ``STOP_LIMIT`` / ``TAKE_PROFIT_LIMIT`` (limit ``price`` when triggered) and ``ref_price``,
  the trigger level (ccxt's unified ``stopLossPrice`` / ``takeProfitPrice`` / ``triggerPrice``);
  ``ref_price_type`` optional (``MARK_PRICE`` on the venue by default; the simulator has no mark or
  index apart from its prints, so every type triggers on the prints).
* ``private/create-order-list`` with ``contingency_type`` ``OCO`` and two legs in ``order_list``
  (ccxt's ``create_orders(..., params={"contingency_type": "OCO"})``; a leg's trigger level goes
  as its own ``ref_price`` param — ccxt's advanced request drops ``triggerPrice`` and friends), or
  ``LIST``: up to 10 independent orders, one result per index.
* ``private/cancel-order-list``: ``OCO`` with ``list_id``, or ``LIST`` with ``order_list`` of
  ``{instrument_name, order_id}``.

Rules of the simulated venue (the real one's documented triggers; the rest is this simulator's
choice and said so in the README):

* A sell ``STOP_*`` triggers when a print is at or below ``ref_price``, a buy ``STOP_*`` at or
  above; ``TAKE_PROFIT*`` the other way round. Every print counts (a sweep through several levels
  triggers on the lowest/highest of them), checked after each market event and each request.
* An order whose level the last print has already reached is refused (``229 INVALID_REF_PRICE``):
  it would trigger at once.
* Waiting, an order is ``ACTIVE`` in open orders and order detail with ``order_type`` as sent,
  ``ref_price`` / ``ref_price_type`` set and ``trigger_price`` ``"0"``; it reserves the funds the
  order it becomes needs (a market buy by quantity: quantity x ref_price). Triggered, it keeps its
  id and type and ``trigger_price`` is the print that triggered it; it trades as a market or limit
  order (refused with ``306`` if the funds went meanwhile).
* OCO: both legs sell (or buy) the same instrument; one reserve covers both. The first leg to
  trigger or to trade cancels the other at once; cancelling one leg cancels the list. Both legs
  carry ``contingency_type`` ``OCO`` and ``list_id``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .engine import Account, EngineError, MatchingEngine, Order, Trade
from .instruments import Instrument

TRIGGER_TYPES = {"STOP_LOSS": "MARKET", "TAKE_PROFIT": "MARKET", "STOP_LIMIT": "LIMIT", "TAKE_PROFIT_LIMIT": "LIMIT"}
REF_PRICE_TYPES = ("MARK_PRICE", "INDEX_PRICE", "LAST_PRICE")
INVALID_REF_PRICE = (229, "INVALID_REF_PRICE")


def triggers_at(order: Order, low: int, high: int) -> bool:
    """Whether prints ranging from ``low`` to ``high`` (ticks) reach the order's level."""
    ref = order.ref_price
    assert ref is not None and order.kind is not None
    falling = (order.kind.startswith("STOP")) == (order.side == "SELL")  # sell stop / buy take-profit
    return low <= ref if falling else high >= ref


@dataclass
class OrderList:
    id: str
    contingency: str
    legs: list[Order]
    done: bool = False


@dataclass
class TriggerDesk:
    """The waiting trigger orders and OCO lists of every account."""

    engine: MatchingEngine
    last: dict[str, int]  # the venue's last print per symbol (ticks): SimExchange.last
    armed: dict[str, list[Order]] = field(default_factory=dict)
    lists: dict[str, OrderList] = field(default_factory=dict)
    _unseen: dict[str, list[int]] = field(default_factory=dict)  # prints not yet compared with the levels
    _traded: list[Order] = field(default_factory=list)  # list legs that traded since the last check
    _list_ids: Any = field(default_factory=lambda: itertools.count(7_200_000_000_000_000_001))

    # ---- what the market did -------------------------------------------------------------
    def on_trade(self, t: Trade) -> None:
        if self.armed.get(t.inst.symbol):
            self._unseen.setdefault(t.inst.symbol, []).append(t.price)

    def on_order_traded(self, o: Order) -> None:
        if o.list_id is not None:
            self._traded.append(o)

    # ---- entry -----------------------------------------------------------------------------
    def would_trigger(self, inst: Instrument, side: str, kind: str, ref: int) -> bool:
        last = self.last.get(inst.symbol)
        if last is None:
            return False
        probe = Order(id="", inst=inst, account=None, side=side, type="MARKET", tif="", post_only=False, price=None,
                      qty=0, client_oid=None, create_time=0, kind=kind, ref_price=ref)
        return triggers_at(probe, last, last)

    def place(self, acct: Account, inst: Instrument, side: str, kind: str, qty: int, price: int | None, tif: str,
              client_oid: str | None, notional: Decimal | None, ref: int, ref_type: str, hold: bool = True) -> Order:
        if self.would_trigger(inst, side, kind, ref):
            raise EngineError(*INVALID_REF_PRICE, "the last print already reached ref_price")
        o = self.engine.arm(acct, inst.symbol, side, TRIGGER_TYPES[kind], qty, price, tif, client_oid, notional,
                            kind, ref, ref_type, hold=hold)
        self.armed.setdefault(inst.symbol, []).append(o)
        return o

    def new_list(self, contingency: str, legs: list[Order]) -> OrderList:
        ol = OrderList(str(next(self._list_ids)), contingency, legs)
        for leg in legs:
            leg.list_id, leg.contingency = ol.id, contingency
        self.lists[ol.id] = ol
        return ol

    # ---- cancels ----------------------------------------------------------------------------
    def forget(self, o: Order) -> None:
        waiting = self.armed.get(o.inst.symbol)
        if waiting and o in waiting:
            waiting.remove(o)

    def discard(self, o: Order) -> None:
        """Undo an order placed a moment ago for a request that then failed (an OCO whose other
        leg was refused): gone without a trace, its reserve released, no update sent."""
        acct = o.account
        assert acct is not None
        self.forget(o)
        acct.orders.pop(o.id, None)
        self.engine.orders.pop(o.id, None)
        if o.client_oid:
            acct.by_client_oid.pop(o.client_oid, None)
        if o.hold_left:
            acct.release(o.inst.base if o.side == "SELL" else o.inst.quote, o.hold_left)
            o.hold_left = Decimal(0)
        o.status = "REJECTED"

    def cancel(self, o: Order) -> bool:
        """Cancel one order (waiting or working); an OCO leg takes its list with it."""
        done = self.engine.cancel(o)
        self.forget(o)
        if o.list_id is not None:
            self.close_list(o)
        return done

    def close_list(self, keep: Order) -> None:
        ol = self.lists.get(keep.list_id or "")
        if ol is None or ol.done:
            return
        ol.done = True
        for leg in ol.legs:
            if leg is not keep and leg.is_open:
                self.engine.cancel(leg)
                self.forget(leg)

    # ---- triggering ------------------------------------------------------------------------
    def check(self) -> int:
        """Fire every waiting order the new prints reached, and cancel the siblings of list legs
        that traded; repeated while a fired order's own prints reach more. Returns how many fired."""
        fired = 0
        for _ in range(50):  # a cascade through the whole book ends long before
            while self._traded:
                self.close_list(self._traded.pop())
            if not self._unseen:
                break
            unseen, self._unseen = self._unseen, {}
            progressed = False
            for sym, prints in unseen.items():
                low, high = min(prints), max(prints)
                for o in list(self.armed.get(sym, ())):
                    if not o.armed or not o.is_open:
                        self.forget(o)
                        continue
                    if not triggers_at(o, low, high):
                        continue
                    self.forget(o)
                    if o.list_id is not None:
                        self.close_list(o)  # the sibling's reserve is released before this order needs it
                    falling = (o.kind or "").startswith("STOP") == (o.side == "SELL")
                    self.engine.activate(o, low if falling else high)
                    fired += 1
                    progressed = True
            if not progressed and not self._traded:
                break
        return fired
