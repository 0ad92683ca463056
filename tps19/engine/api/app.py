"""The control API's routes (FastAPI), on a running engine: /api/v1/...

Every route but the docs page needs ``Authorization: Bearer <TPS19_API__TOKEN>``; wrong tokens
are throttled (429) and logged. In live mode the API is read-only (GET and the kill switch)
unless TPS19_API__LIVE_ORDERS=true. Orders go through the broker's own order path (the same
OrderRequest the desk builds, the same risk stage), logged as coming from the API; a repeated
client_order_id returns the existing order.
"""

from __future__ import annotations

import hmac
import logging
from decimal import Decimal
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict

from ..trading.orders import OrderRequest, OrderState, field_words
from ...numbers import NumberError, parse_decimal
from ...throttle import FailureThrottle
from .docs import docs_page

log = logging.getLogger("tps19.api")
PREFIX = "/api/v1"
MONEY_FIELDS = ("amount", "price", "trigger_price", "trailing_pct", "trailing_distance", "activation_price",
                "stop_loss_price", "take_profit_price")


class OrderBody(BaseModel):
    """POST /api/v1/orders: the order path's OrderRequest as JSON, numbers as strings (exact)."""

    model_config = ConfigDict(extra="forbid")

    symbol: str
    side: str
    type: str
    amount: str
    price: str | None = None
    trigger_price: str | None = None
    trailing_pct: str | None = None
    trailing_distance: str | None = None
    activation_price: str | None = None
    stop_loss_price: str | None = None
    take_profit_price: str | None = None
    venue: str | None = None
    client_order_id: str | None = None


class KillBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = None


def s(d: Decimal | None) -> str | None:
    """Money as an exact decimal string (what the desk and the JSON lines show, not a float)."""
    return None if d is None else format(d.normalize(), "f")


def order_json(o: OrderState) -> dict[str, Any]:
    return {
        "client_order_id": o.client_order_id, "venue_order_id": o.venue_order_id, "mode": o.mode,
        "venue": o.exchange, "symbol": o.symbol, "side": o.side.value, "type": o.type.value,
        "amount": s(o.amount), "price": s(o.price), "filled": s(o.filled), "avg_price": s(o.avg_price),
        "fee": s(o.fee), "status": o.status.value, "reason": o.reason,
        "trigger_price": s(o.trigger_price), "trigger_state": o.trigger_state, "oco_group": o.oco_group,
        "parent_id": o.parent_id, "stop_loss_price": s(o.stop_loss_price), "take_profit_price": s(o.take_profit_price),
        "created_ms": o.created_ms, "updated_ms": o.updated_ms,
    }


async def answer(t: Any, o: OrderState) -> dict[str, Any]:
    """An order as the API answers it; a leg of an OCO (or of a bracket's protection) carries the
    whole group under ``legs``, this one first: placing an OCO makes two orders, and cancelling
    one leg cancels both."""
    out = order_json(o)
    if o.oco_group and o.trigger_state is not None:
        live = {x.client_order_id: x for x in (*t.broker.emulator.held.values(), *t.broker.orders.values())
                if x.oco_group == o.oco_group}
        legs = [live.get(x.client_order_id, x) for x in await t.store.group(o.oco_group)]
        legs = [x for x in legs if x.trigger_state is not None and x.client_order_id != o.client_order_id]
        out["legs"] = [order_json(o)] + [order_json(x) for x in legs]
    return out


def bearer_check(token: str, throttle: FailureThrottle, log_to: Any) -> Any:
    """The dependency every route but the docs page has: the bearer token, wrong ones throttled
    and logged (``log_to(level, message, **fields)``: the engine's log)."""
    want = token.encode()

    def authorised(request: Request) -> None:
        client = request.client.host if request.client else "?"
        wait = throttle.retry_after(client)
        if wait > 0:
            raise HTTPException(429, "too many wrong tokens: try again later",
                                headers={"Retry-After": str(max(1, round(wait)))})
        got = request.headers.get("Authorization", "")
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), want):
            if got:  # a guess: counted against the client and logged (a request with no token guesses nothing)
                throttle.failed(client)
                log.warning("api: wrong token from %s on %s %s", client, request.method, request.url.path)
                log_to("warning", "api: refused a request without the right token", client=client,
                       route=f"{request.method} {request.url.path}")
            why = ("the bearer token is wrong (the server's is TPS19_API__TOKEN)" if got else
                   "a bearer token is required (Authorization: Bearer TPS19_API__TOKEN)")
            raise HTTPException(401, why, headers={"WWW-Authenticate": "Bearer"})
        throttle.succeeded(client)

    return authorised


