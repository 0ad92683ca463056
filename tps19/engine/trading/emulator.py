"""Protective orders held by TPS19 (emulated): stored, armed, triggered on the market's prints
(or best bid/ask), then handed to the broker as the market or limit order they become, under
their own client order id (so a resend after a crash is recognised by the venue).

* Arming: every protective order is a row in ``orders`` (status ``new``, ``trigger_state``
  ``armed``, ``placement`` ``emulated``) before it is reported placed. A trailing stop keeps its
  best price since activation in ``high_water`` and its current level in ``trigger_price``.
* Triggering: the row says ``triggered`` (committed) before the order is handed over; at a
  restart a stored ``triggered`` order is sent whatever the price is then (live: looked up by
  client id first).
* OCO: legs share ``oco_group``. A leg that becomes a market order cancels its held siblings
  when it triggers (they would sell the same coins); a leg that fills cancels the others, a
  partial fill shrinks held siblings to what is left. A bracket entry's fills create, then grow,
  its OCO legs (net of a fee paid in the base coin, rounded down to the step).
* Spot is reduce-only: a protective sell never sells more than is held and free; one that can
  sell nothing raises a ``stop_unsendable`` issue (the alert line, the desk's attention row).
* Blind windows: at start, an armed order's level is compared with the venue's prints (1m
  candles if the prints are unavailable) since it was last compared with the market; crossed,
  it fires at once and says how late and how far.

The kill switch and the breakers never touch what is held here (docs/orders.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any, Protocol

from ..events import BookEvent, TradeEvent, now_ms
from .orders import (
    D,
    OrderStatus,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Side,
    TriggerState,
    ValidatedOrder,
    new_client_order_id,
    type_words,
    round_to_step,
    trailing_trigger,
    trigger_hit,
)
from .records import order_update


class HoldingBroker(Protocol):
    """What the emulator uses of the broker that owns it (``base.py``'s ``BaseBroker`` hands itself
    in; typed here so the emulator never imports the broker)."""

    mode: str
    markets: dict[str, Any]
    precision_mode: int
    orders: dict[str, OrderState]
    books: dict[str, BookEvent]
    store: Any
    exchange: str
    bus: Any
    risk: Any  # the RiskEngine (risk.py)
    entry: Any  # the OrderEntry (entry.py)

    def _new_state(self, req: OrderRequest, v: ValidatedOrder | None) -> OrderState: ...
    async def _reject(self, req: OrderRequest, reason: str) -> OrderState: ...
    async def _release(self, o: OrderState, *, resend: bool = False) -> None: ...
    def report(self, kind: str, message: str, **fields: Any) -> None: ...
    def publish(self, ev: Any) -> None: ...
    def free_base(self, symbol: str, *, excluding: str | None = None) -> Decimal: ...
    async def _cancel_order(self, client_order_id: str) -> OrderState | None: ...
    def write_first(self, client_order_id: str, write: asyncio.Future[Any]) -> None: ...
    async def written(self, client_order_id: str) -> None: ...
    def stash_event(self, client_order_id: str, detail: str) -> None: ...
    async def commit(self, order: OrderState, prev: OrderStatus | None, **kw: Any) -> Any: ...
    async def _submit(self, o: OrderState, v: ValidatedOrder) -> OrderState: ...
    async def _submit_oco(self, legs: list[OrderState], detail: str | None) -> OrderState: ...

log = logging.getLogger(__name__)
ZERO = Decimal(0)
HUNDRED = Decimal(100)
S = OrderStatus
PERSIST_INTERVAL_S = 1.0  # a trailing stop's high-water mark is written at most this often
CHECKED_INTERVAL_MS = 10_000  # how stale the stored "last compared with the market" time may get
LATE_MS = 2_000  # a trigger from a print older than this says how late it fired


def venue_native_kinds(client: Any) -> frozenset[OrderType]:
    """The protective kinds the venue holds itself through this ccxt client. ccxt 4.5.90's
    cryptocom sends stop-loss / take-profit (market and limit) through private/create-order
    (unified stopLossPrice / takeProfitPrice -> STOP_LOSS, STOP_LIMIT, TAKE_PROFIT,
    TAKE_PROFIT_LIMIT with ref_price) and an OCO through private/create-order-list (a resting
    limit at the take-profit and a stop-limit: ``venue_oco_legs``); it has no trailing stop. Other
    venues: emulated here (their params differ; not built)."""
    if client is None or getattr(client, "id", None) != "cryptocom":
        return frozenset()
    return frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT,
                      OrderType.OCO})


def _num(x: Decimal | None) -> str:
    """A price as a trader reads it (a print's 49500.0 is 49500)."""
    return "?" if x is None else format(x.normalize(), "f")


def leg_id(parent_id: str | None) -> str:
    """A new leg's client order id: a strategy's legs keep its prefix (its own position counts
    their fills), everything else gets a fresh TPS19 id."""
    if parent_id and parent_id.startswith("s19-"):
        from ..targets import strategy_order_id

        prefix = parent_id[: parent_id.index("-", 4) + 1]
        return strategy_order_id(prefix)
    return new_client_order_id()


@dataclass(slots=True)
class Bounds:
    """The levels nearest the market per side of one symbol's armed orders (trailing stops apart)."""

    sell_stop: Decimal | None = None  # highest sell stop: a print at or below it fires one
    sell_take: Decimal | None = None  # lowest sell take-profit
    buy_stop: Decimal | None = None  # lowest buy stop
    buy_take: Decimal | None = None  # highest buy take-profit
    trailing: list[str] = field(default_factory=list)  # evaluated on every print (they move)


@dataclass(slots=True)
class Trigger:
    """Why an order fired: the price that reached its level, and when that price traded."""

    price: Decimal
    ts: int | None
    source: str  # "print" | "bid" | "ask" | "blind-window prints" | "blind-window candles" | "restart"
    received: float = field(default_factory=time.perf_counter)


class StopEmulator:
    def __init__(self, broker: HoldingBroker, *, trigger_source: str = "last", placement: str = "auto") -> None:
        if trigger_source not in ("last", "bid_ask"):
            raise ValueError(f"trigger source must be last or bid_ask, not {trigger_source!r}")
        if placement not in ("venue", "emulated", "auto"):
            raise ValueError(f"stop placement must be venue, emulated or auto, not {placement!r}")
        self.setting = placement
        self.broker = broker
        self.trigger_source = trigger_source
        self.held: dict[str, OrderState] = {}
        self.in_flight: dict[str, OrderState] = {}  # triggered, being handed to the venue
        self._bounds_cache: dict[str, Bounds] = {}
        self._seen_ms: dict[str, int] = {}  # when each symbol's triggers were last compared with the market
        self._sending: set[asyncio.Task[None]] = set()
        self._by_symbol: dict[str, set[str]] = {}
        self._pending_release: dict[str, Trigger] = {}  # stored triggered, to send (paper: once a book is in)
        self._checks: asyncio.Queue[str] = asyncio.Queue()
        self._dirty: set[str] = set()
        self._persisted_checked: dict[str, int] = {}
        self._sub: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.fired = 0
        self.fire_latency: list[float] = []  # print received -> order handed to the broker (s)
        self.last_price: dict[str, Decimal] = {}
        # one change at a time to what is held (a cancel from the desk vs a trigger from the market)
        self.lock = asyncio.Lock()
        self._loaded = False
        # an armed order not compared with the market for longer than this has a blind window
        self.blind_after_ms = LATE_MS

    # ---------------------------------------------------------------- views
    def orders(self, symbol: str | None = None) -> list[OrderState]:
        return [o.copy() for o in list(self.held.values()) + list(self.in_flight.values())
                if symbol is None or o.symbol == symbol]

    def holds(self, cid: str) -> bool:
        return cid in self.held

    def _index(self, o: OrderState) -> None:
        self.held[o.client_order_id] = o
        self._by_symbol.setdefault(o.symbol, set()).add(o.client_order_id)
        self._moved(o.symbol)

    def _unindex(self, cid: str) -> OrderState | None:
        o = self.held.pop(cid, None)
        if o is not None:
            self._by_symbol.get(o.symbol, set()).discard(cid)
            self._moved(o.symbol)
        self._pending_release.pop(cid, None)
        self._dirty.discard(cid)
        return o

    # ---------------------------------------------------------------- lifecycle
    async def load(self) -> None:
        """What was held before a restart. Live sends the stored-triggered ones right after this,
        before reconciling, so the venue's fills of one that did reach it find their order."""
        if self._loaded:
            return
        self._loaded = True
        for o in await self.broker.store.held_orders():
            self._index(o)
            if o.trigger_state is TriggerState.TRIGGERED:
                # stored as triggered: it goes out whatever the price is now
                self._pending_release[o.client_order_id] = Trigger(o.trigger_price or ZERO, o.triggered_ms, "restart")

    async def start(self) -> None:
        b = self.broker
        await self.load()
        await self._settle_groups()
        for entry in await b.store.brackets_to_check():
            await self._protect_bracket(entry)
        if b.bus is not None and self._sub is None:
            self._sub = b.bus.subscribe(TradeEvent, BookEvent, maxsize=100_000)
            self._tasks.append(asyncio.create_task(self._run(), name="stops:emulator"))
            self._tasks.append(asyncio.create_task(self._contingencies(), name="stops:contingencies"))
            self._tasks.append(asyncio.create_task(self._persist_loop(), name="stops:persist"))
        if b.mode == "live":
            await self.release_pending()
        await self.check_blind_window(reason="restart")

    async def stop(self) -> None:
        from ...aio import cancel_and_wait

        await self.drain()  # a triggered order being sent is sent (or stored as triggered) first
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        if self._sub is not None:
            self._sub.close()
            self._sub = None
        try:
            await self._flush(force=True)
        except Exception as e:  # the next start reads the last written mark: only a little stale
            self.broker.report("db", f"trailing stops' marks not written at stop: {e}")

    # ---------------------------------------------------------------- placing
    def placement(self) -> str:
        """Where orders the emulator makes itself (bracket legs, OCO legs) live: here."""
        return "emulated"

    def placement_for(self, otype: OrderType) -> str | None:
        """Where a protective order of ``otype`` lives under ``TPS19_STOPS__PLACEMENT``: "venue" or
        "emulated"; None when the setting asks for the venue and the venue cannot hold it. Paper
        always emulates (paper is the venue). ``auto``: stop-losses venue-native where the client can
        place them (an emulated stop protects nothing while TPS19 is down), and OCOs (their stop-loss
        leg is one); take-profits, trailing stops and brackets emulated."""
        b = self.broker
        if b.mode != "live":
            return "emulated"
        native = venue_native_kinds(getattr(b, "client", None))
        if self.setting == "emulated":
            return "emulated"
        if self.setting == "venue":
            return "venue" if otype in native else None
        return "venue" if otype in native and otype in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.OCO) else "emulated"

    async def place(self, req: OrderRequest) -> OrderState:
        """Admit (validation, then the risk stage's protective checks) and arm a protective order or
        an OCO; returns the order (an OCO: its stop leg; both legs carry the group id)."""
        b = self.broker
        admission = b.entry.admit(req)
        if admission.order is None:
            return await b._reject(req, admission.reason or "refused")
        v = admission.order
        if req.client_order_id and (req.client_order_id in b.orders or req.client_order_id in self.held
                                    or await b.store.order(req.client_order_id)):
            return await b._reject(OrderRequest(req.symbol, req.side, req.type, req.amount, req.price),
                                   f"client order id {req.client_order_id} was already used")
        where = self.placement_for(v.type)
        if where is None:
            return await b._reject(req, f"TPS19_STOPS__PLACEMENT=venue, but {b.exchange} (through ccxt) cannot hold a "
                                        f"{type_words(v.type)} order: use auto or emulated (docs/orders.md)")
        if where == "venue" and v.type is OrderType.OCO and v.price is not None and v.price != v.take_profit_price:
            # the venue's OCO take-profit is a resting limit at its level: no separate limit price
            if self.setting == "venue":
                return await b._reject(req, "TPS19_STOPS__PLACEMENT=venue: a venue-native OCO's take-profit is a limit "
                                            "at the take-profit level; give no other price (or use auto/emulated)")
            where = "emulated"
        b.risk.count()
        legs = self._legs_of(req, v)
        if where == "venue" and v.type is OrderType.OCO:
            return await b._submit_oco(self.venue_oco_legs(legs), "; ".join(v.notes) or None)
        if where == "venue":
            # venue-native: recorded, then sent with its trigger like any order (the live broker's path)
            [o] = legs
            o.placement = "venue"
            return await b._submit(o, v)
        await self._arm(legs, detail="; ".join(v.notes) or None)
        return legs[0].copy()

    def _legs_of(self, req: OrderRequest, v: ValidatedOrder) -> list[OrderState]:
        b = self.broker
        base = dict(mode=b.mode, exchange=b.exchange, symbol=v.symbol, side=v.side, amount=v.amount,
                    placement=self.placement(), trigger_state=TriggerState.ARMED, parent_id=req.parent_id)
        if v.type is OrderType.OCO:
            group = req.oco_group or req.client_order_id or new_client_order_id()
            stop = OrderState(client_order_id=req.client_order_id or leg_id(group), type=OrderType.STOP_MARKET,
                              price=None, trigger_price=v.stop_loss_price, oco_group=group, **base)  # type: ignore[arg-type]
            take_type = OrderType.TAKE_PROFIT_LIMIT if v.price is not None else OrderType.TAKE_PROFIT
            take = OrderState(client_order_id=leg_id(group), type=take_type, price=v.price,
                              trigger_price=v.take_profit_price, oco_group=group, **base)  # type: ignore[arg-type]
            return [stop, take]
        o = OrderState(client_order_id=req.client_order_id or b._new_state(req, v).client_order_id, type=v.type,
                       price=v.price, trigger_price=v.trigger_price, trailing_pct=v.trailing_pct,
                       trailing_distance=v.trailing_distance, activation_price=v.activation_price,
                       oco_group=req.oco_group, **base)  # type: ignore[arg-type]
        if o.type is OrderType.TRAILING_STOP:
            self._start_trailing(o, self._market_price(o.symbol, o.side.value))
        return [o]

    def venue_oco_legs(self, legs: list[OrderState]) -> list[OrderState]:
        """An OCO's legs as the venue holds them (one ``create-order-list``): the take-profit a limit
        resting at its level (it fills there or better), the stop-loss a stop-limit whose limit is
        the risk stage's price band beyond the level (ccxt 4.5.90 sends a market stop leg of a list
        as TAKE_PROFIT, so it cannot be a market order; a band-wide limit fills like one through any
        ordinary slippage and never sells into a void further than any order of ours may trade)."""
        band = D(self.broker.risk.settings.price_band_pct) / HUNDRED
        stop, take = legs
        stop.type, stop.placement = OrderType.STOP_LIMIT, "venue"
        level = stop.trigger_price or ZERO
        # rounded towards the level: the limit is never further from it than the band
        sell = stop.side == "sell"
        stop.price = self._round_tick(stop.symbol, level * (1 - band) if sell else level * (1 + band),
                                      ROUND_CEILING if sell else ROUND_FLOOR)
        if sell:  # never below what the venue takes: a positive price (a 100 % band) worth its minimum notional
            stop.price = max(stop.price, self._lowest_sell_limit(stop.symbol, stop.amount))
        take.type, take.placement, take.price = OrderType.TAKE_PROFIT_LIMIT, "venue", take.trigger_price
        take.trigger_state = TriggerState.WORKING  # a limit on the venue's book from the start
        return legs

    def _market_price(self, symbol: str, side: str) -> Decimal | None:
        if self.trigger_source == "last" and symbol in self.last_price:
            return self.last_price[symbol]
        b = self.broker.books.get(symbol)
        if b is not None:
            p = b.best_bid if side == "sell" else b.best_ask
            if p is not None:
                return D(p)
        return self.last_price.get(symbol)

    def _start_trailing(self, o: OrderState, price: Decimal | None) -> None:
        """A trailing stop starts trailing from the market now, or once its activation price trades."""
        if price is None or o.high_water is not None:
            return
        if o.activation_price is not None:
            reached = price >= o.activation_price if o.side == "sell" else price <= o.activation_price
            if not reached:
                return
        o.high_water = price
        o.trigger_price = self._round_tick(o.symbol, trailing_trigger(o.side.value, price, o.trailing_pct,
                                                                      o.trailing_distance))

    def _lowest_sell_limit(self, symbol: str, amount: Decimal) -> Decimal:
        """The lowest limit price the venue accepts for a sell of ``amount``: one tick, or the
        market's minimum notional over the amount, rounded up to a tick."""
        step = self._tick(symbol)
        tick = step if step is not None else D("1e-8")
        m = self.broker.markets.get(symbol) or {}
        min_cost = ((m.get("limits") or {}).get("cost") or {}).get("min")
        floor = D(str(min_cost)) / amount if min_cost and amount > 0 else ZERO
        return max(tick, self._round_tick(symbol, floor, ROUND_CEILING))

    def _round_tick(self, symbol: str, price: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
        step = self._tick(symbol)
        return price if step is None else round_to_step(price, step, rounding)

    def _tick(self, symbol: str) -> Decimal | None:
        """The market's price tick, when the venue states precision as tick sizes (else prices are
        not rounded here)."""
        from .orders import TICK_SIZE, _step

        m = self.broker.markets.get(symbol) or {}
        step = _step((m.get("precision") or {}).get("price"), self.broker.precision_mode)
        return step if self.broker.precision_mode == TICK_SIZE else None

    async def _arm(self, legs: list[OrderState], detail: str | None) -> None:
        b = self.broker
        now = now_ms()
        for o in legs:
            o.checked_ms = now
        await b.store.insert_orders(legs, detail=detail or "armed")
        for o in legs:
            self._index(o)
            b.publish(order_update(o, None))

    # ---------------------------------------------------------------- cancelling
    async def cancel(self, cid: str, reason: str = "cancelled by user") -> OrderState | None:
        async with self.lock:
            return await self._cancel(cid, reason)

    async def _cancel(self, cid: str, reason: str) -> OrderState | None:
        o = self.held.get(cid)
        if o is None:
            return None
        await self.broker.written(cid)
        new = o.copy()
        prev = new.transition(S.CANCELLED, reason)
        await self.broker.store.save(new, from_status=prev, to_status=new.status, detail=reason)
        self._unindex(cid)
        self.broker.publish(order_update(new, prev))
        return new

    async def cancel_group(self, group: str, *, keep: str | None = None, reason: str) -> int:
        async with self.lock:
            return await self._cancel_group(group, keep=keep, reason=reason)

    async def _cancel_group(self, group: str, *, keep: str | None = None, reason: str) -> int:
        """Cancel every live leg of an OCO group (held here or working at the venue) but ``keep``."""
        n = 0
        for cid in [c for c, o in self.held.items() if o.oco_group == group and c != keep]:
            if await self._cancel(cid, reason) is not None:
                n += 1
        for cid in [c for c, o in self.broker.orders.items() if o.oco_group == group and c != keep and o.is_working]:
            r = await self.broker._cancel_order(cid)
            if r is not None and not r.is_working:
                n += 1
        return n

    # ---------------------------------------------------------------- the market
    async def _run(self) -> None:
        from ...aio import cancel_requested

        assert self._sub is not None
        while not cancel_requested():
            for ev in await self._sub.wait(1.0):
                try:
                    if isinstance(ev, TradeEvent):
                        await self.on_trades(ev)
                    else:
                        await self.on_book(ev)
                except Exception as e:  # reported, counted, survived
                    self.broker.report("stops", f"trigger evaluation failed: {type(e).__name__}: {e}")
        raise asyncio.CancelledError

    async def on_trades(self, ev: TradeEvent) -> None:
        if not ev.trades:
            return
        self.last_price[ev.symbol] = D(ev.trades[-1].price)
        if self.trigger_source != "last":
            return
        await self._release_pending(ev.symbol)
        if not self._by_symbol.get(ev.symbol):
            return
        for t in ev.trades:
            p = D(t.price)
            await self._evaluate(ev.symbol, lambda side: p, t.ts or None, "print", ev.received)

    async def on_book(self, ev: BookEvent) -> None:
        await self._release_pending(ev.symbol)
        if self.trigger_source != "bid_ask" or not self._by_symbol.get(ev.symbol):
            return
        bid = D(ev.best_bid) if ev.best_bid is not None else None
        ask = D(ev.best_ask) if ev.best_ask is not None else None
        await self._evaluate(ev.symbol, lambda side: bid if side == "sell" else ask, ev.ts, "bid/ask", ev.received)

    async def _evaluate(self, symbol: str, price_for: Any, ts: int | None, source: str, received: float) -> None:
        self._seen_ms[symbol] = now_ms()
        bounds = self._bounds(symbol)
        sell_p, buy_p = price_for("sell"), price_for("buy")
        # most prints reach no level: the nearest levels per side answer that without a loop
        near = ((sell_p is not None and ((bounds.sell_stop is not None and sell_p <= bounds.sell_stop)
                                         or (bounds.sell_take is not None and sell_p >= bounds.sell_take)))
                or (buy_p is not None and ((bounds.buy_stop is not None and buy_p >= bounds.buy_stop)
                                           or (bounds.buy_take is not None and buy_p <= bounds.buy_take))))
        cids = list(self._by_symbol.get(symbol, ())) if near else list(bounds.trailing)
        for cid in cids:
            o = self.held.get(cid)
            if o is None or o.trigger_state is not TriggerState.ARMED:
                continue
            p = sell_p if o.side == "sell" else buy_p
            if p is None:
                continue
            if o.type is OrderType.TRAILING_STOP and self._trail(o, p):
                self._dirty.add(cid)
            level = o.trigger_price
            if level is None or not trigger_hit(o.type, o.side.value, level, p):
                continue
            src = source if source != "bid/ask" else ("bid" if o.side == "sell" else "ask")
            await self.fire(cid, Trigger(p, ts, src, received))

    def _bounds(self, symbol: str) -> Bounds:
        b = self._bounds_cache.get(symbol)
        if b is None:
            b = Bounds()
            for cid in self._by_symbol.get(symbol, ()):
                o = self.held[cid]
                if o.trigger_state is not TriggerState.ARMED:
                    continue
                if o.type is OrderType.TRAILING_STOP:
                    b.trailing.append(cid)
                    continue
                level = o.trigger_price
                if level is None:
                    continue
                stop = o.type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT)
                if o.side == "sell":
                    if stop:
                        b.sell_stop = level if b.sell_stop is None else max(b.sell_stop, level)
                    else:
                        b.sell_take = level if b.sell_take is None else min(b.sell_take, level)
                elif stop:
                    b.buy_stop = level if b.buy_stop is None else min(b.buy_stop, level)
                else:
                    b.buy_take = level if b.buy_take is None else max(b.buy_take, level)
            self._bounds_cache[symbol] = b
        return b

    def _moved(self, symbol: str) -> None:
        """What is held on ``symbol`` (or a level) changed: its nearest levels are recomputed."""
        self._bounds_cache.pop(symbol, None)

    def _trail(self, o: OrderState, price: Decimal) -> bool:
        """Move a trailing stop with the market (only ever towards it); True if it moved."""
        if o.high_water is None:
            self._start_trailing(o, price)
            return o.high_water is not None
        better = price > o.high_water if o.side == "sell" else price < o.high_water
        if not better:
            return False
        o.high_water = price
        o.trigger_price = self._round_tick(o.symbol, trailing_trigger(o.side.value, price, o.trailing_pct,
                                                                      o.trailing_distance))
        return True

    # ---------------------------------------------------------------- firing
    async def fire(self, cid: str, why: Trigger) -> None:
        """Trigger ``cid``: stored as triggered, market siblings out of the way, then sent."""
        async with self.lock:
            await self._fire(cid, why)

    async def _fire(self, cid: str, why: Trigger) -> None:
        o = self.held.get(cid)
        if o is None or o.trigger_state is not TriggerState.ARMED:
            return
        b = self.broker
        o.trigger_state = TriggerState.TRIGGERED
        o.triggered_ms = now_ms()
        self._moved(o.symbol)
        detail = self._trigger_detail(o, why)
        # The trigger is written while the order goes out, not before: a commit on a busy disk
        # takes milliseconds the market does not wait. Nothing is lost either way: the order carries
        # its own client id, so after a crash a stored-armed (or stored-triggered) order is looked up
        # on the venue first (load()), and every later write of this order waits for this one
        # (BaseBroker.commit), so the rows stay in order.
        if b.mode == "paper":
            # paper is its own venue: the trigger's event rides in the fill's transaction (a crash
            # before it leaves the stop armed, and the blind-window check fires it at the restart)
            b.stash_event(cid, detail)
        else:
            write = asyncio.ensure_future(b.store.save(o.copy(), from_status=o.status, to_status=o.status,
                                                       detail=detail))
            b.write_first(cid, write)
        self.fired += 1
        late = why.ts is not None and o.triggered_ms - why.ts > LATE_MS
        if late or why.source.startswith("blind"):
            b.report("stop_late", detail, client_order_id=cid, symbol=o.symbol, trigger=o.trigger_price,
                     price=why.price, late_ms=(o.triggered_ms - why.ts) if why.ts is not None else None)
        b.publish(order_update(o, o.status))
        self._cancel_held_siblings(o)
        self._hand_over(o, why)

    def _trigger_detail(self, o: OrderState, why: Trigger) -> str:
        level = o.trigger_price
        rel = "<=" if (o.side == "sell") == (o.type in (OrderType.STOP_MARKET, OrderType.STOP_LIMIT,
                                                         OrderType.TRAILING_STOP)) else ">="
        text = f"triggered: {why.source} {_num(why.price)} {rel} {o.type.value} level {_num(level)}"
        blind = why.source.startswith("blind")
        if why.ts is not None and o.triggered_ms is not None and level and (blind or o.triggered_ms - why.ts > LATE_MS):
            far = abs(why.price - level) / level * HUNDRED
            text += (f"; fired {max(0, o.triggered_ms - why.ts) / 1000:.1f} s late, {far:.2f}% beyond the level "
                     f"(the market was not seen then)")
        return text

    def _hand_over(self, o: OrderState, why: Trigger | None) -> None:
        """Under the lock, right after the trigger is stored: market-type OCO siblings held here
        stop now (synchronously: the next print must not fire them), the order leaves what is held,
        and its sending runs in its own task so the prints behind it are evaluated meanwhile."""
        cid = o.client_order_id
        self._unindex(cid)
        self.in_flight[cid] = o
        t = asyncio.get_running_loop().create_task(self._send_released(o, why), name=f"stops:send:{cid}")
        self._sending.add(t)
        t.add_done_callback(self._sending.discard)

    def _cancel_held_siblings(self, o: OrderState) -> None:
        """Both legs sell the same coins: the other legs stop now (they leave what is held at once;
        their rows are written in the background, ordered before anything else written of them)."""
        if not (o.oco_group and o.exec_type is OrderType.MARKET):
            return
        b = self.broker
        for sib in [c for c, x in self.held.items() if x.oco_group == o.oco_group and c != o.client_order_id]:
            x = self._unindex(sib)
            if x is None:
                continue
            new = x.copy()
            reason = f"OCO: leg {o.client_order_id} triggered"
            prev = new.transition(S.CANCELLED, reason)
            b.write_first(sib, asyncio.ensure_future(
                b.store.save(new, from_status=prev, to_status=new.status, detail=reason)))
            b.publish(order_update(new, prev))

    async def _send_released(self, o: OrderState, why: Trigger | None, *, resend: bool = False) -> None:
        """Send a triggered order: OCO legs working at the venue cancelled first (they lock the
        coins), reduce-only amount, then the broker's own path (record, send, look up if ambiguous)."""
        b = self.broker
        cid = o.client_order_id
        try:
            if o.oco_group and o.exec_type is OrderType.MARKET:
                for sib in [c for c, x in b.orders.items() if x.oco_group == o.oco_group and c != cid and x.is_working]:
                    await b._cancel_order(sib)
            amount = self._sendable(o)
            if amount <= 0:
                new = o.copy()
                reason = (f"not sent: nothing to {o.side.value} (the {o.type.value} protects "
                          f"{o.remaining:f} {self._base(o)}; none is held and free)")
                prev = new.transition(S.REJECTED, reason)
                await b.commit(new, prev, detail=reason)
                b.report("stop_unsendable", f"{cid} {o.symbol} {o.type.value} triggered but cannot be sent: {reason}",
                         client_order_id=cid, symbol=o.symbol, side=o.side.value, amount=o.remaining)
                return
            if o.side == "buy" and b.risk.killed:
                # a buy trigger adds risk: the kill switch stops it (a protective sell passes)
                new = o.copy()
                reason = f"not sent: kill switch engaged ({b.risk.kill_reason})"
                prev = new.transition(S.REJECTED, reason)
                await b.commit(new, prev, detail=reason)
                return
            if amount < o.amount:
                o.reason = f"reduce-only: amount {o.amount:f} cut to {amount:f} (what is held and free)"
                o.amount = amount
            o.trigger_state = TriggerState.WORKING
            if why is not None:
                self.fire_latency.append(time.perf_counter() - why.received)
            try:
                await b._release(o, resend=resend)
            except Exception as e:  # a sent-or-not answer the broker could not settle: alert, reconcile
                b.report("stop_unsendable", f"{cid} {o.symbol} {o.type.value} triggered, sending failed: "
                         f"{type(e).__name__}: {e}", client_order_id=cid, symbol=o.symbol)
                return
            cur = b.orders.get(cid) or await b.store.order(cid)
            if cur is not None and cur.status is S.REJECTED:
                b.report("stop_unsendable", f"{cid} {o.symbol} {o.type.value} triggered but the order was refused: "
                         f"{cur.reason}", client_order_id=cid, symbol=o.symbol, side=o.side.value, amount=o.amount)
        except Exception as e:
            b.report("stop_unsendable", f"{cid} {o.symbol} {o.type.value} triggered, sending failed: "
                     f"{type(e).__name__}: {e}", client_order_id=cid, symbol=o.symbol)
        finally:
            self.in_flight.pop(cid, None)

    def _base(self, o: OrderState) -> str:
        return str((self.broker.markets.get(o.symbol) or {}).get("base", ""))

    def _sendable(self, o: OrderState) -> Decimal:
        """Spot is reduce-only: a sell never more than what is held and not locked by other orders."""
        if o.side != "sell":
            return o.remaining
        free = self.broker.free_base(o.symbol, excluding=o.client_order_id)
        amount = min(o.remaining, max(free, ZERO))
        return self._floor_step(o.symbol, amount)

    def _floor_step(self, symbol: str, amount: Decimal) -> Decimal:
        from .orders import TICK_SIZE, _step

        m = self.broker.markets.get(symbol) or {}
        step = _step((m.get("precision") or {}).get("amount"), self.broker.precision_mode)
        if step is None or self.broker.precision_mode != TICK_SIZE or amount <= 0:
            return max(amount, ZERO)
        return round_to_step(amount, step, ROUND_DOWN)

    async def release_pending(self) -> None:
        await self._release_pending(None)

    async def _release_pending(self, symbol: str | None) -> None:
        """Orders stored as triggered before a restart: sent now (paper: once its book is in)."""
        if not self._pending_release:
            return
        for cid, why in list(self._pending_release.items()):
            o = self.held.get(cid)
            if o is None:
                self._pending_release.pop(cid, None)
                continue
            if symbol is not None and o.symbol != symbol:
                continue
            if self.broker.mode == "paper" and o.symbol not in self.broker.books:
                continue
            self._pending_release.pop(cid, None)
            self.broker.report("stop_resent", f"{cid} {o.symbol} {o.type.value} was triggered before the restart: "
                               "sent now, whatever the price", client_order_id=cid, symbol=o.symbol)
            async with self.lock:
                if cid not in self.held:
                    continue
                self._cancel_held_siblings(o)
                self._unindex(cid)
                self.in_flight[cid] = o
            await self._send_released(o, None, resend=True)

    # ---------------------------------------------------------------- contingencies
    def notice(self, o: OrderState) -> None:
        """An order of an OCO group or a bracket entry changed: its group is checked (soon, outside
        the broker's lock)."""
        self._checks.put_nowait(o.client_order_id)

    async def _contingencies(self) -> None:
        while True:
            cid = await self._checks.get()
            try:
                await self.check(cid)
            except Exception as e:
                self.broker.report("stops", f"OCO/bracket check of {cid} failed: {type(e).__name__}: {e}")

    async def drain(self) -> None:
        """Wait until every triggered order being sent is handed over (tests, shutdown)."""
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    async def settle(self) -> None:
        """Process every pending OCO/bracket check now (tests, shutdown)."""
        while not self._checks.empty():
            await self.check(self._checks.get_nowait())

    async def check(self, cid: str) -> None:
        async with self.lock:
            await self._check(cid)

    async def _check(self, cid: str) -> None:
        b = self.broker
        o = b.orders.get(cid) or self.held.get(cid) or await b.store.order(cid)
        if o is None:
            return
        if o.is_bracket and o.filled > 0:
            await self._protect_bracket(o)
        if o.oco_group and o.trigger_state is not None:
            await self._settle_group(o.oco_group)

    async def _settle_groups(self) -> None:
        groups = {o.oco_group for o in list(self.held.values()) + list(self.broker.orders.values()) if o.oco_group}
        for g in groups:
            await self._settle_group(g)  # type: ignore[arg-type]

    async def _settle_group(self, group: str) -> None:
        """One leg filled: the others are cancelled; a partial fill: held siblings shrink to what is left."""
        b = self.broker
        legs = [x for x in await b.store.group(group) if x.trigger_state is not None]
        filled = [x for x in legs if x.status is S.FILLED]
        if len(filled) > 1:
            ids = ", ".join(x.client_order_id for x in filled)
            b.report("oco_both_filled", f"OCO group {group}: more than one leg filled ({ids}): the venue filled both",
                     oco_group=group, symbol=filled[0].symbol)
        if filled:
            await self._cancel_group(group, keep=filled[0].client_order_id,
                                    reason=f"OCO: leg {filled[0].client_order_id} filled")
            return
        partial = [x for x in legs if x.filled > 0 and x.is_working]
        if partial:
            left = partial[0].remaining
            for x in list(self.held.values()):
                if x.oco_group == group and x.client_order_id != partial[0].client_order_id and x.amount > left:
                    x.amount = left
                    await b.store.save(x, from_status=x.status, to_status=x.status,
                                       detail=f"OCO: leg {partial[0].client_order_id} partly filled, {left:f} left")
                    b.publish(order_update(x, x.status))

    async def _protect_bracket(self, entry: OrderState) -> None:
        """A bracket entry's OCO legs, sized to what filled (net of base-coin fees, down to the step);
        they grow with further fills; legs already triggered or at the venue are left as they are."""
        b = self.broker
        group = entry.oco_group or entry.client_order_id
        protect = self._floor_step(entry.symbol, await self._net_filled(entry))
        if protect <= 0 or entry.avg_price is None:
            return
        legs = [x for x in await b.store.group(group) if x.parent_id == entry.client_order_id]
        done = sum((x.filled for x in legs), ZERO)
        want = protect - done
        held = [self.held[x.client_order_id] for x in legs if x.client_order_id in self.held]
        if legs and not held:
            return  # the legs fired or were cancelled: nothing more to protect here
        exit_side = Side.SELL if entry.side == "buy" else Side.BUY
        levels = self._bracket_levels(entry)
        if not legs:
            new: list[OrderState] = []
            base = dict(mode=b.mode, exchange=b.exchange, symbol=entry.symbol, side=exit_side, amount=want,
                        placement=self.placement(), trigger_state=TriggerState.ARMED, oco_group=group,
                        parent_id=entry.client_order_id, price=None)
            if levels.get("stop") is not None:
                new.append(OrderState(client_order_id=leg_id(entry.client_order_id), type=OrderType.STOP_MARKET,
                                      trigger_price=levels["stop"], **base))  # type: ignore[arg-type]
            if entry.trailing_stop_pct is not None:
                t = OrderState(client_order_id=leg_id(entry.client_order_id), type=OrderType.TRAILING_STOP,
                               trailing_pct=entry.trailing_stop_pct, **base)  # type: ignore[arg-type]
                self._start_trailing(t, entry.avg_price)
                new.append(t)
            if levels.get("take") is not None:
                new.append(OrderState(client_order_id=leg_id(entry.client_order_id), type=OrderType.TAKE_PROFIT,
                                      trigger_price=levels["take"], **base))  # type: ignore[arg-type]
            if new:
                await self._arm(new, detail=f"bracket of {entry.client_order_id}: {want:f} filled and protected")
            return
        for x in held:
            changed = False
            if x.amount != want and want > 0:
                x.amount, changed = want, True
            lvl = levels.get("stop") if x.type is OrderType.STOP_MARKET else levels.get("take") if x.type is OrderType.TAKE_PROFIT else None
            if lvl is not None and x.trigger_price != lvl:
                x.trigger_price, changed = lvl, True
                self._moved(x.symbol)
            if changed:
                await b.store.save(x, from_status=x.status, to_status=x.status,
                                   detail=f"bracket of {entry.client_order_id}: protects {want:f}")
                b.publish(order_update(x, x.status))

    def _bracket_levels(self, entry: OrderState) -> dict[str, Decimal | None]:
        avg = entry.avg_price or ZERO
        long = entry.side == "buy"
        stop, take = entry.stop_loss_price, entry.take_profit_price
        if stop is None and entry.stop_loss_pct is not None:
            f = 1 - entry.stop_loss_pct / HUNDRED if long else 1 + entry.stop_loss_pct / HUNDRED
            stop = self._round_tick(entry.symbol, avg * f)
        if take is None and entry.take_profit_pct is not None:
            f = 1 + entry.take_profit_pct / HUNDRED if long else 1 - entry.take_profit_pct / HUNDRED
            take = self._round_tick(entry.symbol, avg * f)
        return {"stop": stop, "take": take}

    async def _net_filled(self, entry: OrderState) -> Decimal:
        """What the entry bought, less any fee paid in the base coin (it never reached the account)."""
        base = self._base(entry)
        rows = await self.broker.store.fills_for(entry.client_order_id)
        fee = sum((r.fee for r in rows if r.fee_currency == base), ZERO)
        filled = sum((r.amount for r in rows), ZERO) or entry.filled
        return filled - fee

    # ---------------------------------------------------------------- blind windows
    async def check_blind_window(self, *, reason: str) -> None:
        """Armed orders whose level the market crossed while TPS19 could not see it fire now."""
        client = getattr(self.broker, "client", None) or getattr(self.broker, "venue_client", None)
        if client is None:
            return
        now = now_ms()
        by_symbol: dict[str, list[OrderState]] = {}
        for o in self.held.values():
            if (o.trigger_state is TriggerState.ARMED and o.checked_ms is not None
                    and now - o.checked_ms > self.blind_after_ms):
                by_symbol.setdefault(o.symbol, []).append(o)
        for symbol, orders in by_symbol.items():
            since = min(o.checked_ms or now for o in orders)
            prints, source = await self._history(client, symbol, since)
            if prints is None:
                continue
            for o in orders:
                hit = self._first_crossing(o, prints)
                if hit is not None:
                    await self.fire(o.client_order_id, Trigger(hit[1], hit[0], f"blind-window {source} ({reason})"))
                elif o.client_order_id in self.held:
                    o.checked_ms = now
                    self._dirty.add(o.client_order_id)

    async def _history(self, client: Any, symbol: str, since: int) -> tuple[list[tuple[int, Decimal]] | None, str]:
        """(ts, price) of the venue's prints since ``since`` (its 1m candles' lows and highs if the
        prints cannot be read), oldest first."""
        try:
            trades = await asyncio.wait_for(client.fetch_trades(symbol, since, 1000), 10)
            pts = sorted((int(t["timestamp"]), D(t["price"])) for t in trades
                         if t.get("timestamp") is not None and int(t["timestamp"]) >= since)
            return pts, "prints"
        except Exception as e:
            self.broker.report("stops", f"{symbol}: venue prints for the blind window unavailable "
                               f"({type(e).__name__}); reading 1m candles")
        try:
            candles = await asyncio.wait_for(client.fetch_ohlcv(symbol, "1m", since - 60_000, 1000), 10)
        except Exception as e:
            self.broker.report("stops", f"{symbol}: no prints nor candles for the blind window "
                               f"({type(e).__name__}: {e}); stops there were not checked for it")
            return None, ""
        pts = []
        for c in candles:
            if c[0] + 60_000 <= since:
                continue
            # within a minute the order of low and high is unknown: both are offered at its start
            pts.append((int(c[0]), D(c[3])))
            pts.append((int(c[0]), D(c[2])))
        return pts, "candles"

    def _first_crossing(self, o: OrderState, prints: Iterable[tuple[int, Decimal]]) -> tuple[int, Decimal] | None:
        probe = o.copy()
        for ts, p in prints:
            if probe.type is OrderType.TRAILING_STOP:
                self._trail(probe, p)
            if probe.trigger_price is not None and trigger_hit(probe.type, probe.side.value, probe.trigger_price, p):
                o.high_water, o.trigger_price = probe.high_water, probe.trigger_price
                return ts, p
        return None

    # ---------------------------------------------------------------- persistence
    async def _persist_loop(self) -> None:
        while True:
            await asyncio.sleep(PERSIST_INTERVAL_S)
            try:
                await self._flush()
            except Exception as e:
                self.broker.report("db", f"trailing stops' marks not written: {e}")

    async def _flush(self, force: bool = False) -> None:
        now = now_ms()
        for o in self.held.values():
            seen = self._seen_ms.get(o.symbol)
            if seen is not None and o.trigger_state is TriggerState.ARMED:
                o.checked_ms = seen
        due = set(self._dirty)
        for cid, o in self.held.items():
            if o.checked_ms and (force or o.checked_ms - self._persisted_checked.get(cid, 0) > CHECKED_INTERVAL_MS):
                due.add(cid)
        rows = [self.held[c] for c in due if c in self.held]
        self._dirty.clear()
        if not rows:
            return
        await self.broker.store.update_orders(rows)
        for o in rows:
            self._persisted_checked[o.client_order_id] = o.checked_ms or now
            if o.type is OrderType.TRAILING_STOP:
                self.broker.publish(order_update(o, o.status))
