"""What paper and live brokers share: order book-keeping, commit-then-publish, the kill switch.

``place`` is the one way in: the order entry (validation, then the risk stage) admits or refuses
every order first; a broker only ever executes admitted orders (``_submit``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from decimal import Decimal
from typing import Any

from ...numbers import NumberError, to_decimal
from ..events import BookEvent
from .events import KillSwitchEvent, OrderUpdate, TradingIssue
from .entry import BookQuotes, OrderEntry
from .records import order_update
from .orders import (
    TICK_SIZE,
    D_or_none,
    OrderRequest,
    OrderState,
    OrderStatus,
    OrderType,
    Side,
    ValidatedOrder,
    new_client_order_id,
    one_reserve_per_list,
)
from .portfolio import Portfolio
from .risk import RiskEngine, utc_day_start_ms
from .store import FillRecord, TradingStore

log = logging.getLogger(__name__)
PRETRADE = "not sent: "


def _bookable(x: Any) -> Decimal | None:
    """What a rejected order records of the number it was given: the number if it is sane,
    else nothing (1e999999 in a row would break every screen and sum that reads it)."""
    try:
        return to_decimal(x, "value")
    except NumberError:
        return None


class BaseBroker:
    mode = "base"

    def __init__(self, *, bus: Any, store: TradingStore, portfolio: Portfolio, markets: dict[str, dict],
                 risk: RiskEngine, exchange: str, precision_mode: int = TICK_SIZE,
                 stop_trigger: str = "last", stop_placement: str = "auto") -> None:
        self.bus = bus
        self.store = store
        self.portfolio = portfolio
        self.markets = markets
        self.risk = risk
        self.exchange = exchange
        self.precision_mode = precision_mode
        self.orders: dict[str, OrderState] = {}  # working orders by client id
        self.books: dict[str, BookEvent] = {}
        self.entry = OrderEntry(risk, BookQuotes(markets, self.books, portfolio), precision_mode=precision_mode)
        self.issues: dict[str, int] = {}
        self.lock = asyncio.Lock()
        # orders whose first write is deferred to their first state change (one transaction):
        # client id -> (the "new" OrderUpdate to publish after that commit, detail)
        self._pending_insert: dict[str, tuple[OrderUpdate, str | None]] = {}
        self._background: set[asyncio.Task] = set()
        # a write of an order still in flight (the emulator's trigger): the order's next write waits for it
        self._writes: dict[str, asyncio.Future[Any]] = {}
        # events of an order to write with its next change (paper: a stop's trigger rides with its fill)
        self._stashed: dict[str, list[str]] = {}
        if portfolio is not None and risk is not None:  # (a bare broker in a unit test has neither)
            portfolio.locked_source = self.locked_balances
            portfolio.pnl_today_source = risk.pnl_today
            portfolio.day_start_sink = risk.set_day_start
        if bus is not None:
            bus.on(BookEvent, self._on_book_sync)
        from .emulator import StopEmulator

        # protective orders TPS19 holds until their trigger (emulator.py)
        self.emulator = StopEmulator(self, trigger_source=stop_trigger, placement=stop_placement)

    def locked_balances(self) -> dict[str, Decimal]:
        """What working orders lock per currency (a live broker may answer with the venue's own)."""
        from .marks import plain_locked

        return plain_locked(lambda: [o for o in self.orders.values() if o.is_working], self.markets)

    # ---------------------------------------------------------------- helpers
    def _on_book_sync(self, ev: BookEvent) -> None:
        self.books[ev.symbol] = ev

    def report(self, kind: str, message: str, **fields: Any) -> None:
        n = self.issues[kind] = self.issues.get(kind, 0) + 1
        # on the bus the issue is an event with its fields; the log record says it was published
        # so a log sink that also writes bus issues can skip the duplicate
        log.warning("%s: %s (#%d)", kind, message, n, extra={"tps19_issue": self.bus is not None})
        if self.bus is not None:
            self.bus.publish(TradingIssue(kind, message, n, fields={k: v for k, v in fields.items() if v is not None}))

    def publish(self, ev: Any) -> None:
        if self.bus is not None:
            self.bus.publish(ev)

    def open_orders(self, symbol: str | None = None, *, protective: bool = True) -> list[OrderState]:
        """Working orders, the protective ones TPS19 holds included (``protective=False``: entries only)."""
        out = [o.copy() for o in self.orders.values() if o.is_working and (symbol is None or o.symbol == symbol)]
        if protective:
            out += self.emulator.orders(symbol)
        else:
            out = [o for o in out if o.trigger_state is None]
        return out

    def free_base(self, symbol: str, *, excluding: str | None = None) -> Decimal:
        """The base coin held and not locked by working sells (but ``excluding``'s)."""
        m = self.markets.get(symbol) or {}
        base = m.get("base", "")
        locked = sum((o.remaining for o in one_reserve_per_list(self.orders.values())
                      if o.is_working and o.side == "sell" and o.client_order_id != excluding
                      and (self.markets.get(o.symbol) or {}).get("base") == base
                      and (o.price is not None or o.trigger_state is not None)), Decimal(0))
        return self.portfolio.balances.get(base, Decimal(0)) - locked

    async def load_counts(self) -> None:
        self.risk.orders_today = await self.store.orders_since(utc_day_start_ms())
        await self.load_kill_state()

    def write_first(self, client_order_id: str, write: asyncio.Future[Any]) -> None:
        """``write`` (of this order's row) must land before anything else written of it."""
        prior = self._writes.get(client_order_id)
        self._writes[client_order_id] = write

        def done(f: asyncio.Future[Any]) -> None:
            if self._writes.get(client_order_id) is f:
                del self._writes[client_order_id]
            if not f.cancelled() and f.exception() is not None:
                self.report("db", f"{client_order_id}: a protective order's state was not written: {f.exception()}")
        write.add_done_callback(done)
        if prior is not None and not prior.done():
            # (never happens for one trigger; kept so a second write cannot overtake a first)
            self.background(asyncio.wait([prior]), "ordering writes")

    def stash_event(self, client_order_id: str, detail: str) -> None:
        """An event of an order (status unchanged) written in the transaction of its next change."""
        self._stashed.setdefault(client_order_id, []).append(detail)

    async def written(self, client_order_id: str) -> None:
        """Wait for an order's pending write (see ``write_first``); a failed one was reported."""
        w = self._writes.get(client_order_id)
        if w is not None:
            await asyncio.wait([w])

    # ---------------------------------------------------------------- commit then publish
    async def commit(self, order: OrderState, prev: OrderStatus | None, *, insert: bool = False,
                     changed: bool = True, fills: Iterable[FillRecord] = (), detail: str | None = None,
                     **extra: Any) -> list[FillRecord]:
        """Persist an order change (with its fills and the balances they move) atomically,
        then update the portfolio and publish. Raises if the database write fails."""
        if self._writes:
            await self.written(order.client_order_id)
        fills = list(fills)
        balances = self.portfolio.preview_balances(fills) if fills else None
        pending = self._pending_insert.pop(order.client_order_id, None)
        stashed = self._stashed.pop(order.client_order_id, [])
        prior: list[tuple[OrderStatus | None, OrderStatus, str | None]] = (
            [(None, OrderStatus.NEW, pending[1])] if pending is not None else [])
        # stashed events happened before this change, in the status the order had then
        was = prev if prev is not None else order.status
        prior += [(was, was, d) for d in stashed]
        try:
            new = await self.store.save(
                order, insert=insert or pending is not None, from_status=prev,
                to_status=order.status if changed else None, detail=detail, fills=fills, balances=balances,
                prior_events=prior, **extra,
            )
        except BaseException:
            if pending is not None:
                self._pending_insert[order.client_order_id] = pending
            if stashed:
                self._stashed[order.client_order_id] = stashed
            raise
        if pending is not None:
            self.publish(pending[0])
        if len(new) != len(fills):
            # some were booked before (a caller bug if it happens): the database is right, so the
            # order's filled/avg/fee are recomputed from its booked fills and written again
            self.report("duplicate-fill", f"{len(fills) - len(new)} fill(s) of {order.client_order_id} were already booked")
            rows = await self.store.fills_for(order.client_order_id)
            order.filled, order.avg_price, order.fee = Decimal(0), None, Decimal(0)
            for r in rows:
                order.add_fill(r.price, r.amount, self.portfolio.fee_in_quote(r.symbol, r.fee, r.fee_currency, r.price))
            await self.store.save(order)
        symbols = set()
        for f in new:
            self.portfolio.apply_fill(f)
            symbols.add(f.symbol)
            self.publish(f.to_event(self.mode))
        if order.is_working:
            self.orders[order.client_order_id] = order
        else:
            self.orders.pop(order.client_order_id, None)
        if self.portfolio.publisher is not None:
            self.portfolio.publisher.touch()  # what orders lock changed: balances free/locked follow
        # a write that changed no status (a venue id learnt, a queue position) says so: a reader
        # must not take it for a new order
        self.publish(order_update(order, prev if changed else order.status))
        for s in symbols:
            self.publish(self.portfolio.position_event(s))
        if new and self.portfolio.publisher is not None:
            self.portfolio.publisher.publish_now()  # the fills' portfolio in the same batch (marks.py)
        if (order.oco_group and order.trigger_state is not None) or (order.is_bracket and new):
            self.emulator.notice(order)  # OCO siblings, a bracket's legs: checked outside this lock
        return new

    def _new_state(self, req: OrderRequest, v: ValidatedOrder | None) -> OrderState:
        o = OrderState(
            client_order_id=req.client_order_id or new_client_order_id(),
            mode=self.mode, exchange=self.exchange, symbol=req.symbol,
            side=v.side if v else Side.parse(req.side), type=v.type if v else OrderType.parse(req.type),
            amount=v.amount if v else (_bookable(req.amount) or Decimal(0)),
            price=v.price if v else _bookable(req.price),
            trigger_price=v.trigger_price if v else _bookable(req.trigger_price),
        )
        if v is not None and v.is_bracket:
            # a bracket: its protection is placed as an OCO, sized to what fills (emulator.py)
            o.stop_loss_price, o.take_profit_price = v.stop_loss_price, v.take_profit_price
            o.stop_loss_pct, o.take_profit_pct, o.trailing_stop_pct = v.stop_loss_pct, v.take_profit_pct, v.trailing_stop_pct
            o.oco_group = req.oco_group or o.client_order_id
        return o

    async def _reject(self, req: OrderRequest, reason: str) -> OrderState:
        """A pre-trade rejection: recorded and published, never sent, not counted."""
        o = self._new_state(req, None)
        prev = o.transition(OrderStatus.REJECTED, PRETRADE + reason)
        self.risk.rejections += 1
        try:
            await self.store.save(o, insert=True, from_status=None, to_status=OrderStatus.NEW, detail="received")
            await self.commit(o, prev, detail=reason)
        except Exception as e:
            self.report("db", f"could not record rejected order: {e}")
            self.publish(order_update(o, prev))
        return o

    async def prepare(self, req: OrderRequest) -> tuple[OrderState | None, ValidatedOrder | None, OrderState | None]:
        """Order entry. Returns (new order, validated, None) or (None, None, rejected order)."""
        admission = self.entry.admit(req)
        if admission.order is None:
            return None, None, await self._reject(req, admission.reason or "refused")
        v = admission.order
        if req.client_order_id and (req.client_order_id in self.orders or await self.store.order(req.client_order_id)):
            return None, None, await self._reject(
                OrderRequest(req.symbol, req.side, req.type, req.amount, req.price),
                f"client order id {req.client_order_id} was already used",
            )
        self.risk.count()
        return self._new_state(req, v), v, None

    async def place_order(self, symbol: str, side: str, type: str, amount: Any, price: Any = None,
                          client_order_id: str | None = None) -> OrderState:
        def dec(x: Any) -> Any:
            if x is None or isinstance(x, Decimal):
                return x
            return D_or_none(x) if D_or_none(x) is not None else x
        return await self.place(OrderRequest(symbol, side, type, dec(amount), dec(price), client_order_id))

    async def place(self, req: OrderRequest) -> OrderState:
        """Place an order. Never raises: a failure comes back as a rejected order with a reason
        (if the failure happened after the order was recorded, its record stays for
        reconciliation)."""
        try:
            return await self._place(req)
        except Exception as e:
            self.report("place", f"placing {req.symbol} {req.side} {req.amount} failed: {type(e).__name__}: {e}")
            o = self._new_state(req, None)
            o.transition(OrderStatus.REJECTED, f"internal error: {type(e).__name__}: {e}")
            return o

    async def _place(self, req: OrderRequest) -> OrderState:
        from .orders import PROTECTIVE_TYPES

        if OrderType.parse(req.type) in PROTECTIVE_TYPES or req.type == OrderType.OCO.value:
            await self._before_entry(req)
            return await self.emulator.place(req)
        await self._before_entry(req)
        o, v, rejected = await self.prepare(req)
        if rejected is not None:
            return rejected
        assert o is not None and v is not None
        return await self._submit(o, v)

    async def _before_entry(self, req: OrderRequest) -> None:
        """A broker's chance to make the market view current before the order is checked."""

    async def _submit(self, o: OrderState, v: ValidatedOrder) -> OrderState:  # pragma: no cover - abstract
        """Execute an admitted order (recorded as ``o``, validated as ``v``)."""
        raise NotImplementedError

    async def _release(self, o: OrderState, *, resend: bool = False) -> None:  # pragma: no cover - abstract
        """Execute a triggered protective order (already stored as triggered) as the market or limit
        order it becomes, under its own client order id. ``resend``: it was triggered before a restart."""
        raise NotImplementedError

    async def _submit_oco(self, legs: list[OrderState], detail: str | None) -> OrderState:  # pragma: no cover - abstract
        """Record an OCO's two legs and place them on the venue as one list (live only: paper
        emulates every OCO); returns the stop leg."""
        raise NotImplementedError

    async def _cancel_order(self, client_order_id: str) -> OrderState | None:  # pragma: no cover - abstract
        raise NotImplementedError

    async def cancel(self, client_order_id: str, *, group: bool = True) -> OrderState | None:
        """Cancel one order; a leg of an OCO group cancels the whole group (``group=False``: the leg)."""
        o = self.emulator.held.get(client_order_id) or self.orders.get(client_order_id)
        if o is None or not o.is_working:
            return None
        if group and o.oco_group and o.trigger_state is not None:
            await self.emulator.cancel_group(o.oco_group, keep=client_order_id,
                                             reason=f"OCO: leg {client_order_id} cancelled")
        if self.emulator.holds(client_order_id):
            return await self.emulator.cancel(client_order_id)
        return await self._cancel_order(client_order_id)

    async def cancel_all(self, symbol: str | None = None, *, protective: bool = True) -> int:
        """Cancel working orders (of ``symbol``); ``protective=False`` keeps stops and take-profits."""
        n = 0
        for o in list(self.orders.values()) + (list(self.emulator.held.values()) if protective else []):
            if o.is_working and (symbol is None or o.symbol == symbol) and (protective or o.trigger_state is None):
                r = await self.cancel(o.client_order_id, group=False)
                if r is not None and r.status is OrderStatus.CANCELLED:
                    n += 1
        return n

    async def kill(self, reason: str = "kill switch") -> int:
        """Block new orders, then cancel every open entry on every symbol. Protective orders keep
        working: a triggered stop only reduces a position and passes the switch (docs/orders.md)."""
        self.risk.engage(reason)
        try:
            await self.store.set_kill_state(True, reason)
        except Exception as e:  # the in-memory block holds regardless
            self.report("db", f"kill switch state not persisted: {e}")
        failed = 0
        try:
            n = await self.cancel_all(protective=False)
        except Exception as e:
            self.report("kill", f"cancel-all during kill failed: {e}")
            n = 0
        failed = sum(1 for o in self.orders.values() if o.is_working and o.trigger_state is None)
        self.publish(KillSwitchEvent(True, n, failed, reason))
        return n

    def release(self) -> None:
        """Allow new orders again (the kill switch stays engaged across restarts until this).
        Synchronous for UI callbacks; the released state is written in the background (if that
        write is lost, the switch comes back engaged after a restart: the safe side)."""
        self.risk.release()
        self.publish(KillSwitchEvent(False, detail="released"))
        self.background(self.store.set_kill_state(False, ""), "kill switch release not persisted")

    def background(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception as e:
                self.report("background", f"{what}: {e}")
        try:
            t = asyncio.get_running_loop().create_task(run())
        except RuntimeError:  # no loop: nothing to persist into
            coro.close()
            return
        self._background.add(t)
        t.add_done_callback(self._background.discard)

    async def drain_background(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    async def load_kill_state(self) -> None:
        engaged, reason = await self.store.kill_state()
        if engaged:
            self.risk.engage(reason)
            self.report("kill", f"kill switch still engaged from before the restart ({reason}); release it to trade")
            self.publish(KillSwitchEvent(True, detail=f"still engaged: {reason}"))

    @property
    def killed(self) -> bool:
        return self.risk.killed

