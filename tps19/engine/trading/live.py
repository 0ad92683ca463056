"""Live broker: orders through a ccxt (pro, async) client, with recovery.

* Every order is written to SQLite (status ``new``, with its TPS19 client order id) *before*
  it is sent. The client order id travels as ``client_oid`` (cryptocom's field; ccxt 4.5.90's
  cryptocom ``create_order`` silently drops the unified ``clientOrderId`` param) and as
  ``clientOrderId`` for other venues.
* A create-order whose reply is lost (timeout, dropped connection) is first looked up on the
  venue by client order id; it is re-sent (same id) only when the venue definitively does not
  have it. If the venue cannot tell, the order stays ``new`` and reconciliation resolves it, so
  the venue never holds two orders for one intent.
* Order and fill updates come from ``watch_orders`` / ``watch_my_trades`` (each guarded by a
  timeout: a quiet or hung stream falls back to polling), and from polling.
* ``reconcile()`` (on start and after every reconnect): open orders, recent fills, balances.
  Unknown venue orders are adopted (``Order.adopted``); orders the venue closed are updated
  with their fills; a balance the booked fills cannot explain is corrected to the venue's,
  booked as a ``PositionAdjustment`` and published as ``BalanceDiscrepancy``.

The broker is built in layers, each in its own module: ``live_venue`` (what the venue's errors and
statuses mean), ``live_apply.VenueApplier`` (venue state applied to our orders and fills),
``live_sync.VenueSync`` (watch, poll, reconcile, balances) and ``LiveBroker`` here (start/stop,
placing, cancelling).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ...aio import cancel_and_wait
from .live_apply import VENUE_TRIGGER_TYPES
from .live_sync import VenueSync
from .live_venue import LookupResult, ccxt_errors, definite_rejection, is_network
from .orders import OrderRequest, OrderState, OrderStatus, OrderType, ValidatedOrder
from .records import order_update

S = OrderStatus


class LiveBroker(VenueSync):
    mode = "live"

    def __init__(self, *, create_attempts: int = 3, use_watch: bool = True, watch_trades: bool = False,
                 **kw: Any) -> None:
        super().__init__(**kw)
        self.create_attempts = create_attempts
        self.use_watch = use_watch
        # ccxt 4.5.90's cryptocom (pro) keeps public `trade.X` and private `user.trade.X` prints in
        # ONE cache (handle_trades -> self.trades[symbol]): watch_my_trades returns other people's
        # trades when the same client also watches the public tape. So by default fills are read
        # over REST (fetch_my_trades, account-scoped) when watch_orders says an order filled.
        self.watch_trades = watch_trades
        self._tasks: list[asyncio.Task] = []
        self.started = asyncio.Event()
        self._list_ids: dict[str, str] = {}  # OCO group -> the venue's list_id (cancel-order-list)
        self._lists_cancelled: set[str] = set()

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.portfolio.balances = dict(await self.store.balances())
        self.portfolio.replay(await self.store.fills(), await self.store.adjustments())
        self.known_fills = await self.store.fill_ids()
        await self.load_counts()
        for o in await self.store.working_orders():
            self.orders[o.client_order_id] = o
        # protective orders stored as triggered go out (or are found on the venue) before the
        # reconciliation reads the venue's fills, so a fill of one that did reach it finds its order
        await self.emulator.load()
        await self._find_sent_protective()
        await self.emulator.release_pending()
        self._running = True
        ok = await self.reconcile()
        if not ok:
            self.need_reconcile = True
        self._tasks.append(asyncio.create_task(self._poll_loop(), name="live-poll"))
        if self.use_watch:
            has = getattr(self.client, "has", {}) or {}
            if has.get("watchOrders"):
                self._tasks.append(asyncio.create_task(self._watch_loop("watch_orders"), name="live-watch-orders"))
            if self.watch_trades and has.get("watchMyTrades"):
                self._tasks.append(asyncio.create_task(self._watch_loop("watch_my_trades"), name="live-watch-trades"))
        await self.emulator.start()
        self.started.set()

    async def _find_sent_protective(self) -> None:
        """A protective order still stored as armed or triggered may have reached the venue before
        the process died (its trigger is written while it is sent): each is looked for by its
        client order id, per symbol, before the reconciliation reads the venue's fills. Found, it is
        a working order again; not found, an armed one stays armed, a triggered one is sent."""
        from .orders import TriggerState

        em = self.emulator
        by_symbol: dict[str, list[OrderState]] = {}
        for o in em.held.values():
            by_symbol.setdefault(o.symbol, []).append(o)
        for symbol, held in by_symbol.items():
            since = min(o.created_ms for o in held) - 60_000
            try:
                venue = list(await self.call("fetch_open_orders", symbol)) + list(await self.call("fetch_orders", symbol, since))
            except Exception as e:
                self.report("lookup", f"{symbol}: cannot look for protective orders sent before the restart "
                            f"({type(e).__name__}: {e}); triggered ones are looked up again before they are sent")
                continue
            by_cid = {vo.get("clientOrderId"): vo for vo in venue if vo.get("clientOrderId")}
            for o in held:
                vo = by_cid.get(o.client_order_id)
                if vo is None:
                    continue
                em._unindex(o.client_order_id)
                o.trigger_state = TriggerState.WORKING
                self.orders[o.client_order_id] = o
                self.report("stop_found", f"{o.client_order_id} {o.symbol} {o.type.value} reached the venue before "
                            "the restart: followed there, not sent again", client_order_id=o.client_order_id,
                            symbol=o.symbol)
                async with self.lock:
                    await self._apply_venue_order(vo, fetch_trades=True, sent=o)

    async def stop(self) -> None:
        await self.emulator.stop()
        await self.drain_background()
        self._running = False
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

    # ---------------------------------------------------------------- placing
    def _ccxt_args(self, o: OrderState) -> tuple[str, float | None, dict]:
        params: dict[str, Any] = {"client_oid": o.client_order_id}
        if getattr(self.client, "id", "") != "cryptocom":
            params = {"clientOrderId": o.client_order_id}
        price = float(o.price) if o.price is not None else None
        if o.placement == "venue" and o.trigger_price is not None:
            # venue-native: ccxt 4.5.90's cryptocom maps stopLossPrice / takeProfitPrice to STOP_LOSS,
            # STOP_LIMIT, TAKE_PROFIT, TAKE_PROFIT_LIMIT with the level as ref_price
            key = "takeProfitPrice" if o.type in (OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT) else "stopLossPrice"
            params[key] = float(o.trigger_price)
        if o.exec_type is OrderType.MARKET:
            return "market", None, params
        if o.type == "post_only":
            params["postOnly"] = True
        elif o.type == "ioc":
            params["timeInForce"] = "IOC"
        return "limit", price, params

    async def _ensure_ref_price(self, symbol: str) -> None:
        """Without a live book from the feed, read the venue's top of book once so the
        per-order value cap can be checked for market orders."""
        if symbol in self.books or symbol not in self.markets:
            return
        try:
            ob = await self.call("fetch_order_book", symbol, 5)
        except Exception as e:
            self.report("book", f"no reference price for {symbol}: {type(e).__name__}: {e}")
            return
        from ..events import BookEvent

        self.books.setdefault(symbol, BookEvent(symbol, tuple((float(p), float(q)) for p, q, *_ in ob.get("bids") or []),
                                                tuple((float(p), float(q)) for p, q, *_ in ob.get("asks") or []),
                                                ob.get("timestamp"), ob.get("nonce")))

    async def _before_entry(self, req: OrderRequest) -> None:
        if req.type == "market" and not self.risk.killed:
            await self._ensure_ref_price(req.symbol)

    async def _submit(self, o: OrderState, v: ValidatedOrder) -> OrderState:
        try:
            await self.store.save(o, insert=True, from_status=None, to_status=S.NEW,
                                  detail=("; ".join(v.notes) or None))
        except Exception as e:  # not recorded -> not sent
            self.report("db", f"order not recorded, not sent: {e}")
            o.transition(S.REJECTED, f"not sent: could not record the order ({e})")
            return o
        self.orders[o.client_order_id] = o
        self.publish(order_update(o, None))
        await self._send(o)
        cur = self.orders.get(o.client_order_id) or await self.store.order(o.client_order_id) or o
        return cur.copy()

    async def _submit_oco(self, legs: list[OrderState], detail: str | None) -> OrderState:
        """Both legs recorded (one transaction), then placed as one ``private/create-order-list``
        OCO: ccxt 4.5.90's ``create_orders`` drops triggerPrice and friends, so each leg carries its
        level as its own ``ref_price`` and its client order id as ``client_oid``. The venue then
        cancels one leg when the other triggers or trades; the engine books what it reports."""
        stop, take = legs
        try:
            await self.store.insert_orders(legs, detail=detail or "OCO: placed on the venue as one list")
        except Exception as e:  # not recorded -> not sent
            self.report("db", f"OCO not recorded, not sent: {e}")
            for o in legs:
                o.transition(S.REJECTED, f"not sent: could not record the order ({e})")
            return stop.copy()
        for o in legs:
            self.orders[o.client_order_id] = o
            self.publish(order_update(o, None))
        spec = [{"symbol": o.symbol, "type": "stop_limit" if o is stop else "limit", "side": o.side.value,
                 "amount": float(o.amount), "price": float(o.price or 0),
                 "params": {"client_oid": o.client_order_id}
                 | ({"ref_price": float(o.trigger_price or 0)} if o is stop else {})} for o in legs]
        try:
            res = await self.call("create_orders", spec, {"contingency_type": "OCO"})
            if res and res[0].get("id"):
                self._list_ids[stop.oco_group or ""] = str(res[0]["id"])
        except Exception as e:
            what = f"{type(e).__name__}: {e}"[:300]
            if definite_rejection(e):
                async with self.lock:
                    for o in legs:
                        await self._venue_reject(o.client_order_id, f"venue rejected the OCO list: {what}")
                return await self._current(stop.client_order_id) or stop.copy()
            self.report("create-order", f"OCO {stop.oco_group}: ambiguous answer ({what}); looking its legs up",
                        client_order_id=stop.client_order_id, symbol=stop.symbol)
            async with self.lock:
                for o in legs:
                    await self._mark_unknown(o.client_order_id, f"ambiguous venue answer: {what}")
        await self._follow_legs(legs)
        return await self._current(stop.client_order_id) or stop.copy()

    async def _follow_legs(self, legs: list[OrderState]) -> None:
        """Learn each placed leg's venue id and state (the list's answer names only the list). An
        OCO is placed whole or not at all: both absent -> both refused, never resent one by one.
        Both legs are read together (one open-orders and one history read, matched by client id):
        one answer for the whole list, never two identical requests."""
        got = await self.lookup_all(legs)
        if any(r == LookupResult.UNKNOWN for r, _ in got.values()):
            await asyncio.sleep(0.2)  # a read failed (timeout, busy venue): once more before leaving it to the poll
            got = await self.lookup_all(legs)
        found = [(o, *got[o.client_order_id]) for o in legs]
        if all(r == LookupResult.ABSENT for _, r, _ in found):
            async with self.lock:
                for o in legs:
                    await self._venue_reject(o.client_order_id, "not placed: the OCO list never reached the venue")
            return
        for o, r, vo in found:
            if r == LookupResult.FOUND and vo is not None:
                raw = vo.get("info")
                info: dict = raw if isinstance(raw, dict) else {}
                if info.get("list_id") and o.oco_group:
                    self._list_ids[o.oco_group] = str(info["list_id"])
                async with self.lock:
                    await self._apply_venue_order(vo, fetch_trades=True, sent=o)
            else:
                self.need_reconcile = True

    async def _list_id(self, o: OrderState) -> str | None:
        """The venue's list id of a venue-native OCO leg (kept from its placing, else read back)."""
        group = o.oco_group or ""
        if group in self._list_ids:
            return self._list_ids[group]
        if group.startswith("venue-"):
            return group[len("venue-"):]
        if o.venue_order_id is None:
            return None
        try:
            vo = await self.call("fetch_order", o.venue_order_id, o.symbol)
        except Exception as e:
            self.report("cancel", f"{o.client_order_id}: its OCO list is unknown ({type(e).__name__}: {e})")
            return None
        raw = vo.get("info")
        got: dict = raw if isinstance(raw, dict) else {}
        if got.get("list_id"):
            self._list_ids[group] = str(got["list_id"])
        return self._list_ids.get(group)

    async def _release(self, o: OrderState, *, resend: bool = False) -> None:
        """A triggered protective order goes to the venue under its own client order id. Triggered
        before a restart, it may have reached the venue already: looked up first, sent if absent."""
        if resend:
            found, vo = await self.lookup(o)
            if found == LookupResult.FOUND and vo is not None:
                self.orders[o.client_order_id] = o
                async with self.lock:
                    await self._apply_venue_order(vo, fetch_trades=True, sent=o)
                return
            if found == LookupResult.UNKNOWN:
                raise RuntimeError("the venue cannot say whether it holds the order; left for reconciliation")
        self.orders[o.client_order_id] = o
        await self._send(o)

    async def _send(self, o: OrderState) -> None:
        ccxt = ccxt_errors()
        cid = o.client_order_id
        otype, price, params = self._ccxt_args(o)
        last = ""
        for attempt in range(1, self.create_attempts + 1):
            try:
                vo = await self.call("create_order", o.symbol, otype, o.side, float(o.amount), price, dict(params))
            except Exception as e:
                what = f"{type(e).__name__}: {e}"[:300]
                if definite_rejection(e):
                    dup = isinstance(e, getattr(ccxt, "DuplicateOrderId", ())) or "DUPLICATE_CLORDID" in str(e)
                    if attempt > 1 or dup:  # a resend refused: make sure the first send did not land after all
                        found, vorder = await self.lookup(o)
                        if found == LookupResult.FOUND and vorder is not None:
                            async with self.lock:
                                await self._apply_venue_order(vorder, fetch_trades=True)
                            return
                    async with self.lock:
                        await self._venue_reject(cid, f"venue rejected: {what}")
                    return
                last = what
                self.report("create-order", f"{cid}: ambiguous answer ({what}); looking it up",
                            client_order_id=cid, symbol=o.symbol, side=o.side, amount=o.amount, price=o.price)
                async with self.lock:
                    await self._mark_unknown(cid, f"ambiguous venue answer: {what}")
                found, vorder = await self.lookup(o)
                if found == LookupResult.UNKNOWN:
                    await asyncio.sleep(min(0.2 * attempt, 1.0))
                    found, vorder = await self.lookup(o)
                if found == LookupResult.FOUND and vorder is not None:
                    async with self.lock:
                        await self._apply_venue_order(vorder, fetch_trades=True)
                    return
                if found == LookupResult.UNKNOWN:
                    self.report("create-order", f"{cid}: outcome unknown; left for reconciliation",
                                client_order_id=cid, symbol=o.symbol)
                    self.need_reconcile = True
                    return
                continue  # ABSENT: the venue does not have it -> resend with the same id
            async with self.lock:
                await self._apply_venue_order(vo, fetch_trades=False, sent=o)
            if vo.get("status") in (None, "closed") or (vo.get("filled") is None):
                await self.refresh(cid)
            return
        async with self.lock:
            await self._venue_reject(cid, f"not sent: never reached the venue (not found by client order id after "
                                          f"{self.create_attempts} attempt(s); last answer {last})"[:300])

    # ---------------------------------------------------------------- cancelling
    async def _cancel_order(self, client_order_id: str) -> OrderState | None:
        ccxt = ccxt_errors()
        o = self.orders.get(client_order_id)
        if o is None or not o.is_working:
            return None
        if o.venue_order_id is None:
            found, vo = await self.lookup(o)
            if found == LookupResult.FOUND and vo is not None:
                async with self.lock:
                    await self._apply_venue_order(vo, fetch_trades=True)
            elif found == LookupResult.ABSENT:
                async with self.lock:
                    await self._venue_reject(client_order_id, "never reached the venue")
                return await self._current(client_order_id)
            o = self.orders.get(client_order_id)
            if o is None or o.venue_order_id is None:
                return await self._current(client_order_id)
        self.cancel_requested.add(client_order_id)
        list_id = await self._list_id(o) if o.placement == "venue" and o.oco_group else None
        try:
            if list_id is not None:
                # a venue-native OCO leg: the list goes whole (private/cancel-order-list), once
                if list_id not in self._lists_cancelled:
                    self._lists_cancelled.add(list_id)
                    await self.call("cancel_orders", [], o.symbol, {"contingency_type": "OCO", "list_id": list_id})
            else:
                await self.call("cancel_order", o.venue_order_id, o.symbol)
        except ccxt.OrderNotFound:
            pass  # already closed: refresh tells how
        except Exception as e:
            if is_network(e):
                self.report("cancel", f"{client_order_id}: cancel failed: {type(e).__name__}: {e}")
                return await self._current(client_order_id)
            # refused (e.g. NO_ACTIVE_ORDER: it is already closed): the venue's state tells
            self.report("cancel", f"{client_order_id}: cancel refused: {type(e).__name__}: {e}")
        for delay in (0.0, 0.05, 0.15, 0.3):
            if delay:
                await asyncio.sleep(delay)
            await self.refresh(client_order_id)
            cur = self.orders.get(client_order_id)
            if cur is None or not cur.is_working:
                break
        return await self._current(client_order_id)

    async def _current(self, cid: str) -> OrderState | None:
        o = self.orders.get(cid)
        if o is not None:
            return o.copy()
        return await self.store.order(cid)

    async def cancel_all(self, symbol: str | None = None, *, protective: bool = True) -> int:
        held = 0
        if protective:
            for cid in [c for c, o in self.emulator.held.items() if symbol is None or o.symbol == symbol]:
                held += 1 if await self.emulator.cancel(cid) is not None else 0
        n_before = {c for c, o in self.orders.items() if o.is_working and (symbol is None or o.symbol == symbol)
                    and (protective or o.trigger_state is None)}
        keep = {c for c, o in self.orders.items() if o.is_working and o.trigger_state is not None and not protective}
        if not keep:  # the venue's cancel-all would take protective orders with it: then one by one
            try:
                await self.call("cancel_all_orders", symbol)
            except Exception as e:
                self.report("cancel-all", f"cancel_all_orders failed: {type(e).__name__}: {e}; cancelling one by one")
        for cid in list(n_before):
            self.cancel_requested.add(cid)
            await self.refresh(cid)  # cancel-all may have closed it already
            o = self.orders.get(cid)
            if o is not None and o.is_working:
                await self._cancel_order(cid)
        # anything the venue still shows open (e.g. adopted since) is cancelled too, protection kept
        try:
            for vo in await self.call("fetch_open_orders", symbol):
                mine = self._find(vo)
                if not protective and ((mine is not None and mine.trigger_state is not None)
                                       or str(vo.get("type") or "").lower() in VENUE_TRIGGER_TYPES
                                       or vo.get("triggerPrice") or vo.get("stopPrice")):
                    continue
                try:
                    await self.call("cancel_order", vo["id"], vo.get("symbol"))
                except Exception as e:
                    self.report("cancel-all", f"venue order {vo.get('id')}: {e}")
        except Exception as e:
            self.report("cancel-all", f"could not verify open orders after cancel-all: {e}")
        return held + sum(1 for c in n_before if c not in self.orders)
