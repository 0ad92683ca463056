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
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from decimal import Decimal
from typing import Any

from ...aio import cancel_and_wait
from ..events import now_ms
from ..storage.models import PositionAdjustment
from .base import BaseBroker
from .events import BalanceDiscrepancy
from .records import order_update
from .orders import D, D_or_none, OrderRequest, OrderState, OrderStatus, OrderType, Side, ValidatedOrder
from .store import FillRecord

log = logging.getLogger(__name__)
ZERO = Decimal(0)
S = OrderStatus
RANK = {S.NEW: 0, S.UNKNOWN: 0, S.OPEN: 1, S.PARTIALLY_FILLED: 2, S.FILLED: 3, S.CANCELLED: 3, S.REJECTED: 3, S.EXPIRED: 3}


def _ccxt_errors() -> Any:
    import ccxt  # the sync package's errors are shared with async/pro

    return ccxt


# venue error codes that say "something failed inside" rather than "your order is refused"
# (cryptocom: ERR_INTERNAL, SYS_ERROR, request timeout)
AMBIGUOUS_CODES = frozenset({"50001", "10001", "40801"})


def venue_error_code(e: BaseException) -> str | None:
    """The venue's error code when ccxt's message carries the venue's JSON answer
    (``"<exchange id> {json body}"``); None for a plain-text page or no body at all."""
    text = str(e)
    i = text.find("{")
    if i < 0:
        return None
    try:
        body = json.loads(text[i:])
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("code", body.get("error_code"))
    return str(code) if code not in (None, 0, "0", "") else None


class LookupResult:
    FOUND, ABSENT, UNKNOWN = "found", "absent", "unknown"


