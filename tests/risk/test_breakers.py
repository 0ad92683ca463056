"""Circuit breakers: they trip at their limit, halt new risk (exits pass), and the halt survives a restart."""

from __future__ import annotations

from decimal import Decimal as D

from tps19.config import RiskSettings
from tps19.engine.risk.breakers import breaker_reason
from tps19.engine.assembly import build_trading

from ..trading.conftest import START, bus, db, markets  # noqa: F401 (fixtures)
from ..trading.helpers import book, settings, until


def test_drawdown_breaker_trips_at_its_limit_not_before():
    s = RiskSettings(max_drawdown_pct=D("20"), daily_loss_limit=D("1000"))
    assert breaker_reason(s, pnl_today=D(0), equity=D("80.01"), peak=D("100")) is None
    assert breaker_reason(s, pnl_today=D(0), equity=D("80"), peak=D("100")) == (
        "max drawdown 20% reached (equity 80.00 is 20.00% below its peak 100.00)")


def test_daily_loss_breaker_trips_at_its_limit_not_before():
    s = RiskSettings(daily_loss_limit=D("50"))
    assert breaker_reason(s, pnl_today=D("-49.99"), equity=None, peak=None) is None
    assert breaker_reason(s, pnl_today=D("-50"), equity=None, peak=None) == "daily loss limit 50 reached (P&L today -50.00)"


async def _stack(bus, db, markets, **risk):
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=settings(**risk),
                            exchange="cryptocom", starting_balances=dict(START), snapshot_interval_s=0)
    await s.start()
    return s


def _btc(px: float):
    return book(bids=((px - 0.5, 5.0),), asks=((px + 0.5, 5.0),))


async def test_a_drawdown_halts_new_risk_and_the_halt_survives_a_restart(bus, db, markets):
    s = await _stack(bus, db, markets, max_drawdown_pct=D("20"))
    try:
        bus.publish(_btc(50000))  # equity 100,000 USDT + 1 BTC = 150,000: the peak
        assert s.breakers.evaluate() is None and s.breakers.peak == D("150000")
        rest = await s.broker.place_order("BTC/USDT", "sell", "limit", "0.01", "60000")
        assert rest.status.value == "open"
        bus.publish(_btc(20000))  # 120,000: exactly 20 % down -> the watch trips within its interval
        # breaker_cancel_orders (default true): the resting sell is cancelled too
        await until(lambda: s.broker.risk.killed and not s.broker.open_orders(), timeout=30)
        assert s.broker.risk.kill_reason == ("circuit breaker: max drawdown 20% reached (equity 120000.00 is 20.00% "
                                             "below its peak 150000.00)")
        buy = await s.broker.place_order("BTC/USDT", "buy", "market", "0.01")
        assert buy.status.value == "rejected" and "trading halted by the circuit breaker: max drawdown" in buy.reason
        sell = await s.broker.place_order("BTC/USDT", "sell", "market", "0.1")  # getting out stays allowed
        assert sell.status.value == "filled"
    finally:
        await s.stop()
    again = await _stack(bus, db, markets, max_drawdown_pct=D("20"))
    try:
        bus.publish(_btc(20000))
        assert again.broker.risk.halted_by_breaker
        buy = await again.broker.place_order("BTC/USDT", "buy", "market", "0.01")
        assert buy.status.value == "rejected" and "trading halted by the circuit breaker" in buy.reason
        again.broker.release()
        assert await again.breakers.check() is None  # a release starts a fresh peak: no instant re-trip
        assert (await again.broker.place_order("BTC/USDT", "buy", "market", "0.01")).status.value == "filled"
    finally:
        await again.stop()


async def test_flatten_on_trip_sells_the_holdings(bus, db, markets):
    s = await _stack(bus, db, markets, max_drawdown_pct=D("10"), breaker_flatten=True)
    try:
        bus.publish(_btc(50000))
        s.breakers.evaluate()
        bus.publish(_btc(30000))
        await until(lambda: s.broker.portfolio.balances.get("BTC") == 0, timeout=30)
        assert s.broker.risk.halted_by_breaker
    finally:
        await s.stop()
