"""Keeping the live broker in step with the venue: the private streams (``watch_orders``, guarded
by a timeout), the poll loop, ``poll()`` (new fills, working orders) and ``reconcile()`` (open
orders, recent fills, then balances: a balance the booked fills cannot explain is corrected to the
venue's, booked as a ``PositionAdjustment`` and published as ``BalanceDiscrepancy``)."""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

from ...aio import cancel_and_wait
from ..events import now_ms
from ..storage.models import PositionAdjustment
from .events import BalanceDiscrepancy
from .live_apply import VenueApplier
from .live_venue import LookupResult, ccxt_errors
from .orders import D, OrderState

log = logging.getLogger(__name__)
ZERO = Decimal(0)


class VenueSync(VenueApplier):
    """Watch, poll and reconcile; ``LiveBroker`` (``live``) starts the loops and places orders."""

    def __init__(self, *, watch_timeout_s: float = 10.0, poll_interval_s: float = 2.0,
                 balance_tolerance: Decimal = Decimal("1e-8"), new_order_grace_s: float = 30.0, **kw: Any) -> None:
        super().__init__(**kw)
        self.watch_timeout_s = watch_timeout_s
        self.poll_interval_s = poll_interval_s
        self.balance_tolerance = balance_tolerance
        self.new_order_grace_s = new_order_grace_s
        self.reconciles = 0
        self.watch_quiet = 0
        self.last_trade_poll_ms: int | None = None
        self._running = False
        # symbols asked one by one on venues that want a symbol per call (set by the assembly)
        self.scope: list[str] = []

    @property
    def _per_symbol(self) -> bool:
        """Binance answers openOrders without a symbol at 13x the weight (ccxt refuses unless told)
        and myTrades only per symbol: there the account is read symbol by symbol."""
        return str(getattr(self.client, "id", "")).startswith("binance")

    def _symbols(self) -> list[str]:
        return sorted(set(self.scope) | {o.symbol for o in self.orders.values()})

    async def _open_orders(self) -> list[dict]:
        if not self._per_symbol:
            return list(await self.call("fetch_open_orders", None))
        out: list[dict] = []
        for s in self._symbols():
            out += await self.call("fetch_open_orders", s)
        return out

    async def _trades_since(self, since: int) -> list[dict]:
        if not self._per_symbol:
            return await self.fetch_trades_since(None, since)
        out: list[dict] = []
        for s in self._symbols():
            out += await self.fetch_trades_since(s, since)
        return sorted(out, key=lambda t: (t.get("timestamp") or 0, str(t.get("id"))))

    async def _poll_loop(self) -> None:
        while self._running:
            await asyncio.sleep(self.poll_interval_s)
            try:
                if self.need_reconcile:
                    if await self.reconcile():
                        self.need_reconcile = False
                else:
                    await self.poll()
            except Exception as e:  # reported, counted, survived
                self.report("poll", f"polling failed: {e!r}")
                self.need_reconcile = True

    async def _watch_loop(self, name: str) -> None:
        """Private stream with a guard: the pending watch is never cancelled by the guard (in
        ccxt 4.5.90 a watch cancelled by a timeout can miss later updates); when it has been
        quiet for ``watch_timeout_s`` the guard counts it and the poll loop covers; after
        several quiet periods the state is reconciled in case the stream hung silently."""
        ccxt = ccxt_errors()
        backoff = 0.5
        down = False
        quiet = 0
        task: asyncio.Future | None = None
        try:
            while self._running:
                if task is None:
                    task = asyncio.ensure_future(getattr(self.client, name)())
                done, _ = await asyncio.wait({task}, timeout=self.watch_timeout_s)
                if not done:
                    quiet += 1
                    self.watch_quiet += 1
                    if quiet % 6 == 0:
                        self.need_reconcile = True  # a long silence may be a hung stream
                    continue
                quiet = 0
                finished, task = task, None
                try:
                    items = finished.result()
                except asyncio.CancelledError:
                    continue
                except ccxt.NotSupported:
                    self.report("watch", f"{name} not supported; polling only")
                    return
                except Exception as e:
                    self.report("watch", f"{name} failed: {type(e).__name__}: {e}")
                    down = True
                    self.need_reconcile = True
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = 0.5
                if down:  # reconnected: reconcile what we missed
                    down = False
                    self.need_reconcile = True
                try:
                    async with self.lock:
                        if name == "watch_orders":
                            for vo in items or []:
                                await self._apply_venue_order(vo, fetch_trades=True)
                        else:
                            # only prints that name an order of this account can be our fills
                            await self._book_trades([t for t in items or [] if t.get("order")], orphans=False)
                except Exception as e:
                    self.report("watch", f"{name} update could not be applied: {e!r}")
                    self.need_reconcile = True
        finally:
            if task is not None and not task.done():
                await cancel_and_wait([task])


    # ---------------------------------------------------------------- polling & reconciliation
    async def poll(self) -> None:
        """Light sync: new fills since the last poll, and the state of our working orders."""
        since = (self.last_trade_poll_ms or (now_ms() - 3_600_000)) - 5_000
        started = now_ms()
        trades = await self._trades_since(since)
        async with self.lock:
            await self._book_trades(trades)
        self.last_trade_poll_ms = started
        if any(o.is_working for o in self.orders.values()):
            open_ = await self._open_orders()
            await self._sync_open(open_, adopt=False)

    async def _sync_open(self, open_: list[dict], *, adopt: bool) -> None:
        venue_cids = {vo.get("clientOrderId") for vo in open_}
        venue_ids = {str(vo.get("id")) for vo in open_}
        async with self.lock:
            for vo in open_:
                if adopt or self._find(vo) is not None:
                    await self._apply_venue_order(vo, fetch_trades=True)
        missing: list[OrderState] = []  # ours, working, without a venue id: looked up together below
        for o in list(self.orders.values()):
            if not o.is_working or o.client_order_id in venue_cids or (o.venue_order_id in venue_ids):
                continue
            if o.venue_order_id is None:
                if (now_ms() - o.created_ms) / 1000 >= 1.0:  # else its create-order is probably in flight
                    missing.append(o)
            else:
                await self.refresh(o.client_order_id)
        if not missing:
            return
        # one open-orders and one history read per symbol for all of them (an OCO's legs and
        # orders placed together would otherwise send identical requests side by side)
        results = await self.lookup_all(missing)
        for o in missing:
            found, looked_up = results[o.client_order_id]
            if found == LookupResult.FOUND and looked_up is not None:
                async with self.lock:
                    await self._apply_venue_order(looked_up, fetch_trades=True)
            elif found == LookupResult.ABSENT and (now_ms() - o.created_ms) / 1000 >= self.new_order_grace_s:
                async with self.lock:
                    await self._venue_reject(o.client_order_id, "never reached the venue (not found by client order id)")

    async def reconcile(self) -> bool:
        """Full reconciliation with the venue. Returns False if it could not complete."""
        t0 = time.perf_counter()
        try:
            open_ = await self._open_orders()
            await self._sync_open(open_, adopt=True)
            last = max((o.created_ms for o in self.orders.values()), default=0)
            since = min([now_ms() - 24 * 3_600_000 + 60_000] + ([last - 60_000] if last else []))
            since = max(since, now_ms() - 24 * 3_600_000 + 60_000)
            started = now_ms()
            trades = await self._trades_since(since)
            async with self.lock:
                await self._book_trades(trades)
            self.last_trade_poll_ms = started
            # compare balances only against a stable set of fills: a fill landing between the
            # trades read and the balance read would otherwise look like a discrepancy (and be
            # counted twice once booked)
            for _ in range(5):
                bal = await self.call("fetch_balance")
                again = await self._trades_since(started - 60_000)
                fresh = [t for t in again if t.get("id") is not None and str(t["id"]) not in self.known_fills]
                if not fresh:
                    break
                async with self.lock:
                    await self._book_trades(fresh)
            else:
                self.report("reconcile_failed", "fills kept arriving; balance check skipped this time")
                return False
            async with self.lock:
                await self._reconcile_balances(bal)
        except Exception as e:
            self.report("reconcile_failed", f"reconciliation incomplete: {type(e).__name__}: {e}",
                        error=type(e).__name__)
            return False
        self.reconciles += 1
        log.info("reconciled in %.3fs", time.perf_counter() - t0)
        return True

    async def _reconcile_balances(self, bal: dict) -> None:
        total = bal.get("total") or {}
        venue = {c: D(v) for c, v in total.items() if v is not None}
        expected = dict(self.portfolio.balances)
        first = not expected
        changed: dict[str, Decimal] = {}
        adjustments = []
        events = []
        for cur in sorted(set(venue) | set(expected)):
            v = venue.get(cur, ZERO)
            e = expected.get(cur, ZERO)
            if v == e or (not first and abs(v - e) <= self.balance_tolerance):
                continue  # equal, or float noise from ccxt's parsed numbers: keep our exact figure
            changed[cur] = v
            if first:
                continue
            diff = v - e
            sym = self.portfolio.symbol_for_currency(cur)
            adj = PositionAdjustment(ts=now_ms(), mode=self.mode, exchange=self.exchange, currency=cur, symbol=sym,
                                     amount=diff if sym else ZERO, expected=e, venue=v,
                                     reason="venue balance not explained by booked fills; venue wins")
            adjustments.append(adj)
            events.append(BalanceDiscrepancy(self.mode, cur, e, v, diff, f"position {sym} corrected" if sym else ""))
        if not changed:
            return
        await self.store.save(None, balances=changed, adjustments=adjustments)
        self.portfolio.balances.update(changed)
        if self.portfolio.publisher is not None:
            self.portfolio.publisher.touch()
        for adj in adjustments:
            self.portfolio.apply_adjustment(adj)
        for ev in events:
            self.report("balance_difference", f"{ev.currency}: booked {ev.expected:f}, venue {ev.venue:f}",
                        currency=ev.currency, booked=ev.expected, venue=ev.venue, difference=ev.difference,
                        detail=ev.detail or None)
            self.publish(ev)
            if ev.detail:
                sym = self.portfolio.symbol_for_currency(ev.currency)
                if sym:
                    self.publish(self.portfolio.position_event(sym))
