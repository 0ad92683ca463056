"""Price-time-priority matching engine.

Prices are integer ticks and quantities integer lots inside the engine; balances, fees
and values are exact ``Decimal``. Fees are charged in the currency received (a buy pays
its fee in base, a sell in quote), as on Crypto.com spot, so a hold never has to cover a fee.
Synthetic flow orders belong to no account (``account is None``): no balance checks.
"""

from __future__ import annotations

import bisect
import itertools
from collections import deque
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Callable

from .instruments import Instrument, currency_step

ZERO = Decimal(0)

# Crypto.com Exchange v1 response codes used by the engine.
INSUFFICIENT_AVAILABLE_BALANCE = (306, "INSUFFICIENT_AVAILABLE_BALANCE")
INVALID_ORDERQTY = (213, "INVALID_ORDERQTY")
INVALID_PRICE = (308, "INVALID_PRICE")
BELOW_MIN_ORDER_SIZE = (415, "BELOW_MIN_ORDER_SIZE")
INVALID_ORDTYPE = (218, "INVALID_ORDTYPE")
INVALID_SIDE = (220, "INVALID_SIDE")
INVALID_TIF = (221, "INVALID_TIF")
POST_ONLY_REJ = 43005
FILL_OR_KILL = 43003
IMMEDIATE_OR_CANCEL = 43004


class EngineError(Exception):
    def __init__(self, code: int, message: str, detail: str = "") -> None:
        super().__init__(f"{code} {message} {detail}".strip())
        self.code = code
        self.message = message
        self.detail = detail


@dataclass
class Account:
    api_key: str
    secret: str
    balances: dict[str, Decimal]
    holds: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, "Order"] = field(default_factory=dict)
    by_client_oid: dict[str, "Order"] = field(default_factory=dict)
    trades: list["Fill"] = field(default_factory=list)
    account_id: str = ""

    def available(self, ccy: str) -> Decimal:
        return self.balances.get(ccy, ZERO) - self.holds.get(ccy, ZERO)

    def hold(self, ccy: str, amount: Decimal) -> None:
        self.holds[ccy] = self.holds.get(ccy, ZERO) + amount

    def release(self, ccy: str, amount: Decimal) -> None:
        self.holds[ccy] = self.holds.get(ccy, ZERO) - amount

    def credit(self, ccy: str, amount: Decimal) -> None:
        self.balances[ccy] = self.balances.get(ccy, ZERO) + amount


@dataclass(eq=False)
class Order:
    id: str
    inst: Instrument
    account: Account | None
    side: str  # BUY / SELL
    type: str  # LIMIT / MARKET
    tif: str  # GOOD_TILL_CANCEL / IMMEDIATE_OR_CANCEL / FILL_OR_KILL
    post_only: bool
    price: int | None  # ticks; None for market
    qty: int  # lots (0 for a market buy by notional until filled)
    client_oid: str | None
    create_time: int
    notional: Decimal | None = None  # market buy by quote amount
    filled: int = 0
    cum_value: Decimal = ZERO
    cum_fee: Decimal = ZERO
    status: str = "NEW"  # NEW until accepted; then ACTIVE/FILLED/CANCELED/REJECTED
    reason: int | None = None
    update_time: int = 0
    hold_left: Decimal = ZERO
    maker_fee_rate: Decimal = ZERO
    taker_fee_rate: Decimal = ZERO
    # trigger orders (STOP_LOSS, STOP_LIMIT, TAKE_PROFIT, TAKE_PROFIT_LIMIT): ``type`` is what the
    # order becomes when triggered (MARKET / LIMIT), ``kind`` what the client asked for
    kind: str | None = None
    ref_price: int | None = None  # trigger level (ticks)
    ref_price_type: str | None = None
    trigger_price: int | None = None  # the print that triggered it (ticks)
    armed: bool = False  # waiting for its trigger: ACTIVE, not on the book
    list_id: str | None = None  # OCO list
    contingency: str | None = None

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def is_open(self) -> bool:
        return self.status == "ACTIVE"

    @property
    def fee_ccy(self) -> str:
        return self.inst.base if self.side == "BUY" else self.inst.quote