class LiveBroker(BaseBroker):
    mode = "live"

    def __init__(self, *, client: Any, request_timeout_s: float = 10.0, watch_timeout_s: float = 10.0,
                 poll_interval_s: float = 2.0, create_attempts: int = 3, use_watch: bool = True,
                 balance_tolerance: Decimal = Decimal("1e-8"), new_order_grace_s: float = 30.0,
                 watch_trades: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        self.client = client
        self.request_timeout_s = request_timeout_s
        self.watch_timeout_s = watch_timeout_s
        self.poll_interval_s = poll_interval_s
        self.create_attempts = create_attempts
        self.use_watch = use_watch
        self.balance_tolerance = balance_tolerance
        self.new_order_grace_s = new_order_grace_s
        # ccxt 4.5.90's cryptocom (pro) keeps public `trade.X` and private `user.trade.X` prints in
        # ONE cache (handle_trades -> self.trades[symbol]): watch_my_trades returns other people's
        # trades when the same client also watches the public tape. So by default fills are read
        # over REST (fetch_my_trades, account-scoped) when watch_orders says an order filled.
        self.watch_trades = watch_trades
        self.known_fills: set[str] = set()
        self.cancel_requested: set[str] = set()
        self.need_reconcile = False
        self.reconciles = 0
        self.watch_quiet = 0
        self.last_trade_poll_ms: int | None = None
        self._tasks: list[asyncio.Task] = []
        self._running = False
        self.started = asyncio.Event()

    # ---------------------------------------------------------------- plumbing
    async def call(self, name: str, *args: Any, **kw: Any) -> Any:
        fn = getattr(self.client, name)
        return await asyncio.wait_for(fn(*args, **kw), self.request_timeout_s)

    def _is_network(self, e: BaseException) -> bool:
        ccxt = _ccxt_errors()
        return isinstance(e, (asyncio.TimeoutError, TimeoutError, ccxt.NetworkError, ConnectionError, OSError))

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.portfolio.balances = dict(await self.store.balances())
        self.portfolio.replay(await self.store.fills(), await self.store.adjustments())
        self.known_fills = await self.store.fill_ids()
        await self.load_counts()
        for o in await self.store.working_orders():
            self.orders[o.client_order_id] = o
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
        self.started.set()

    async def stop(self) -> None:
        await self.drain_background()
        self._running = False
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

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
        ccxt = _ccxt_errors()
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

    # ---------------------------------------------------------------- placing
    def _ccxt_args(self, o: OrderState) -> tuple[str, float | None, dict]:
        params: dict[str, Any] = {"client_oid": o.client_order_id}
        if getattr(self.client, "id", "") != "cryptocom":
            params = {"clientOrderId": o.client_order_id}
        price = float(o.price) if o.price is not None else None
        if o.type == "market":
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

    def _definite_rejection(self, e: BaseException) -> bool:
        """True only when the venue itself refused the order (so it holds nothing). Anything else
        -- a 5xx, a plain-text gateway page (ccxt raises a bare ExchangeError for it), a timeout,
        a dropped reply -- is ambiguous: the venue may have processed the order."""
        ccxt = _ccxt_errors()
        if self._is_network(e):
            return False
        if isinstance(e, (ccxt.InvalidOrder, ccxt.InsufficientFunds, ccxt.BadRequest, ccxt.AuthenticationError,
                          ccxt.NotSupported, ccxt.ArgumentsRequired)):  # BadSymbol is a BadRequest
            return True
        if type(e) is ccxt.ExchangeError:
            code = venue_error_code(e)
            return code is not None and code not in AMBIGUOUS_CODES
        return False

    async def _send(self, o: OrderState) -> None:
        ccxt = _ccxt_errors()
        cid = o.client_order_id
        otype, price, params = self._ccxt_args(o)
        last = ""
        for attempt in range(1, self.create_attempts + 1):
            try:
                vo = await self.call("create_order", o.symbol, otype, o.side, float(o.amount), price, dict(params))
            except Exception as e:
                what = f"{type(e).__name__}: {e}"[:300]
                if self._definite_rejection(e):
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
        cid = o.client_order_id
        definitive = True
        try:
            for vo in await self.call("fetch_open_orders", o.symbol):
                if vo.get("clientOrderId") == cid:
                    return LookupResult.FOUND, vo
        except Exception as e:
            self.report("lookup", f"open orders unavailable: {type(e).__name__}: {e}")
            definitive = False
        try:
            since = o.created_ms - 60_000
            for vo in await self.call("fetch_orders", o.symbol, since):
                if vo.get("clientOrderId") == cid:
                    return LookupResult.FOUND, vo
        except Exception as e:
            self.report("lookup", f"order history unavailable: {type(e).__name__}: {e}")
            definitive = False
        return (LookupResult.ABSENT if definitive else LookupResult.UNKNOWN), None

    # ---------------------------------------------------------------- cancelling
    async def cancel(self, client_order_id: str) -> OrderState | None:
        ccxt = _ccxt_errors()
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
        try:
            await self.call("cancel_order", o.venue_order_id, o.symbol)
        except ccxt.OrderNotFound:
            pass  # already closed: refresh tells how
        except Exception as e:
            if self._is_network(e):
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

    async def cancel_all(self, symbol: str | None = None) -> int:
        n_before = {c for c, o in self.orders.items() if o.is_working and (symbol is None or o.symbol == symbol)}
        try:
            await self.call("cancel_all_orders", symbol)
        except Exception as e:
            self.report("cancel-all", f"cancel_all_orders failed: {type(e).__name__}: {e}; cancelling one by one")
        for cid in list(n_before):
            self.cancel_requested.add(cid)
            await self.refresh(cid)  # cancel-all may have closed it already
            o = self.orders.get(cid)
            if o is not None and o.is_working:
                await self.cancel(cid)
        # anything the venue still shows open (e.g. adopted since) is cancelled too
        try:
            for vo in await self.call("fetch_open_orders", symbol):
                try:
                    await self.call("cancel_order", vo["id"], vo.get("symbol"))
                except Exception as e:
                    self.report("cancel-all", f"venue order {vo.get('id')}: {e}")
        except Exception as e:
            self.report("cancel-all", f"could not verify open orders after cancel-all: {e}")
        return sum(1 for c in n_before if c not in self.orders)

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
            if o.client_order_id not in self.cancel_requested and o.type in ("ioc", "market"):
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
        target = self._venue_status(new, vo)
        venue_filled = D_or_none(vo.get("filled"))
        if fetch_trades and venue_filled is not None and venue_filled > new.filled:
            if new.venue_order_id != o.venue_order_id:
                await self.commit(new, None, changed=False)
            await self._fetch_order_trades(new)
            new = (self.orders.get(new.client_order_id) or await self.store.order(new.client_order_id) or new).copy()
        if target is None or RANK[target] < RANK[new.status] or target is new.status:
            if new.venue_order_id != o.venue_order_id:
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
        o = OrderState(client_order_id=cid, mode=self.mode, exchange=self.exchange, symbol=vo.get("symbol") or "?",
                       side=Side.parse(vo.get("side") or "?"),
                       type=OrderType(vtype) if vtype in ("market", "limit", "post_only", "ioc") else OrderType.LIMIT,
                       amount=amount, price=price, venue_order_id=vid, adopted=True,
                       created_ms=int(vo.get("timestamp") or now_ms()))
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
                for f in booked:
                    self.report("orphan_fill", f"fill {f.fill_id} of unknown venue order {vid} booked "
                                f"({f.symbol} {f.side} {f.amount:f} @ {f.price:f})",
                                fill_id=f.fill_id, venue_order_id=vid, symbol=f.symbol, side=f.side,
                                amount=f.amount, price=f.price, fee=f.fee, fee_currency=f.fee_currency)
                continue
            prev = None
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

    # ---------------------------------------------------------------- polling & reconciliation
    async def poll(self) -> None:
        """Light sync: new fills since the last poll, and the state of our working orders."""
        since = (self.last_trade_poll_ms or (now_ms() - 3_600_000)) - 5_000
        started = now_ms()
        trades = await self.fetch_trades_since(None, since)
        async with self.lock:
            await self._book_trades(trades)
        self.last_trade_poll_ms = started
        if any(o.is_working for o in self.orders.values()):
            open_ = await self.call("fetch_open_orders", None)
            await self._sync_open(open_, adopt=False)

    async def _sync_open(self, open_: list[dict], *, adopt: bool) -> None:
        venue_cids = {vo.get("clientOrderId") for vo in open_}
        venue_ids = {str(vo.get("id")) for vo in open_}
        async with self.lock:
            for vo in open_:
                if adopt or self._find(vo) is not None:
                    await self._apply_venue_order(vo, fetch_trades=True)
        for o in list(self.orders.values()):
            if not o.is_working or o.client_order_id in venue_cids or (o.venue_order_id in venue_ids):
                continue
            if o.venue_order_id is None:
                if (now_ms() - o.created_ms) / 1000 < 1.0:
                    continue  # its create-order is probably still in flight
                found, looked_up = await self.lookup(o)
                if found == LookupResult.FOUND and looked_up is not None:
                    async with self.lock:
                        await self._apply_venue_order(looked_up, fetch_trades=True)
                elif found == LookupResult.ABSENT and (now_ms() - o.created_ms) / 1000 >= self.new_order_grace_s:
                    async with self.lock:
                        await self._venue_reject(o.client_order_id, "never reached the venue (not found by client order id)")
            else:
                await self.refresh(o.client_order_id)

    async def reconcile(self) -> bool:
        """Full reconciliation with the venue. Returns False if it could not complete."""
        t0 = time.perf_counter()
        try:
            open_ = await self.call("fetch_open_orders", None)
            await self._sync_open(open_, adopt=True)
            last = max((o.created_ms for o in self.orders.values()), default=0)
            since = min([now_ms() - 24 * 3_600_000 + 60_000] + ([last - 60_000] if last else []))
            since = max(since, now_ms() - 24 * 3_600_000 + 60_000)
            started = now_ms()
            trades = await self.fetch_trades_since(None, since)
            async with self.lock:
                await self._book_trades(trades)
            self.last_trade_poll_ms = started
            # compare balances only against a stable set of fills: a fill landing between the
            # trades read and the balance read would otherwise look like a discrepancy (and be
            # counted twice once booked)
            for _ in range(5):
                bal = await self.call("fetch_balance")
                again = await self.fetch_trades_since(None, started - 60_000)
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
