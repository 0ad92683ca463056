"""Ambiguous venue answers (a 5xx after the venue processed the order, a failed lookup) never
book an accepted order as rejected: the order is `unknown` until a lookup by client order id
settles it, and its fills are booked on it (no orphan). Real LiveBroker over ccxt on the sim."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from tps19.engine.storage import Fill, Order, OrderEvent
from tps19.engine.trading import TradingIssue
from tps19.engine.assembly import build_trading

from .helpers import settings, until
from .simhelp import KEY, inside_spread_price, venue_totals

D = Decimal
pytestmark = pytest.mark.slow


async def stack(bus, db, client, **kw):
    kw.setdefault("poll_interval_s", 0.2)
    s = await build_trading(mode="live", bus=bus, db=db, client=client, markets=client.markets, settings=settings(),
                            snapshot_interval_s=0, watch_timeout_s=1.0, request_timeout_s=3.0, **kw)
    await s.start()
    return s


async def statuses(db, cid):
    async with db.session() as ses:
        return (await ses.execute(select(OrderEvent.to_status).where(OrderEvent.client_order_id == cid)
                                  .order_by(OrderEvent.id))).scalars().all()


async def fills_of(db):
    async with db.session() as ses:
        return (await ses.execute(select(Fill))).scalars().all()


@pytest.mark.parametrize("status", [504, 503])
@pytest.mark.sqlite_only
async def test_plain_text_5xx_after_the_venue_accepted_is_not_a_rejection(sim, clients, bus, db, status):
    mine, other = clients
    s = await stack(bus, db, mine)
    price = await inside_spread_price(mine)
    sim.faults.accept_then_fail(1, status)
    o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.02", price)
    assert sim.stats["injected_http_errors"] == 1
    [vo] = sim.open_orders(KEY)
    assert o.status.value == "open", o.reason
    assert o.venue_order_id == vo["order_id"] and vo["client_oid"] == o.client_order_id
    # (the private stream may report it open before the 504 arrives: then it never looked unknown)
    assert await statuses(db, o.client_order_id) in (["new", "unknown", "open"], ["new", "open"])
    # its fill arrives: it is booked on this order, not as an orphan
    await other.create_order("BTC/USDT", "limit", "sell", 0.02, float(price))
    await until(lambda: o.client_order_id not in s.broker.orders, 10)
    final = await s.store.order(o.client_order_id)
    assert final.status.value == "filled" and final.filled == D("0.02")
    fills = await fills_of(db)
    assert fills and {f.client_order_id for f in fills} == {o.client_order_id}
    assert "orphan_fill" not in s.broker.issues
    assert s.portfolio.balances == venue_totals(sim)
    await s.stop()


@pytest.mark.sqlite_only
async def test_market_order_answered_504_is_filled_with_its_fill(sim, clients, bus, db):
    mine, _ = clients
    s = await stack(bus, db, mine)
    sim.faults.accept_then_fail(1, 504)
    m = await s.broker.place_order("BTC/USDT", "buy", "market", "0.01")
    assert m.status.value == "filled" and m.filled == D("0.01"), m.reason
    fills = await fills_of(db)
    assert [f.client_order_id for f in fills] == [m.client_order_id] * len(fills) and fills
    assert "orphan_fill" not in s.broker.issues
    assert s.portfolio.balances == venue_totals(sim)
    await s.stop()


@pytest.mark.sqlite_only
async def test_order_that_never_reached_the_venue_ends_rejected_after_the_lookup(sim, clients, bus, db):
    """A plain 503 from the gateway before the venue saw the order: the lookup by client order
    id finds nothing, so (with no attempt left) the order is closed as never sent."""
    mine, _ = clients
    s = await stack(bus, db, mine, create_attempts=1, use_watch=False, poll_interval_s=3600)
    price = await inside_spread_price(mine)
    sim.faults.fail_next_requests(1, 503)
    o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.01", price)
    assert o.status.value == "rejected" and o.reason.startswith("not sent:"), o.reason
    assert "never reached the venue" in o.reason
    assert await statuses(db, o.client_order_id) == ["new", "unknown", "rejected"]
    assert sim.open_orders(KEY) == [] and await mine.fetch_orders("BTC/USDT") == []
    # not sent: it does not count against the daily order limit
    assert await s.store.orders_since(0) == 0
    await s.stop()


async def test_failed_lookup_leaves_unknown_and_reconcile_settles(sim, clients, bus, db):
    """The venue took a market order, answered 504, and every lookup then fails: the order stays
    `unknown` (not rejected, not re-sent). The fill that the next poll reads still finds its
    order, and reconciliation settles it as filled."""
    mine, _ = clients
    s = await stack(bus, db, mine, use_watch=False, poll_interval_s=3600)
    issues = bus.subscribe(TradingIssue)
    sim.faults.accept_then_fail(1, 504)

    def arm(kind, payload):  # once the venue has processed the order, fail the lookups
        if kind == "order" and getattr(payload, "account", None) is sim.accounts[KEY]:
            sim.engine.listeners.remove(arm)
            sim.faults.fail_next_requests(4, 503)
    sim.engine.listeners.append(arm)
    m = await s.broker.place_order("BTC/USDT", "buy", "market", "0.01")
    assert sim.stats["injected_http_errors"] == 5
    assert m.status.value == "unknown" and m.venue_order_id is None, m.reason
    [row] = [o for o in s.broker.open_orders() if o.client_order_id == m.client_order_id]
    assert row.status.value == "unknown"
    async with db.session() as ses:
        assert (await ses.get(Order, m.client_order_id)).status == "unknown"
    assert len(await mine.fetch_orders("BTC/USDT")) == 1  # sent once, never re-sent
    await s.broker.poll()  # reads the venue's fills before anything else
    fills = await fills_of(db)
    assert fills and {f.client_order_id for f in fills} == {m.client_order_id}
    assert "orphan_fill" not in s.broker.issues
    assert await s.broker.reconcile()
    final = await s.store.order(m.client_order_id)
    assert final.status.value == "filled" and final.filled == D("0.01")
    assert await statuses(db, m.client_order_id) == ["new", "unknown", "filled"]
    assert s.portfolio.balances == venue_totals(sim)
    assert not any(i.kind == "orphan_fill" for i in issues.drain())
    await s.stop()


async def test_unknown_limit_order_is_settled_open_by_reconcile(sim, clients, bus, db):
    mine, _ = clients
    s = await stack(bus, db, mine, use_watch=False, poll_interval_s=3600)
    price = await inside_spread_price(mine)
    sim.faults.accept_then_fail(1, 504)

    def arm(kind, payload):
        if kind == "order" and getattr(payload, "account", None) is sim.accounts[KEY]:
            sim.engine.listeners.remove(arm)
            sim.faults.fail_next_requests(4, 503)
    sim.engine.listeners.append(arm)
    o = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.01", price)
    assert o.status.value == "unknown", o.reason
    [vo] = sim.open_orders(KEY)
    assert await s.broker.reconcile()
    [cur] = s.broker.open_orders()
    assert (cur.client_order_id, cur.status.value, cur.venue_order_id) == (o.client_order_id, "open", vo["order_id"])
    assert not cur.adopted and len(sim.open_orders(KEY)) == 1
    assert await statuses(db, o.client_order_id) == ["new", "unknown", "open"]
    await s.stop()


@pytest.mark.sqlite_only
async def test_definite_venue_rejection_is_still_rejected_at_once(sim, clients, bus, db):
    mine, _ = clients
    s = await stack(bus, db, mine)
    s.broker.risk.account = None  # the risk stage's free-balance check would refuse it before the venue sees it
    big = await s.broker.place_order("BTC/USDT", "sell", "limit", "3", "70000")  # more BTC than we hold
    assert big.status.value == "rejected" and "InsufficientFunds" in big.reason
    assert await statuses(db, big.client_order_id) == ["new", "rejected"]
    await s.stop()


def test_desk_lists_an_unknown_order_among_the_working_ones():
    from tps19.engine.trading import OrderUpdate
    from tps19.desk.widgets.state import DeskState

    st = DeskState(["BTC/USDT"])
    up = OrderUpdate(client_order_id="t19-x-abcdef", venue_order_id=None, mode="live", symbol="BTC/USDT", side="buy",
                     type="limit", amount=D("0.01"), price=D("100"), filled=D(0), avg_price=None, fee=D(0),
                     status="unknown", previous_status="new")
    st.apply([up])
    assert [(o.client_order_id, o.status) for o in st.working_orders("BTC/USDT")] == [("t19-x-abcdef", "unknown")]
    assert any(e.message.startswith("unknown: buy 0.01 BTC/USDT") for e in st.log)


@pytest.mark.parametrize("error,definite", [
    ("ExchangeError:cryptocom 504 Gateway Timeout", False),  # a gateway's plain-text page
    ("ExchangeError:cryptocom <html><body>502 Bad Gateway</body></html>", False),
    ('ExchangeError:cryptocom {"id":7,"method":"private/create-order","code":50001,"message":"ERR_INTERNAL"}', False),
    ('ExchangeError:cryptocom {"id":7,"method":"private/create-order","code":308,"message":"INVALID_PRICE"}', True),
    ("RequestTimeout:cryptocom timed out", False),
    ("ExchangeNotAvailable:cryptocom 503", False),
    ("InvalidOrder:cryptocom bad size", True),
    ("InsufficientFunds:cryptocom no money", True),
    ("BadSymbol:cryptocom no such market", True),
    ("AuthenticationError:cryptocom bad key", True),
    ("RuntimeError:something inside ccxt broke", False),
])
def test_only_a_definite_venue_refusal_counts_as_a_rejection(error, definite):
    import builtins

    import ccxt

    from tps19.engine.trading.live_venue import definite_rejection

    name, text = error.split(":", 1)
    exc = (getattr(ccxt, name, None) or getattr(builtins, name))(text)
    assert definite_rejection(exc) is definite