@dataclass
class Fill:
    """One side of a trade, as a user sees it (private/get-trades, user.trade)."""

    trade_id: str
    match_id: str
    order: Order
    price: int
    qty: int
    value: Decimal
    fee: Decimal
    liquidity: str  # TAKER / MAKER
    time: int


@dataclass
class Trade:
    """A public print."""

    id: str
    inst: Instrument
    price: int
    qty: int
    taker_side: str  # BUY / SELL
    time: int
    maker: Order
    taker: Order


class Book:
    """One instrument's resting orders. Best bid = bid_prices[-1], best ask = ask_prices[0]."""

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.levels: dict[str, dict[int, deque[Order]]] = {"BUY": {}, "SELL": {}}
        self.level_qty: dict[str, dict[int, int]] = {"BUY": {}, "SELL": {}}
        self.prices: dict[str, list[int]] = {"BUY": [], "SELL": []}

    def best(self, side: str) -> int | None:
        p = self.prices[side]
        if not p:
            return None
        return p[-1] if side == "BUY" else p[0]

    def best_bid(self) -> int | None:
        return self.best("BUY")

    def best_ask(self) -> int | None:
        return self.best("SELL")

    def add(self, order: Order) -> None:
        side, price = order.side, order.price
        assert price is not None, "only limit orders rest on the book"
        lvl = self.levels[side].get(price)
        if lvl is None:
            lvl = self.levels[side][price] = deque()
            self.level_qty[side][price] = 0
            bisect.insort(self.prices[side], price)
        lvl.append(order)
        self.level_qty[side][price] += order.remaining

    def remove(self, order: Order, lots: int | None = None) -> None:
        """Take `order` off the book (its remaining lots must still be counted)."""
        side, price = order.side, order.price
        if price is None:  # a market order never rests
            return
        lvl = self.levels[side].get(price)
        if lvl is None:
            return
        try:
            lvl.remove(order)
        except ValueError:
            return
        self.level_qty[side][price] -= order.remaining if lots is None else lots
        if not lvl:
            self._drop_level(side, price)

    def _drop_level(self, side: str, price: int) -> None:
        del self.levels[side][price]
        del self.level_qty[side][price]
        prices = self.prices[side]
        i = bisect.bisect_left(prices, price)
        del prices[i]

    def top(self, side: str, depth: int) -> list[tuple[int, int, int]]:
        """[(price_ticks, qty_lots, order_count)] best first."""
        prices = self.prices[side]
        sel = reversed(prices[-depth:]) if side == "BUY" else prices[:depth]
        lv, lq = self.levels[side], self.level_qty[side]
        return [(p, lq[p], len(lv[p])) for p in sel]

    def orders_at(self, side: str, price: int) -> deque[Order] | None:
        return self.levels[side].get(price)


Listener = Callable[[str, object], None]


