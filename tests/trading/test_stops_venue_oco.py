"""Venue-native OCO (issue 19) in live mode against the simulated exchange on loopback with the
unmodified ccxt 4.5.90 cryptocom client: the two legs go out as one private/create-order-list, the
venue cancels one leg when the other triggers or trades and the engine books it, cancelling one
leg cancels the list, and a restart adopts (or follows) the venue's list, group kept."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import pytest

from tps19.engine.assembly import build_trading
from tps19.engine.trading import OrderRequest

from .helpers import settings, until
from .simhelp import KEY, venue_totals
from .test_stops_live import live_stack, mid, settled

D = Decimal
pytestmark = [pytest.mark.slow, pytest.mark.parametrize("db_target", ["sqlite"], indirect=True)]
SYM = "BTC/USDT"


async def place_oco(s, m: D, amount: D = D("0.1")):
    stop_level, take_level = (m * D("0.97")).quantize(D("0.01")), (m * D("1.03")).quantize(D("0.01"))
    stop = await s.broker.place(OrderRequest(SYM, "sell", "oco", amount, stop_loss_price=stop_level,
                                             take_profit_price=take_level))
    legs = [o for o in s.broker.open_orders() if o.oco_group == stop.oco_group]
    take = next(o for o in legs if o.client_order_id != stop.client_order_id)
    return stop, take, stop_level, take_level


def venue_legs(sim) -> dict[str, dict]:
    return {v["client_oid"]: v for v in sim.open_orders(KEY)}


@pytest.mark.parametrize("placement", ["venue", "auto"])
async def test_oco_is_one_venue_list_and_the_stop_leg_filling_cancels_the_take_profit(sim, clients, bus, db, placement):
    mine, _ = clients
    s = await live_stack(bus, db, mine, stop_placement=placement)
    stop, take, stop_level, take_level = await place_oco(s, await mid(mine))
    assert stop.status.value == "open", stop.reason
    # the engine: both legs venue-native, one group; the stop waits, the take-profit rests on the book
    assert (stop.placement, stop.type.value, stop.trigger_state.value, stop.trigger_price) == (
        "venue", "stop_limit", "armed", stop_level)
    # its limit: the 25 % price band below the level, rounded towards the level
    assert stop.price == (stop_level * D("0.75")).quantize(D("0.01"), ROUND_CEILING)
    assert (take.placement, take.type.value, take.trigger_state.value, take.price, take.status.value) == (
        "venue", "take_profit_limit", "working", take_level, "open")
    assert stop.client_order_id not in s.broker.emulator.held and take.client_order_id not in s.broker.emulator.held
    # the venue: one OCO list of a STOP_LIMIT at the level and a LIMIT at the take-profit
    v = venue_legs(sim)
    assert set(v) == {stop.client_order_id, take.client_order_id}
    assert (v[stop.client_order_id]["order_type"], D(v[stop.client_order_id]["ref_price"])) == ("STOP_LIMIT", stop_level)
    assert (v[take.client_order_id]["order_type"], D(v[take.client_order_id]["limit_price"])) == ("LIMIT", take_level)
    assert v[stop.client_order_id]["list_id"] == v[take.client_order_id]["list_id"]
    assert sim.account_balances(KEY)["BTC"]["used"] == D("0.1")  # one reserve for both legs
    # our books count that one reserve once: 0.9 BTC is still free to sell
    assert s.broker.free_base(SYM) == D("0.9")
    sim.shock(SYM, -8)  # through the stop: the venue fills it and cancels the take-profit
    r_stop = await settled(db, stop.client_order_id)
    r_take = await settled(db, take.client_order_id, "cancelled")
    assert (r_stop.filled, r_stop.trigger_state, r_take.filled) == (D("0.1"), "working", 0)
    assert sim.open_orders(KEY) == []
    await until(lambda: s.portfolio.balances == venue_totals(sim))
    await s.stop()


async def test_take_profit_leg_trading_cancels_the_stop_and_cancelling_one_leg_cancels_the_list(sim, clients, bus, db):
    mine, _ = clients
    s = await live_stack(bus, db, mine, stop_placement="venue")
    stop, take, _, _ = await place_oco(s, await mid(mine))
    sim.shock(SYM, 5)  # the jump sweeps the take-profit's limit sell on its way
    assert (await settled(db, take.client_order_id)).filled == D("0.1")
    assert (await settled(db, stop.client_order_id, "cancelled")).filled == 0
    sim.shock(SYM, -12)  # a later fall wakes nothing: never both filled
    assert sim.open_orders(KEY) == []
    # a second OCO: `c` on its stop leg cancels the whole list at the venue (cancel-order-list)
    stop2, take2, _, _ = await place_oco(s, await mid(mine))
    assert len(sim.open_orders(KEY)) == 2
    await s.broker.cancel(stop2.client_order_id)
    await settled(db, stop2.client_order_id, "cancelled")
    await settled(db, take2.client_order_id, "cancelled")
    assert sim.open_orders(KEY) == [] and s.broker.open_orders() == []
    assert "oco_both_filled" not in s.broker.issues
    await s.stop()


async def test_restart_follows_our_list_and_adopts_a_foreign_one_group_kept(sim, clients, bus, db):
    mine, _ = clients
    s = await live_stack(bus, db, mine, stop_placement="venue")
    stop, take, _, _ = await place_oco(s, await mid(mine), D("0.2"))
    await s.stop()
    # placed on the venue while TPS19 was down (another desk, the venue's own UI): one OCO list
    m = await mid(mine)
    res = await mine.create_orders([
        {"symbol": SYM, "type": "limit", "side": "sell", "amount": 0.3, "price": float((m * D("1.04")).quantize(D("0.01")))},
        {"symbol": SYM, "type": "stop_limit", "side": "sell", "amount": 0.3, "price": float((m * D("0.8")).quantize(D("0.01"))),
         "params": {"ref_price": float((m * D("0.96")).quantize(D("0.01")))}},
    ], {"contingency_type": "OCO"})
    list_id = res[0]["id"]
    s = await live_stack(bus, db, mine, stop_placement="venue")
    orders = {o.client_order_id: o for o in s.broker.open_orders()}
    # ours: followed by client id, not adopted, group as placed
    assert {orders[stop.client_order_id].oco_group, orders[take.client_order_id].oco_group} == {stop.oco_group}
    assert not orders[stop.client_order_id].adopted
    adopted = [o for o in orders.values() if o.adopted]
    assert sorted((o.type.value, o.placement, o.trigger_state.value, o.oco_group) for o in adopted) == [
        ("stop_limit", "venue", "armed", f"venue-{list_id}"), ("take_profit_limit", "venue", "working", f"venue-{list_id}")]
    # both lists fire on one fall: each stop leg fills, each take-profit is cancelled, never both
    sim.shock(SYM, -15)
    await settled(db, stop.client_order_id)
    await settled(db, take.client_order_id, "cancelled")
    a_stop = next(o for o in adopted if o.type.value == "stop_limit")
    a_take = next(o for o in adopted if o.type.value == "take_profit_limit")
    assert (await settled(db, a_stop.client_order_id)).filled == D("0.3")
    assert (await settled(db, a_take.client_order_id, "cancelled")).filled == 0
    await until(lambda: s.portfolio.balances == venue_totals(sim))
    await s.stop()


async def test_an_oco_list_the_venue_took_but_answered_504_is_followed_never_resent(sim, clients, bus, db):
    """The gateway times out after the matcher placed the list: both legs are looked up by client
    id, found open as one list, and work as an OCO; nothing is sent a second time."""
    mine, _ = clients
    s = await live_stack(bus, db, mine, stop_placement="venue")
    sim.faults.accept_then_fail(1, 504)
    stop, take, stop_level, _ = await place_oco(s, await mid(mine))
    assert sim.stats["injected_http_errors"] == 1
    assert (stop.status.value, stop.trigger_state.value, stop.trigger_price) == ("open", "armed", stop_level)
    assert (await settled(db, take.client_order_id, "open")).venue_order_id is not None
    v = venue_legs(sim)
    assert set(v) == {stop.client_order_id, take.client_order_id} and len(sim.open_orders(KEY)) == 2
    assert v[stop.client_order_id]["list_id"] == v[take.client_order_id]["list_id"]
    sim.shock(SYM, -8)  # still one list: the stop fills, the venue cancels the take-profit
    assert (await settled(db, stop.client_order_id)).filled == D("0.1")
    await settled(db, take.client_order_id, "cancelled")
    await until(lambda: s.portfolio.balances == venue_totals(sim))
    await s.stop()


async def test_an_oco_list_that_never_reached_the_venue_is_refused_whole(sim, clients, bus, db):
    """A 503 before the matcher: neither leg is at the venue, so both are refused together (a
    stop without its take-profit, or the reverse, is never placed leg by leg)."""
    mine, _ = clients
    s = await live_stack(bus, db, mine, stop_placement="venue")
    sim.faults.fail_next_requests(1, 503)
    stop = await s.broker.place(OrderRequest(SYM, "sell", "oco", D("0.1"), stop_loss_price=D("1000"),
                                             take_profit_price=D("1000000")))
    assert stop.oco_group
    legs = [await settled(db, o.client_order_id, "rejected") for o in await s.broker.store.group(stop.oco_group)]
    assert len(legs) == 2 and all("never reached the venue" in (r.reason or "") for r in legs), legs
    assert sim.open_orders(KEY) == [] and sim.account_balances(KEY)["BTC"]["used"] == 0
    # the legs were read back together, each request signed with its own nonce: none was taken
    # for a replay (their identical lookups, one per leg, were refused 40006 and left both unknown)
    assert sim.stats["replays_refused"] == 0
    await s.stop()


async def test_a_100_percent_price_band_gives_the_stop_leg_the_lowest_price_not_zero(sim, clients, bus, db):
    """A 100 % band means "any price", but a limit of 0 is refused, and so is one worth less than the
    market's minimum notional (ccxt's cryptocom markets do not carry the venue's min_notional,
    binance's do: the market here is given it from the venue's instrument, as binance's would be)."""
    mine, _ = clients
    mine.markets[SYM]["limits"]["cost"]["min"] = float(mine.markets[SYM]["info"]["min_notional"])
    s = await build_trading(mode="live", bus=bus, db=db, client=mine, markets=mine.markets,
                            settings=settings(price_band_pct=100), snapshot_interval_s=0, poll_interval_s=0.2,
                            watch_timeout_s=1.0, request_timeout_s=3.0, stop_placement="venue")
    await s.start()
    m = await mid(mine)
    stop_level = (m * D("0.97")).quantize(D("0.01"))
    stop = await s.broker.place(OrderRequest(SYM, "sell", "oco", D("0.1"), stop_loss_price=stop_level,
                                             take_profit_price=(m * D("1.03")).quantize(D("0.01"))))
    # "any price" within the venue's rules: the lowest limit worth the market's minimum notional
    min_cost = D(str(mine.markets[SYM]["limits"]["cost"]["min"]))
    lowest = (min_cost / D("0.1")).quantize(D("0.01"), ROUND_CEILING)
    assert (stop.status.value, stop.trigger_price, stop.price) == ("open", stop_level, lowest), stop.reason
    assert D(venue_legs(sim)[stop.client_order_id]["limit_price"]) == lowest > 0
    await s.stop()