def engine_status(engine: Any, read_only: bool) -> dict[str, Any]:
    """Mode, venue, streams, kill switch and breakers of one engine."""
    out: dict[str, Any] = {"mode": engine.mode, "venue": engine.venue_name, "exchange": engine.settings.exchange.id,
                           "symbols": engine.symbols, "started": engine.started_at is not None, "read_only": read_only,
                           "storage_halt": engine.storage_problem,
                           "strategy": engine.strategy.name if engine.strategy is not None else None}
    if engine.feed is not None:
        out["streams"] = [{"stream": k, "symbol": sym, "state": st.state.value, "messages": st.messages}
                          for (k, sym), st in sorted(engine.feed.stats.streams.items())]
    t = engine.trading
    if t is not None:
        risk = t.broker.risk
        out["kill_switch"] = {"engaged": risk.killed and not risk.halted_by_breaker,
                              "reason": risk.kill_reason if risk.killed else None}
        out["breakers"] = {"halted": risk.halted_by_breaker,
                           "reason": risk.kill_reason if risk.halted_by_breaker else None}
        out["holds"] = dict(risk.holds)
    return out


def new_app() -> FastAPI:
    return FastAPI(title="TPS19 control API", version="1", docs_url=None, redoc_url=None, openapi_url=None)


def add_docs(app: FastAPI, auth: list[Any]) -> None:
    @app.get(f"{PREFIX}/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app))

    @app.get(f"{PREFIX}/openapi.json", dependencies=auth, include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())


def build_app(engine: Any, token: str, *, live_orders: bool, throttle: FailureThrottle | None = None,
              prefix: str = PREFIX, app: FastAPI | None = None) -> FastAPI:
    """The routes of one engine under ``prefix`` (on ``app`` when given: the API of several venues
    puts each venue's routes under /api/v1/venues/VENUE on one app)."""
    standalone = app is None
    app = app or new_app()
    throttle = throttle or FailureThrottle()
    read_only = engine.mode == "live" and not live_orders
    authorised = bearer_check(token, throttle, engine.log)
    auth = [Depends(authorised)]

    def trading() -> Any:
        if engine.trading is None:
            raise HTTPException(503, "the engine has not started trading yet")
        return engine.trading

    def writable(what: str) -> None:
        if read_only:
            raise HTTPException(403, f"the API is read-only in live mode ({what} refused): set "
                                     "TPS19_API__LIVE_ORDERS=true to let it place orders no one confirms")

    if standalone:
        add_docs(app, auth)

    @app.get(f"{prefix}/status", dependencies=auth)
    async def status() -> dict[str, Any]:
        """Mode, venue, streams, kill switch and breakers."""
        return engine_status(engine, read_only)

    @app.get(f"{prefix}/balances", dependencies=auth)
    async def balances() -> dict[str, Any]:
        t = trading()
        locked = t.portfolio.locked_source() if t.portfolio.locked_source else {}
        return {"mode": engine.mode, "balances": {
            c: {"total": s(a), "locked": s(locked.get(c, Decimal(0))), "free": s(a - locked.get(c, Decimal(0)))}
            for c, a in sorted(t.portfolio.balances.items())}}

    @app.get(f"{prefix}/positions", dependencies=auth)
    async def positions() -> dict[str, Any]:
        t = trading()
        out = []
        for sym, p in sorted(t.portfolio.positions.items()):
            mark = t.portfolio.mark(sym)
            out.append({"symbol": sym, "qty": s(p.qty), "avg_entry": s(p.avg_entry), "realized_pnl": s(p.realized),
                        "fees": s(p.fees), "mark": s(mark), "unrealized_pnl": s(p.unrealized(mark))})
        return {"mode": engine.mode, "positions": out}

    @app.get(f"{prefix}/orders", dependencies=auth)
    async def orders() -> dict[str, Any]:
        """Working orders, protective ones held by TPS19 included."""
        return {"orders": [order_json(o) for o in trading().broker.open_orders()]}

    @app.get(f"{prefix}/fills", dependencies=auth)
    async def fills(limit: int = 100) -> dict[str, Any]:
        rows = (await trading().store.fills())[-max(1, min(limit, 10_000)):]
        return {"fills": [{"fill_id": f.fill_id, "client_order_id": f.client_order_id, "symbol": f.symbol,
                           "side": f.side, "price": s(f.price), "amount": s(f.amount), "fee": s(f.fee),
                           "fee_currency": f.fee_currency, "ts": f.ts} for f in rows]}

    @app.post(f"{prefix}/orders", dependencies=auth, status_code=201)
    async def place(body: OrderBody, request: Request) -> JSONResponse:
        """Place an order of any kind the order path has (market, limit, post_only, ioc, stop_market,
        stop_limit, take_profit, take_profit_limit, trailing_stop, oco; an entry with stop_loss_price
        and/or take_profit_price is a bracket). 201 with its client order id (an OCO: both legs under
        ``legs``, the stop-loss first, under the given id); a repeated
        client_order_id returns the existing order (200); 422 names the refused field or risk limit."""
        writable("placing an order")
        t = trading()
        if body.venue is not None and body.venue.lower() not in {engine.venue_name.lower(),
                                                                  engine.settings.exchange.id.lower()}:
            raise HTTPException(422, f"venue {body.venue[:40]!r}: this engine trades {engine.settings.exchange.id}")
        cid = body.client_order_id
        if cid:
            existing = t.broker.orders.get(cid) or t.broker.emulator.held.get(cid) or await t.store.order(cid)
            if existing is not None:
                return JSONResponse(await answer(t, existing), status_code=200)
        numbers: dict[str, Decimal | None] = {}
        for name in MONEY_FIELDS:
            raw = getattr(body, name)
            try:
                numbers[name] = None if raw is None else parse_decimal(raw, field_words(name))
            except NumberError as err:
                raise HTTPException(422, str(err)) from None
        n = numbers
        req = OrderRequest(body.symbol, body.side, body.type, n["amount"] or Decimal(0), n["price"], cid,
                           trigger_price=n["trigger_price"], trailing_pct=n["trailing_pct"],
                           trailing_distance=n["trailing_distance"], activation_price=n["activation_price"],
                           stop_loss_price=n["stop_loss_price"], take_profit_price=n["take_profit_price"])
        client = request.client.host if request.client else "?"
        o = await t.broker.place(req)
        engine.log("info", "order from the API", client=client, client_order_id=o.client_order_id, symbol=o.symbol,
                   side=o.side.value, type=o.type.value, status=o.status.value, reason=o.reason or "")
        if o.status.value == "rejected":
            return JSONResponse({"detail": (o.reason or "rejected").removeprefix("not sent: "), **order_json(o)},
                                status_code=422)
        return JSONResponse(await answer(t, o), status_code=201)

    @app.delete(f"{prefix}/orders/{{client_order_id}}", dependencies=auth)
    async def cancel(client_order_id: str) -> dict[str, Any]:
        """Cancel an order; one leg of a bracket's or an OCO's protection cancels the group, as on the desk."""
        writable("cancelling an order")
        t = trading()
        o = await t.broker.cancel(client_order_id)
        if o is None:
            known = t.broker.orders.get(client_order_id) or await t.store.order(client_order_id)
            if known is None:
                raise HTTPException(404, f"no order {client_order_id[:60]!r}")
            raise HTTPException(409, f"order {client_order_id} is {known.status.value}: nothing to cancel")
        engine.log("info", "order cancelled from the API", client_order_id=client_order_id)
        return await answer(t, o)

    @app.post(f"{prefix}/kill", dependencies=auth)
    async def kill(body: KillBody | None = None) -> dict[str, Any]:
        """Engage the kill switch (allowed in read-only live mode too: it only stops trading)."""
        reason = f"API: {body.reason}" if body is not None and body.reason else "API kill switch"
        cancelled = await trading().broker.kill(reason[:200])
        engine.log("warning", "kill switch engaged from the API", reason=reason)
        return {"kill_switch": True, "cancelled": cancelled, "reason": reason[:200]}

    @app.post(f"{prefix}/release", dependencies=auth)
    async def release() -> dict[str, Any]:
        writable("releasing the kill switch")
        trading().broker.release()
        engine.log("warning", "kill switch released from the API")
        return {"kill_switch": False}

    return app


def build_venues_app(venues: Any, token: str, *, live_orders: bool, throttle: FailureThrottle | None = None) -> FastAPI:
    """One API over every venue of a run with several (tps19.engine.multivenue.VenueSet): each
    venue's routes under /api/v1/venues/VENUE/... (status, balances, positions, orders, fills,
    place, cancel, kill, release: that venue only), and over all of them /api/v1/status,
    /api/v1/venues (equity and P&L per venue and in total), /api/v1/orders (every venue's working
    orders; POST needs "venue"), /api/v1/kill and /api/v1/release (every venue)."""
    app = new_app()
    throttle = throttle or FailureThrottle()
    engines = venues.engines
    first = next(iter(engines.values()))

    def log_all(level: str, message: str, **fields: Any) -> None:
        for e in engines.values():
            e.log(level, message, **fields)

    auth = [Depends(bearer_check(token, throttle, log_all))]
    read_only = first.mode == "live" and not live_orders
    add_docs(app, auth)
    venue_place: dict[str, Any] = {}
    venue_cancel: dict[str, Any] = {}
    for v, e in engines.items():
        build_app(e, token, live_orders=live_orders, throttle=throttle, prefix=f"{PREFIX}/venues/{v}", app=app)
        venue_place[v] = next(r.endpoint for r in app.routes  # type: ignore[attr-defined]
                              if getattr(r, "path", "") == f"{PREFIX}/venues/{v}/orders" and "POST" in r.methods)  # type: ignore[attr-defined]
        venue_cancel[v] = next(r.endpoint for r in app.routes  # type: ignore[attr-defined]
                               if getattr(r, "path", "") == f"{PREFIX}/venues/{v}/orders/{{client_order_id}}"
                               and "DELETE" in r.methods)  # type: ignore[attr-defined]

    @app.get(f"{PREFIX}/status", dependencies=auth)
    async def status() -> dict[str, Any]:
        """Every venue's mode, streams, kill switch and breakers (a venue that did not start says why)."""
        return {"mode": first.mode, "read_only": read_only, "venues": {
            v: ({"started": False, "error": venues.failed[v]} if v in venues.failed else engine_status(e, read_only))
            for v, e in engines.items()}}

    @app.get(f"{PREFIX}/venues", dependencies=auth)
    async def totals() -> dict[str, Any]:
        """Equity and P&L per venue and in total, in the reporting currency (the `venues` JSON line)."""
        return venues.totals()  # type: ignore[no-any-return]

    @app.get(f"{PREFIX}/orders", dependencies=auth)
    async def orders() -> dict[str, Any]:
        """Every venue's working orders (each names its venue)."""
        return {"orders": [order_json(o) for e in venues.running.values() if e.trading is not None
                           for o in e.trading.broker.open_orders()]}

    @app.post(f"{PREFIX}/orders", dependencies=auth, status_code=201)
    async def place(body: OrderBody, request: Request) -> JSONResponse:
        """Place an order on the venue its "venue" field names (the same as POST
        /api/v1/venues/VENUE/orders); with several venues the field is required."""
        venue = (body.venue or "").strip().lower()
        if venue not in engines:
            hint = f"\"venue\" is one of {', '.join(engines)} (or POST {PREFIX}/venues/VENUE/orders)"
            raise HTTPException(422, f"venue {body.venue[:40]!r} is not one of this run's venues: {hint}"
                                if body.venue else f"several venues run here: name the order's venue, {hint}")
        return await venue_place[venue](body.model_copy(update={"venue": None}), request)  # type: ignore[no-any-return]

    @app.delete(f"{PREFIX}/orders/{{client_order_id}}", dependencies=auth)
    async def cancel(client_order_id: str) -> dict[str, Any]:
        """Cancel an order on the venue that holds it (the same as DELETE
        /api/v1/venues/VENUE/orders/ID): GET /api/v1/orders lists them with their venue."""
        for v, e in venues.running.items():
            if e.trading is not None and client_order_id in e.trading.broker.orders:
                return await venue_cancel[v](client_order_id)  # type: ignore[no-any-return]
        raise HTTPException(404, f"no order {client_order_id[:60]!r} on any venue of this run (an order of an "
                                 f"earlier run: DELETE {PREFIX}/venues/VENUE/orders/ID)")

    @app.post(f"{PREFIX}/kill", dependencies=auth)
    async def kill(body: KillBody | None = None) -> dict[str, Any]:
        """Engage every venue's kill switch (allowed in read-only live mode too: it only stops trading)."""
        reason = f"API: {body.reason}" if body is not None and body.reason else "API kill switch"
        cancelled = await venues.kill(reason=reason[:200])
        log_all("warning", "kill switch engaged on every venue from the API", reason=reason)
        return {"kill_switch": True, "cancelled": cancelled, "reason": reason[:200]}

    @app.post(f"{PREFIX}/release", dependencies=auth)
    async def release() -> dict[str, Any]:
        """Release every venue's kill switch."""
        if read_only:
            raise HTTPException(403, "the API is read-only in live mode (releasing the kill switch refused): set "
                                     "TPS19_API__LIVE_ORDERS=true to let it place orders no one confirms")
        venues.release()
        log_all("warning", "kill switch released on every venue from the API")
        return {"kill_switch": False}

    return app