class MatchingEngine:
    def __init__(self, instruments: list[Instrument], clock: Callable[[], int],
                 maker_fee: Decimal = Decimal("0.0004"), taker_fee: Decimal = Decimal("0.0006"),
                 id_base: int = 6_530_219_000_000_000_000) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        self.by_id = {i.id: i for i in instruments}
        self.books = {i.symbol: Book(i) for i in instruments}
        self.clock = clock
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self._order_ids = itertools.count(id_base + 1)
        self._trade_ids = itertools.count(id_base // 2 + 1)
        self.listeners: list[Listener] = []
        self.orders: dict[str, Order] = {}  # every account order ever (not synthetic flow orders)

    # ---- events -------------------------------------------------------------------------
    def _emit(self, kind: str, payload: object) -> None:
        for cb in self.listeners:
            cb(kind, payload)

    # ---- order entry --------------------------------------------------------------------
    def new_order(self, account: Account | None, symbol: str, side: str, type_: str, qty: int,
                  price: int | None = None, tif: str = "GOOD_TILL_CANCEL", post_only: bool = False,
                  client_oid: str | None = None, notional: Decimal | None = None) -> Order:
        """Validate, accept and match an order. Raises EngineError for a synchronous reject."""
        inst = self.instruments[symbol]
        book = self.books[symbol]
        if side not in ("BUY", "SELL"):
            raise EngineError(*INVALID_SIDE)
        if type_ not in ("LIMIT", "MARKET"):
            raise EngineError(*INVALID_ORDTYPE)
        if tif not in ("GOOD_TILL_CANCEL", "IMMEDIATE_OR_CANCEL", "FILL_OR_KILL"):
            raise EngineError(*INVALID_TIF)
        if type_ == "LIMIT":
            if price is None or price <= 0:
                raise EngineError(*INVALID_PRICE)
        else:
            price = None
            post_only = False
        if notional is None:
            if qty <= 0:
                raise EngineError(*INVALID_ORDERQTY)
        elif notional <= 0 or type_ != "MARKET" or side != "BUY":
            raise EngineError(*INVALID_ORDERQTY)
        now = self.clock()
        order = Order(id=str(next(self._order_ids)), inst=inst, account=account, side=side, type=type_,
                      tif=tif, post_only=post_only, price=price, qty=qty if notional is None else 0,
                      client_oid=client_oid, create_time=now, notional=notional, update_time=now,
                      maker_fee_rate=self.maker_fee, taker_fee_rate=self.taker_fee)
        if account is not None:
            self._check_limits(order)
            self._check_funds(order, book)
            self._place_hold(order)
            account.orders[order.id] = order
            if client_oid:
                account.by_client_oid[client_oid] = order
            self.orders[order.id] = order
        order.status = "ACTIVE"
        self._match(order, book)
        return order

    def _check_limits(self, order: Order) -> None:
        inst = order.inst
        if order.notional is not None:
            if order.notional < inst.min_notional:
                raise EngineError(*BELOW_MIN_ORDER_SIZE)
            return
        if inst.qty(order.qty) < inst.min_qty:
            raise EngineError(*BELOW_MIN_ORDER_SIZE)
        if order.price is not None and inst.price(order.price) * inst.qty(order.qty) < inst.min_notional:
            raise EngineError(*BELOW_MIN_ORDER_SIZE)

    def _check_funds(self, order: Order, book: Book) -> None:
        acct, inst = order.account, order.inst
        assert acct is not None
        if order.side == "SELL":
            if acct.available(inst.base) < inst.qty(order.qty):
                raise EngineError(*INSUFFICIENT_AVAILABLE_BALANCE)
            return
        if order.notional is not None:
            need = order.notional
        elif order.price is not None:
            need = inst.price(order.price) * inst.qty(order.qty)
        else:  # market buy by quantity: cost of walking the book
            need, left = ZERO, order.qty
            for p, q, _ in book.top("SELL", len(book.prices["SELL"])):
                take = min(q, left)
                need += inst.price(p) * inst.qty(take)
                left -= take
                if left == 0:
                    break
        if acct.available(inst.quote) < need:
            raise EngineError(*INSUFFICIENT_AVAILABLE_BALANCE)

    def _place_hold(self, order: Order) -> None:
        acct, inst = order.account, order.inst
        assert acct is not None
        if order.side == "SELL":
            order.hold_left = inst.qty(order.qty)
            acct.hold(inst.base, order.hold_left)
        elif order.price is not None:
            order.hold_left = inst.price(order.price) * inst.qty(order.qty)
            acct.hold(inst.quote, order.hold_left)
        # market buys are checked and settled synchronously: no hold

    # ---- trigger orders -----------------------------------------------------------------
    def arm(self, account: Account, symbol: str, side: str, type_: str, qty: int, price: int | None, tif: str,
            client_oid: str | None, notional: Decimal | None, kind: str, ref_price: int, ref_price_type: str,
            hold: bool = True) -> Order:
        """Accept a trigger order: checked and (with ``hold``) its funds reserved like the order
        it becomes, then ACTIVE and waiting for ``trigger``, off the book. A market buy by
        quantity reserves quantity x ref_price. ``hold=False``: an OCO leg sharing its sibling's."""
        inst = self.instruments[symbol]
        if side not in ("BUY", "SELL"):
            raise EngineError(*INVALID_SIDE)
        if tif not in ("GOOD_TILL_CANCEL", "IMMEDIATE_OR_CANCEL", "FILL_OR_KILL"):
            raise EngineError(*INVALID_TIF)
        if notional is None and qty <= 0:
            raise EngineError(*INVALID_ORDERQTY)
        now = self.clock()
        order = Order(id=str(next(self._order_ids)), inst=inst, account=account, side=side, type=type_, tif=tif,
                      post_only=False, price=price if type_ == "LIMIT" else None, qty=qty if notional is None else 0,
                      client_oid=client_oid, create_time=now, notional=notional, update_time=now,
                      maker_fee_rate=self.maker_fee, taker_fee_rate=self.taker_fee, kind=kind,
                      ref_price=ref_price, ref_price_type=ref_price_type, armed=True)
        self._check_limits(order)
        need = self.trigger_hold(order)
        if hold:
            if account.available(inst.base if side == "SELL" else inst.quote) < need:
                raise EngineError(*INSUFFICIENT_AVAILABLE_BALANCE)
            order.hold_left = need
            account.hold(inst.base if side == "SELL" else inst.quote, need)
        account.orders[order.id] = order
        if client_oid:
            account.by_client_oid[client_oid] = order
        self.orders[order.id] = order
        order.status = "ACTIVE"
        self._emit("order", order)
        if hold:
            self._emit("balance", account)
        return order

    @staticmethod
    def trigger_hold(order: Order) -> Decimal:
        """What a waiting trigger order reserves: the base it sells, or the quote it buys with
        (its limit, its notional, or quantity x ref_price for a market buy by quantity)."""
        inst = order.inst
        if order.side == "SELL":
            return inst.qty(order.qty)
        if order.notional is not None:
            return order.notional
        ticks = order.price if order.price is not None else order.ref_price
        assert ticks is not None
        return inst.price(ticks) * inst.qty(order.qty)

    def activate(self, order: Order, trigger_price: int) -> None:
        """A trigger order's level was reached: its reserve is released and it goes to the book
        as the market or limit order it is, under the same id (refused if the funds went)."""
        acct = order.account
        assert acct is not None and order.armed
        order.armed = False
        order.trigger_price = trigger_price
        order.update_time = self.clock()
        if order.hold_left:
            acct.release(order.inst.base if order.side == "SELL" else order.inst.quote, order.hold_left)
            order.hold_left = ZERO
        book = self.books[order.inst.symbol]
        try:
            self._check_funds(order, book)
        except EngineError as e:
            self._finish(order, "REJECTED", e.code)
            return
        self._place_hold(order)
        self._match(order, book)

    # ---- matching -----------------------------------------------------------------------
    def _crosses(self, order: Order, price: int) -> bool:
        if order.price is None:
            return True
        return price <= order.price if order.side == "BUY" else price >= order.price

    def _fillable(self, order: Order, book: Book) -> int:
        opp = "SELL" if order.side == "BUY" else "BUY"
        total = 0
        for p, q, _ in book.top(opp, len(book.prices[opp])):
            if not self._crosses(order, p):
                break
            total += q
            if total >= order.qty:
                break
        return total

    def _match(self, order: Order, book: Book) -> None:
        opp = "SELL" if order.side == "BUY" else "BUY"
        best = book.best(opp)
        crossing = best is not None and self._crosses(order, best)
        if order.post_only and crossing:
            self._finish(order, "REJECTED", POST_ONLY_REJ)
            return
        if order.tif == "FILL_OR_KILL" and self._fillable(order, book) < order.qty:
            self._finish(order, "CANCELED", FILL_OR_KILL)
            return
        inst = order.inst
        changed = False
        budget = order.notional
        while True:
            if order.notional is None and order.remaining <= 0:
                break
            best = book.best(opp)
            if best is None or not self._crosses(order, best):
                break
            level = book.orders_at(opp, best)
            assert level
            maker = level[0]
            want = order.remaining
            if budget is not None:
                want = int(budget / (inst.price(best) * inst.lot))
                if want <= 0:
                    break
            q = min(want, maker.remaining)
            self._fill(maker, order, best, q, book)
            changed = True
            if budget is not None:
                budget -= inst.price(best) * inst.qty(q)
        if order.notional is not None:
            order.qty = order.filled
        if changed:
            self._emit("book", inst)
        if order.notional is None and order.remaining == 0:
            self._finish(order, "FILLED")
        elif order.type == "MARKET":
            if order.notional is not None and order.filled > 0:
                self._finish(order, "FILLED")
            else:
                self._finish(order, "CANCELED")
        elif order.tif == "IMMEDIATE_OR_CANCEL":
            self._finish(order, "CANCELED", None if order.filled else IMMEDIATE_OR_CANCEL)
        else:
            book.add(order)
            self._emit("book", inst)
            if order.account is not None:
                self._emit("order", order)

    def _fill(self, maker: Order, taker: Order, price: int, q: int, book: Book) -> None:
        inst = maker.inst
        now = self.clock()
        # take the maker's lots off the level
        level_q = book.level_qty[maker.side]
        level_q[price] -= q
        maker.filled += q
        taker.filled += q
        value = inst.price(price) * inst.qty(q)
        maker.cum_value += value
        taker.cum_value += value
        maker.update_time = taker.update_time = now
        match_id = str(next(self._trade_ids))
        trade = Trade(id=match_id, inst=inst, price=price, qty=q, taker_side=taker.side, time=now,
                      maker=maker, taker=taker)
        for o, liq, rate in ((maker, "MAKER", self.maker_fee), (taker, "TAKER", self.taker_fee)):
            if o.account is None:
                continue
            fee = self._settle(o, price, q, value, rate)
            o.cum_fee += fee
            fill = Fill(trade_id=str(next(self._trade_ids)), match_id=match_id, order=o, price=price,
                        qty=q, value=value, fee=fee, liquidity=liq, time=now)
            o.account.trades.append(fill)
            self._emit("fill", fill)
        if maker.remaining == 0:
            lvl = book.orders_at(maker.side, price)
            assert lvl is not None and lvl[0] is maker
            lvl.popleft()
            if not lvl:
                book._drop_level(maker.side, price)
            self._finish(maker, "FILLED", emit_book=False)
        elif maker.account is not None:
            self._emit("order", maker)
        self._emit("trade", trade)

    def _settle(self, o: Order, price: int, q: int, value: Decimal, rate: Decimal) -> Decimal:
        acct, inst = o.account, o.inst
        assert acct is not None
        base_q = inst.qty(q)
        if o.side == "BUY":
            if o.price is not None:
                rel = min(o.hold_left, inst.price(o.price) * base_q)
                o.hold_left -= rel
                acct.release(inst.quote, rel)
            acct.credit(inst.quote, -value)
            fee = (base_q * rate).quantize(currency_step(inst.base), ROUND_HALF_UP)
            acct.credit(inst.base, base_q - fee)
        else:
            rel = min(o.hold_left, base_q)
            o.hold_left -= rel
            acct.release(inst.base, rel)
            acct.credit(inst.base, -base_q)
            fee = (value * rate).quantize(currency_step(inst.quote), ROUND_HALF_UP)
            acct.credit(inst.quote, value - fee)
        self._emit("balance", acct)
        return fee

    def _finish(self, order: Order, status: str, reason: int | None = None, emit_book: bool = False) -> None:
        order.status = status
        order.reason = reason
        order.update_time = self.clock()
        acct = order.account
        if acct is not None:
            if order.hold_left:
                ccy = order.inst.base if order.side == "SELL" else order.inst.quote
                acct.release(ccy, order.hold_left)
                order.hold_left = ZERO
                self._emit("balance", acct)
            self._emit("order", order)
        if emit_book:
            self._emit("book", order.inst)

    # ---- cancel -------------------------------------------------------------------------
    def cancel(self, order: Order) -> bool:
        if not order.is_open:
            return False
        book = self.books[order.inst.symbol]
        book.remove(order)
        self._finish(order, "CANCELED", emit_book=True)
        return True

    def cancel_all(self, account: Account, symbol: str | None = None) -> int:
        n = 0
        for o in list(account.orders.values()):
            if o.is_open and (symbol is None or o.inst.symbol == symbol):
                n += self.cancel(o)
        return n
