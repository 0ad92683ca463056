"""Paper broker: simulated execution against the live venue's L2 book and trades.

* Market orders (and the marketable part of limit/IOC orders) walk the book level by level;
  the fill is booked per level (VWAP and slippage visible), taker fee.
* Limit orders rest. Queue position = visible size at that price on our side when placed;
  a venue trade at our price first eats that queue, the rest fills us (partial fills); a
  trade through our price fills the rest. Maker fee.
* Paper orders have no impact on the venue, so the liquidity our own taker fills consumed is
  remembered per price level and subtracted from what the venue shows, until the venue's
  book moves past that level (the level disappears from the shown range).
* Balances, open orders and queue positions are in SQLite and survive a restart.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from decimal import Decimal
from typing import Any

from ...aio import cancel_and_wait
from .book_walk import walk_levels
from ...aio import cancel_requested
from ..events import BookEvent, TradeEvent, now_ms
from .base import BaseBroker
from .entry import locked_balances
from .events import ExecutionEvent
from .records import order_update
from .orders import D, OrderState, OrderStatus, OrderType, ValidatedOrder, fee_rate
from .store import FillRecord

log = logging.getLogger(__name__)
ZERO = Decimal(0)


def _levels(levels: Any) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(s)) for p, s in levels]


class PaperBroker(BaseBroker):
    mode = "paper"

    def __init__(self, *, starting_balances: dict[str, Decimal] | None = None, latency_s: float = 0.0,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.starting_balances = {k: D(v) for k, v in (starting_balances or {}).items()}
        self.latency_s = latency_s
        # consumed[(symbol, "asks"|"bids")][price] = size our paper taker fills took at that level
        self.consumed: dict[tuple[str, str], dict[Decimal, Decimal]] = {}
        self.queue: dict[str, Decimal] = {}  # resting order -> size ahead of it at its price
        self._sub = None
        self._task: asyncio.Task | None = None
        self._judging = False  # a batch of market events is being judged
        self._idle = asyncio.Event()  # set whenever the loop has judged everything published
        self.fills_booked = 0
        # told of each market event the broker judges resting orders on (a recording keeps where)
        self.on_processed: Any = None
        self.last_fill_latency: list[float] = []  # trade received -> fill committed (s), for benchmarks
        self.venue_client: Any = None  # market data only: the venue's prints for a stop's blind window

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        bal = await self.store.balances()
        if not bal and self.starting_balances:
            bal = dict(self.starting_balances)
            await self.store.save(None, balances=bal)
        self.portfolio.balances = dict(bal)
        self.portfolio.replay(await self.store.fills(), await self.store.adjustments())
        await self.load_counts()
        queues = await self.store.queue_states()
        for o in await self.store.working_orders():
            if o.status is OrderStatus.NEW:
                # it never reached the paper venue (restart during the simulated latency)
                prev = o.transition(OrderStatus.EXPIRED, "not executed: restarted before it reached the paper venue")
                await self.commit(o, prev, detail=o.reason, drop_queue=True)
                continue
            self.orders[o.client_order_id] = o
            self.queue[o.client_order_id] = queues.get(o.client_order_id, ZERO)
        if self.bus is not None and self._task is None:
            self._sub = self.bus.subscribe(BookEvent, TradeEvent, maxsize=100_000)
            self._task = asyncio.create_task(self._run(), name="paper-broker")
        await self.emulator.start()

    async def stop(self) -> None:
        await self.emulator.stop()
        await self.drain_background()
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    async def settled(self) -> None:
        """Return once every book and print published so far has been judged (a replay's end:
        its last print may fill a resting order before the figures are reported)."""
        while self._task is not None and not self._task.done() and self._sub is not None \
                and (self._judging or self._sub.pending()):
            self._idle.clear()
            waiter = asyncio.ensure_future(self._idle.wait())
            try:
                await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    async def _run(self) -> None:
        assert self._sub is not None
        while not cancel_requested():
            if not self._sub.pending():
                self._idle.set()
            events = await self._sub.wait(1.0)
            self._judging = True
            self._idle.clear()
            for ev in events:
                try:
                    async with self.lock:
                        if self.on_processed is not None and self._resting(ev.symbol):
                            self.on_processed(ev)
                        if isinstance(ev, TradeEvent):
                            await self.on_trades(ev)
                        elif isinstance(ev, BookEvent):
                            await self.on_book_cross(ev)
                except Exception as e:  # never let one bad event end the broker
                    self.report("paper", f"event handling failed: {e!r}")
            self._judging = False
        # some await swallowed the cancel (Python 3.11 wait_for): end as stop() asked
        raise asyncio.CancelledError

    # ---------------------------------------------------------------- book & consumed liquidity
    def _on_book_sync(self, ev: BookEvent) -> None:
        super()._on_book_sync(ev)
        if self.queue:
            # size ahead of us can only shrink to what the venue still shows at our price
            # (cancellations ahead of us); it is persisted with the order's next change
            shown_by_side: tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]] | None = None
            for o in self.orders.values():
                q = self.queue.get(o.client_order_id)
                if (not q or o.price is None or o.symbol != ev.symbol
                        or o.status not in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)):
                    continue
                if shown_by_side is None:
                    shown_by_side = dict(_levels(ev.bids)), dict(_levels(ev.asks))
                levels = shown_by_side[0] if o.side == "buy" else shown_by_side[1]
                best = ev.best_bid if o.side == "buy" else ev.best_ask
                if best is None:
                    continue
                shown = levels.get(o.price, ZERO)
                inside = (o.price >= D(best)) if o.side == "buy" else (o.price <= D(best))
                worst = min(levels) if o.side == "buy" else max(levels)
                within = (o.price >= worst) if o.side == "buy" else (o.price <= worst)
                if (inside or within) and shown < q:
                    self.queue[o.client_order_id] = shown
        for book_side, book_levels in (("asks", ev.asks), ("bids", ev.bids)):
            c = self.consumed.get((ev.symbol, book_side))
            if not c:
                continue
            if not book_levels:
                continue
            prices = {D(p) for p, _ in book_levels}
            last = D(book_levels[-1][0])
            for price in list(c):
                if price in prices:
                    continue
                beyond_depth = price > last if book_side == "asks" else price < last
                if not beyond_depth:  # the venue's book moved past this level
                    del c[price]

    def available(self, symbol: str, side: str) -> list[tuple[Decimal, Decimal]]:
        """The venue's levels on one side minus what our own fills consumed."""
        b = self.books.get(symbol)
        if b is None:
            return []
        c = self.consumed.get((symbol, side), {})
        out = []
        for p, s in _levels(b.asks if side == "asks" else b.bids):
            left = s - c.get(p, ZERO)
            if left > 0:
                out.append((p, left))
        return out

    def walk(self, symbol: str, side: str, amount: Decimal, limit: Decimal | None = None) -> list[tuple[Decimal, Decimal]]:
        """Levels a taker order would take (price, size), best first, not beyond ``limit``."""
        return walk_levels(self.available(symbol, "asks" if side == "buy" else "bids"), side, amount, limit)

    def consume(self, symbol: str, side: str, takes: list[tuple[Decimal, Decimal]]) -> None:
        c = self.consumed.setdefault((symbol, "asks" if side == "buy" else "bids"), {})
        for p, q in takes:
            c[p] = c.get(p, ZERO) + q

    # ---------------------------------------------------------------- balances
    def _locked(self) -> dict[str, Decimal]:
        return locked_balances(self.orders.values(), self.markets)

    def _check_funds(self, symbol: str, side: str, amount: Decimal, est_price: Decimal | None) -> str | None:
        m = self.markets.get(symbol) or {}
        base, quote = m.get("base", ""), m.get("quote", "")
        locked = self._locked()
        if side == "buy":
            if est_price is None:
                return None
            need = amount * est_price * (1 + fee_rate(m, "taker"))
            have = self.portfolio.balances.get(quote, ZERO) - locked.get(quote, ZERO)
            if need > have:
                return f"insufficient {quote}: need {need:f}, available {have:f}"
        else:
            have = self.portfolio.balances.get(base, ZERO) - locked.get(base, ZERO)
            if amount > have:
                return f"insufficient {base}: need {amount:f}, available {have:f}"
        return None

    def _fill(self, o: OrderState, price: Decimal, amount: Decimal, liquidity: str) -> FillRecord:
        m = self.markets.get(o.symbol)
        fee = price * amount * fee_rate(m, liquidity)
        o.add_fill(price, amount, fee)
        return FillRecord(
            fill_id=f"paper-{secrets.token_hex(10)}", client_order_id=o.client_order_id, venue_order_id=None,
            symbol=o.symbol, side=o.side, price=price, amount=amount, fee=fee,
            fee_currency=(m or {}).get("quote"), liquidity=liquidity, ts=now_ms(),
        )

    # ---------------------------------------------------------------- orders
    async def _submit(self, o: OrderState, v: ValidatedOrder) -> OrderState:
        notes = "; ".join(v.notes) or None
        if self.latency_s > 0:
            await self.store.save(o, insert=True, from_status=None, to_status=OrderStatus.NEW, detail=notes)
            self.publish(order_update(o, None))
            await asyncio.sleep(self.latency_s)
        else:
            # no simulated latency: the order's insert rides in the transaction of its first
            # state change (same rows and events, one commit)
            self._pending_insert[o.client_order_id] = (order_update(o, None), notes)
        async with self.lock:
            try:
                return (await self._execute(o)).copy()
            finally:
                self._pending_insert.pop(o.client_order_id, None)

    async def _release(self, o: OrderState, *, resend: bool = False) -> None:
        """A triggered protective order fills like any other: the book walk, taker fees for a market."""
        async with self.lock:
            await self._execute(o)

    async def _execute(self, o: OrderState) -> OrderState:
        book = self.books.get(o.symbol)
        self.publish(ExecutionEvent(o.client_order_id, o.symbol, book.seq if book else None, book.ts if book else None))
        new = o.copy()
        market = new.exec_type is OrderType.MARKET
        if market and book is None:
            prev = new.transition(OrderStatus.REJECTED, f"no order book for {o.symbol} yet")
            await self.commit(new, prev, detail=new.reason)
            return new
        crosses = False
        if book is not None and new.price is not None:
            if new.side == "buy":
                crosses = book.best_ask is not None and new.price >= D(book.best_ask)
            else:
                crosses = book.best_bid is not None and new.price <= D(book.best_bid)
        if new.type == "post_only" and crosses:
            best = book.best_ask if new.side == "buy" else book.best_bid  # type: ignore[union-attr]
            prev = new.transition(OrderStatus.REJECTED, f"post-only order would cross the book (best {'ask' if new.side == 'buy' else 'bid'} {best})")
            await self.commit(new, prev, detail=new.reason)
            return new
        takes: list[tuple[Decimal, Decimal]] = []
        if market or crosses:
            takes = self.walk(new.symbol, new.side, new.amount, None if market else new.price)
            est = (sum((p * q for p, q in takes), ZERO) / sum((q for _, q in takes), ZERO)) if takes else new.price
        else:
            est = new.price
        if new.price is not None:
            est = new.price  # a limit order can cost up to its limit (the rest rests there)
        why = self._check_funds(new.symbol, new.side, new.amount, est)
        if why:
            prev = new.transition(OrderStatus.REJECTED, why)
            await self.commit(new, prev, detail=why)
            return new
        if market and not takes:
            prev = new.transition(OrderStatus.REJECTED, f"no liquidity in the {o.symbol} book")
            await self.commit(new, prev, detail=new.reason)
            return new
        fills = [self._fill(new, p, q, "taker") for p, q in takes]
        self.consume(new.symbol, new.side, takes)
        detail = None
        if fills:
            best = takes[0][0]
            slip = abs(new.avg_price - best) if new.avg_price is not None else ZERO  # type: ignore[operator]
            detail = f"taker {new.filled:f} over {len(takes)} level(s), vwap {new.avg_price:f}, slippage {slip:f} vs best {best:f}"
        if new.filled >= new.amount:
            prev = new.transition(OrderStatus.FILLED)
            await self.commit(new, prev, fills=fills, detail=detail)
            return new
        if market or new.type is OrderType.IOC:
            if fills:
                prev = new.transition(OrderStatus.PARTIALLY_FILLED)
                await self.commit(new, prev, fills=fills, detail=detail)
            prev = new.transition(OrderStatus.EXPIRED, f"{new.exec_type}: unfilled {new.remaining:f} expired (no more liquidity{' at the limit' if new.price is not None else ''})")
            await self.commit(new, prev, detail=new.reason)
            return new
        # rest the remainder
        queue = ZERO
        if book is not None and not crosses:
            own = book.bids if new.side == "buy" else book.asks
            for p, s in _levels(own):
                if p == new.price:
                    queue = s
                    break
        self.queue[new.client_order_id] = queue
        prev = new.transition(OrderStatus.PARTIALLY_FILLED if fills else OrderStatus.OPEN)
        await self.commit(new, prev, fills=fills, detail=(detail or "") + f" resting at {new.price:f}, queue ahead {queue:f}",
                          queue_ahead=queue)
        return new

    async def _cancel_order(self, client_order_id: str) -> OrderState | None:
        async with self.lock:
            o = self.orders.get(client_order_id)
            if o is None or not o.is_working:
                return None
            new = o.copy()
            prev = new.transition(OrderStatus.CANCELLED, "cancelled by user")
            await self.commit(new, prev, detail="cancel", drop_queue=True)
            self.queue.pop(client_order_id, None)
            return new.copy()

    # ---------------------------------------------------------------- resting orders
    def _resting(self, symbol: str) -> list[OrderState]:
        rs = [o for o in self.orders.values()
              if o.symbol == symbol and o.status in (OrderStatus.OPEN, OrderStatus.PARTIALLY_FILLED)]
        rs.sort(key=lambda o: o.created_ms)
        return rs

    async def _book_resting(self, o: OrderState, amount: Decimal, detail: str, queue: Decimal | None) -> None:
        new = o.copy()
        f = self._fill(new, new.price, amount, "maker")  # type: ignore[arg-type]
        prev = new.transition(new.status_after_fill())
        done = not new.is_working
        await self.commit(new, prev, fills=[f], detail=detail,
                          queue_ahead=None if done else queue, drop_queue=done)
        self.fills_booked += 1
        if done:
            self.queue.pop(new.client_order_id, None)

    async def on_trades(self, ev: TradeEvent) -> None:
        resting = self._resting(ev.symbol)
        if not resting:
            return
        for t in ev.trades:
            tp, ta = D(t.price), D(t.amount)
            used = ZERO  # trade size already given to our paper orders at the same price
            for o in self._resting(ev.symbol):
                lp = o.price
                assert lp is not None
                buy = o.side == "buy"
                through = tp < lp if buy else tp > lp
                at = tp == lp and (t.side is None or t.side == ("sell" if buy else "buy"))
                if not (through or at):
                    continue
                q = self.queue.get(o.client_order_id, ZERO)
                if through:
                    amount, q_after = o.remaining, ZERO
                    detail = f"trade at {tp:f} through resting {lp:f}"
                else:
                    eaten = min(q, ta)
                    q_after = q - eaten
                    amount = min(o.remaining, max(ZERO, ta - eaten - used))
                    detail = f"trade {ta:f} at {tp:f}: queue ahead {q:f} -> {q_after:f}"
                self.queue[o.client_order_id] = q_after
                if amount > 0:
                    used += amount
                    await self._book_resting(o, amount, detail, q_after)
                    self.last_fill_latency.append(time.perf_counter() - ev.received)
                elif q_after != q:
                    await self.store.save(o, queue_ahead=q_after)

    async def on_book_cross(self, ev: BookEvent) -> None:
        """A resting order the venue's book has crossed is filled at its price, against the
        crossing liquidity (minus what we consumed before)."""
        for o in self._resting(ev.symbol):
            lp = o.price
            assert lp is not None
            if o.side == "buy":
                cross = ev.best_ask is not None and D(ev.best_ask) <= lp
            else:
                cross = ev.best_bid is not None and D(ev.best_bid) >= lp
            if not cross:
                continue
            takes = self.walk(o.symbol, o.side, o.remaining, lp)
            amount = sum((q for _, q in takes), ZERO)
            if amount <= 0:
                continue
            self.consume(o.symbol, o.side, takes)
            await self._book_resting(o, amount, f"book crossed resting {lp:f}", ZERO)
