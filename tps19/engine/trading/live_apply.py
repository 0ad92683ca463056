"""The live broker's view of the venue applied to our books: an order the venue reports (by watch,
poll, lookup or a create-order answer) moves our order's state; venue trades become booked fills;
an open venue order we never placed is adopted; a fill of an order we do not know is booked as an
orphan and reported. Every change goes through ``BaseBroker.commit`` (written, then published).

Also the venue reads these need: ``call`` (every ccxt call, with a timeout), ``lookup`` (our order
by client order id) and ``fetch_trades_since`` (our trades, paged).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from collections.abc import Sequence
from typing import Any

from ..events import now_ms
from ..nonces import sign_uniquely
from .base import BaseBroker
from .live_venue import RANK, LookupResult
from .orders import D, D_or_none, OrderState, OrderStatus, OrderType, Side, TriggerState

# ccxt's parsed type of a venue's trigger order (cryptocom order_type, lower-cased) -> ours
VENUE_TRIGGER_TYPES = {"stop_loss": OrderType.STOP_MARKET, "stop_limit": OrderType.STOP_LIMIT,
                       "take_profit": OrderType.TAKE_PROFIT, "take_profit_limit": OrderType.TAKE_PROFIT_LIMIT}


def venue_triggered(vo: dict) -> bool:
    """Has the venue triggered its trigger order (it trades, or says at which print it triggered)?"""
    raw = vo.get("info")
    info: dict = raw if isinstance(raw, dict) else {}
    trig = D_or_none(info.get("trigger_price"))
    return bool((D_or_none(vo.get("filled")) or ZERO) > 0 or vo.get("status") == "closed" or (trig is not None and trig > 0))
from .store import FillRecord

ZERO = Decimal(0)
S = OrderStatus
# orders asked of the venue's history per lookup: Crypto.com's most (get-order-history); Binance
# allows more, but a full page of either means orders past it were not read
HISTORY_PAGE = 100


class VenueApplier(BaseBroker):
    """Applies venue state to our orders and fills; ``LiveBroker`` builds on it (``live_sync``, ``live``)."""

    def __init__(self, *, client: Any, request_timeout_s: float = 10.0, **kw: Any) -> None:
        super().__init__(**kw)
        sign_uniquely(client)  # concurrent identical reads must not look like replays to the venue
        self.client = client
        self.request_timeout_s = request_timeout_s
        self.known_fills: set[str] = set()
        self.cancel_requested: set[str] = set()
        self.need_reconcile = False

    async def call(self, name: str, *args: Any, **kw: Any) -> Any:
        fn = getattr(self.client, name)
        return await asyncio.wait_for(fn(*args, **kw), self.request_timeout_s)


    async def _mark_unknown(self, cid: str, detail: str) -> None:
        o = self.orders.get(cid)
        if o is None or o.status is not S.NEW:
            return
        new = o.copy()
        prev = new.transition(S.UNKNOWN)
        await self.commit(new, prev, detail=detail)

    async def _venue_reject(self, cid: str, reason: str) -> None:
        o = self.orders.get(cid)
        if o is None or o.status not in (S.NEW, S.UNKNOWN):
            return
        new = o.copy()
        prev = new.transition(S.REJECTED, reason)
        await self.commit(new, prev, detail=reason)

    async def lookup(self, o: OrderState) -> tuple[str, dict | None]:
        """Find our order on the venue by client order id: FOUND, ABSENT (both open orders and
        order history were read and it is in neither) or UNKNOWN."""
        return (await self.lookup_all([o]))[o.client_order_id]

    async def lookup_all(self, orders: Sequence[OrderState]) -> dict[str, tuple[str, dict | None]]:
        """Find several of our orders by client order id with ONE open-orders read and (for those
        not open) ONE order-history read per symbol, each order matched by its client id. Reading
        per order sent identical requests (an OCO's two legs share symbol and creation time) and
        asked the venue twice for the same answer. Per order: FOUND, ABSENT (both reads complete
        and it is in neither) or UNKNOWN (a read failed, or the history page was full: an order
        beyond it is not proven absent)."""
        out: dict[str, tuple[str, dict | None]] = {}
        by_symbol: dict[str, list[OrderState]] = {}
        for o in orders:
            by_symbol.setdefault(o.symbol, []).append(o)
        for symbol, group in by_symbol.items():
            wanted = {o.client_order_id for o in group}
            definitive = True
            try:
                for vo in await self.call("fetch_open_orders", symbol):
                    cid = vo.get("clientOrderId")
                    if cid in wanted and cid not in out:
                        out[cid] = (LookupResult.FOUND, vo)
            except Exception as e:
                self.report("lookup", f"open orders unavailable: {type(e).__name__}: {e}")
                definitive = False
            rest = [o for o in group if o.client_order_id not in out]
            if rest:
                since = min(o.created_ms for o in rest) - 60_000
                try:
                    history = list(await self.call("fetch_orders", symbol, since, HISTORY_PAGE))
                    for vo in history:
                        cid = vo.get("clientOrderId")
                        if cid in wanted and cid not in out:
                            out[cid] = (LookupResult.FOUND, vo)
                    if len(history) >= HISTORY_PAGE:
                        definitive = False  # more than one page since: the rest is not read
                except Exception as e:
                    self.report("lookup", f"order history unavailable: {type(e).__name__}: {e}")
                    definitive = False
            for o in group:
                out.setdefault(o.client_order_id, ((LookupResult.ABSENT if definitive else LookupResult.UNKNOWN), None))
        return out

    # ---------------------------------------------------------------- applying venue state
    def _find(self, vo: dict) -> OrderState | None:
        cid, vid = vo.get("clientOrderId"), vo.get("id")
        if cid and cid in self.orders:
            return self.orders[cid]
        if vid:
            for o in self.orders.values():
                if o.venue_order_id == vid:
                    return o
        return None

    def _venue_status(self, o: OrderState, vo: dict) -> OrderStatus | None:
        st = vo.get("status")
        filled = D_or_none(vo.get("filled")) or ZERO
        if st == "open":
            return S.PARTIALLY_FILLED if filled > 0 else S.OPEN
        if st == "closed":
            return S.FILLED
        if st == "canceled":
            if o.client_order_id not in self.cancel_requested and o.exec_type in (OrderType.IOC, OrderType.MARKET):
                return S.EXPIRED
            return S.CANCELLED
        if st == "rejected":
            return S.REJECTED
        if st == "expired":
            return S.EXPIRED
        return None

    async def _apply_venue_order(self, vo: dict, *, fetch_trades: bool, sent: OrderState | None = None) -> None:
        o = self._find(vo) or sent
        if o is None:
            cid, vid = vo.get("clientOrderId"), vo.get("id")
            known = (await self.store.order(cid)) if cid else None
            if known is None and vid:
                known = await self.store.order_by_venue_id(str(vid))
            if known is not None:
                # a closed order of ours: book any fills it has that we lack
                if fetch_trades and D_or_none(vo.get("filled")) and D(vo["filled"]) > known.filled:
                    await self._fetch_order_trades(known)
                return
            if vo.get("status") == "open":
                await self._adopt(vo)
            return
        o = self.orders.get(o.client_order_id, o)
        new = o.copy()
        if vo.get("id") and new.venue_order_id != str(vo["id"]):
            new.venue_order_id = str(vo["id"])
        if new.placement == "venue" and new.trigger_state is TriggerState.ARMED and venue_triggered(vo):
            new.trigger_state = TriggerState.WORKING  # the venue triggered it: now a market/limit order there
        target = self._venue_status(new, vo)
        venue_filled = D_or_none(vo.get("filled"))
        if fetch_trades and venue_filled is not None and venue_filled > new.filled:
            if new.venue_order_id != o.venue_order_id or new.trigger_state != o.trigger_state:
                await self.commit(new, None, changed=False)
            await self._fetch_order_trades(new)
            new = (self.orders.get(new.client_order_id) or await self.store.order(new.client_order_id) or new).copy()
        if target is None or RANK[target] < RANK[new.status] or target is new.status:
            if new.venue_order_id != o.venue_order_id or new.trigger_state != o.trigger_state:
                await self.commit(new, None, changed=False)
            return
        if not new.is_working:
            return
        if target is S.FILLED and new.filled < new.amount:
            # the venue says filled but we hold fewer fills: wait for them (poll/watch/reconcile)
            if RANK[new.status] < RANK[S.OPEN]:
                prev = new.transition(S.OPEN)
                await self.commit(new, prev, detail="venue accepted")
            elif new.venue_order_id != o.venue_order_id:
                await self.commit(new, None, changed=False)
            self.need_reconcile = True
            return
        if target is S.PARTIALLY_FILLED and new.filled == 0:
            target = S.OPEN  # fills are booked from trades; the status follows them
            if new.status is S.OPEN:
                return
        reason = vo.get("info", {}).get("reason") if isinstance(vo.get("info"), dict) else None
        prev = new.transition(target, f"venue: {target.value}" + (f" ({reason})" if reason else "") if target in (S.REJECTED, S.EXPIRED) else None)
        await self.commit(new, prev, detail=f"venue status {vo.get('status')}")

    async def _adopt(self, vo: dict) -> None:
        vid = str(vo.get("id"))
        cid = vo.get("clientOrderId") or f"adopted-{vid}"
        amount = D_or_none(vo.get("amount")) or ZERO
        price = D_or_none(vo.get("price"))
        vtype = vo.get("type") or "limit"
        if vo.get("postOnly"):
            vtype = "post_only"
        elif vo.get("timeInForce") == "IOC":
            vtype = "ioc"
        raw = vo.get("info")
        info: dict = raw if isinstance(raw, dict) else {}
        trigger_type = VENUE_TRIGGER_TYPES.get(str(vtype).lower())
        if trigger_type is None and info.get("list_id") and vtype == "limit":
            trigger_type = OrderType.TAKE_PROFIT_LIMIT  # an OCO list's limit leg: its take-profit
        otype = trigger_type or (OrderType(vtype) if vtype in ("market", "limit", "post_only", "ioc") else OrderType.LIMIT)
        o = OrderState(client_order_id=cid, mode=self.mode, exchange=self.exchange, symbol=vo.get("symbol") or "?",
                       side=Side.parse(vo.get("side") or "?"), type=otype,
                       amount=amount, price=price, venue_order_id=vid, adopted=True,
                       created_ms=int(vo.get("timestamp") or now_ms()))
        if trigger_type is not None:
            # the venue's own stop (or take-profit, or an OCO list's leg): adopted as protection
            o.trigger_price = D_or_none(info.get("ref_price")) or D_or_none(vo.get("triggerPrice")) or price
            o.placement = "venue"
            resting = otype is OrderType.TAKE_PROFIT_LIMIT and not D_or_none(info.get("ref_price"))
            o.trigger_state = TriggerState.WORKING if resting or venue_triggered(vo) else TriggerState.ARMED
            if info.get("list_id"):
                o.oco_group = f"venue-{info['list_id']}"
        prev = o.transition(S.OPEN, "adopted: found open on the venue, not placed by this TPS19")
        await self.store.save(o, insert=True, from_status=None, to_status=S.NEW, detail="adopted from venue")
        await self.commit(o, prev, detail=o.reason)
        self.report("adopted_order", f"venue order {vid} ({o.symbol} {o.side} {amount} @ {price}) adopted",
                    client_order_id=cid, venue_order_id=vid, symbol=o.symbol, side=o.side, amount=amount, price=price)
        if (D_or_none(vo.get("filled")) or ZERO) > 0:
            await self._fetch_order_trades(o)

    async def _fetch_order_trades(self, o: OrderState) -> None:
        try:
            trades = await self.fetch_trades_since(o.symbol, o.created_ms - 60_000)
        except Exception as e:
            self.report("trades", f"fills of {o.client_order_id} unavailable: {type(e).__name__}: {e}")
            self.need_reconcile = True
            return
        mine = [t for t in trades if o.venue_order_id and str(t.get("order")) == o.venue_order_id]
        await self._book_trades(mine)

    async def _book_trades(self, trades: list[dict], *, orphans: bool = True) -> None:
        """Book venue trades (ccxt trade dicts) we have not booked yet, each into its order."""
        by_order: dict[str | None, list[dict]] = {}
        seen: set[str] = set()
        for t in trades:
            tid = t.get("id")
            if tid is None or str(tid) in self.known_fills or str(tid) in seen:
                continue
            seen.add(str(tid))
            by_order.setdefault(str(t["order"]) if t.get("order") is not None else None, []).append(t)
        for vid, ts in by_order.items():
            ts.sort(key=lambda t: (t.get("timestamp") or 0, str(t.get("id"))))
            o = None
            if vid is not None:
                o = next((x for x in self.orders.values() if x.venue_order_id == vid), None)
                if o is None:
                    o = await self.store.order_by_venue_id(vid)
            if o is None and not orphans:
                continue  # not provably ours: the REST poll (account-scoped) decides
            if o is None and vid is not None:
                claimed, o = await self._claim(vid, ts[0].get("symbol"))
                if not claimed:
                    self.need_reconcile = True
                    continue  # maybe the fill of an order still settling: booked once that is known
            new = o.copy() if o is not None else None
            fills = []
            for t in ts:
                price, amount = D(t["price"]), D(t["amount"])
                fee = t.get("fee") or {}
                fee_cost = abs(D_or_none(fee.get("cost")) or ZERO)
                fee_cur = fee.get("currency")
                fr = FillRecord(
                    fill_id=str(t["id"]), client_order_id=new.client_order_id if new else None, venue_order_id=vid,
                    symbol=t.get("symbol") or (new.symbol if new else "?"), side=t.get("side") or (new.side if new else "?"),
                    price=price, amount=amount, fee=fee_cost, fee_currency=fee_cur,
                    liquidity=t.get("takerOrMaker"), ts=int(t.get("timestamp") or now_ms()),
                )
                fills.append(fr)
                if new is not None:
                    new.add_fill(price, amount, self.portfolio.fee_in_quote(fr.symbol, fee_cost, fee_cur, price))
            if new is None:
                # a fill of an order we do not know: book it (positions/balances) and say so
                booked = await self.store.save(None, fills=fills, balances=self.portfolio.preview_balances(fills))
                for f in booked:
                    self.known_fills.add(f.fill_id)
                    self.portfolio.apply_fill(f)
                    self.publish(f.to_event(self.mode))
                    self.publish(self.portfolio.position_event(f.symbol))
                if booked and self.portfolio.publisher is not None:
                    self.portfolio.publisher.publish_now()  # in the same batch as the fills (marks.py)
                for f in booked:
                    self.report("orphan_fill", f"fill {f.fill_id} of unknown venue order {vid} booked "
                                f"({f.symbol} {f.side} {f.amount:f} @ {f.price:f})",
                                fill_id=f.fill_id, venue_order_id=vid, symbol=f.symbol, side=f.side,
                                amount=f.amount, price=f.price, fee=f.fee, fee_currency=f.fee_currency)
                continue
            prev = None
            if new.placement == "venue" and new.trigger_state is TriggerState.ARMED:
                new.trigger_state = TriggerState.WORKING  # it trades: the venue triggered it
            if new.is_working:
                target = new.status_after_fill()
                prev = new.transition(target)
            detail = f"fill {sum((f.amount for f in fills), ZERO):f} @ avg {new.avg_price:f}" if fills else None
            booked = await self.commit(new, prev, changed=prev is not None, fills=fills, detail=detail)
            for f in fills:
                self.known_fills.add(f.fill_id)
            del booked

    async def _claim(self, vid: str, symbol: str | None) -> tuple[bool, OrderState | None]:
        """A fill names a venue order we have no id for. While one of our orders still lacks its
        venue id (its create-order answer was lost or ambiguous), ask the venue whose order it is
        so the fill is booked on it, never as an orphan. Returns (decided, our order or None)."""
        waiting = [x for x in self.orders.values()
                   if x.venue_order_id is None and x.is_working and (symbol is None or x.symbol == symbol)]
        if not waiting:
            return True, None
        try:
            vo = await self.call("fetch_order", vid, symbol)
        except Exception as e:
            self.report("lookup", f"venue order {vid} unavailable: {type(e).__name__}: {e}", venue_order_id=vid)
            return False, None
        o = self.orders.get(vo.get("clientOrderId") or "")
        if o is None or o.venue_order_id is not None:
            return True, None
        new = o.copy()
        new.venue_order_id = vid
        await self.commit(new, None, changed=False)
        return True, self.orders.get(new.client_order_id, new)

    async def refresh(self, client_order_id: str) -> None:
        o = self.orders.get(client_order_id)
        if o is None or o.venue_order_id is None:
            return
        try:
            vo = await self.call("fetch_order", o.venue_order_id, o.symbol)
        except Exception as e:
            self.report("refresh", f"{client_order_id}: {type(e).__name__}: {e}")
            return
        async with self.lock:
            await self._apply_venue_order(vo, fetch_trades=True)

    async def fetch_trades_since(self, symbol: str | None, since: int, page: int = 100, max_pages: int = 50) -> list[dict]:
        """Our venue trades since ``since`` (ms), paging backwards with ``until`` when a page is
        full (cryptocom returns at most 100 per call, newest first)."""
        out: dict[str, dict] = {}
        if str(getattr(self.client, "id", "")).startswith("binance"):
            return await self._trades_forward(symbol, since, page, max_pages)
        until: int | None = None
        for _ in range(max_pages):
            params = {"until": until} if until is not None else {}
            batch = await self.call("fetch_my_trades", symbol, since, page, params)
            for t in batch:
                if t.get("id") is not None:
                    out[str(t["id"])] = t
            if len(batch) < page:
                break
            oldest = min(int(t.get("timestamp") or 0) for t in batch)
            if until is not None and oldest >= until:
                self.report("trades", "more than one page of fills in one millisecond; some may be read late")
                break
            until = oldest
        else:
            self.report("trades", f"fill history longer than {max_pages} pages; the rest is left to the balance check")
        return sorted(out.values(), key=lambda t: (t.get("timestamp") or 0, str(t.get("id"))))

    async def _trades_forward(self, symbol: str | None, since: int, page: int, max_pages: int) -> list[dict]:
        """Binance answers startTime with the *oldest* trades from it: page forwards from the
        newest time seen (inclusive; repeats are dropped by id)."""
        out: dict[str, dict] = {}
        cursor = since
        for _ in range(max_pages):
            batch = await self.call("fetch_my_trades", symbol, cursor, page, {})
            for t in batch:
                if t.get("id") is not None:
                    out[str(t["id"])] = t
            if len(batch) < page:
                break
            newest = max(int(t.get("timestamp") or 0) for t in batch)
            if newest <= cursor:
                self.report("trades", "more than one page of fills in one millisecond; some may be read late")
                break
            cursor = newest
        else:
            self.report("trades", f"fill history longer than {max_pages} pages; the rest is left to the balance check")
        return sorted(out.values(), key=lambda t: (t.get("timestamp") or 0, str(t.get("id"))))
