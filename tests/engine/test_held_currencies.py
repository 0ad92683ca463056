"""Every currency the account holds is valued, also when only one symbol is traded: `--symbol
BTC/USDT` showed ETH and SOL as unpriced, equity ~45k low and leverage 0.00x beside exposure 65k."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.engine.helpers import wait_for

from tps19.engine.engine import Engine
from tps19.engine.risk.monitor import RiskMonitor

pytestmark = pytest.mark.slow


async def test_holdings_outside_the_traded_symbol_are_valued_by_a_ticker_poll(sim_settings, sim):
    one = sim_settings.model_copy(update={"symbols": sim_settings.symbols.model_copy(update={"watch": ["BTC/USDT"]})})
    engine = Engine(one, "paper")
    await engine.start()
    try:
        pf = engine.trading.portfolio
        pf.held_prices.interval_s = 0.2
        assert await wait_for(lambda: not pf.equity()[1] and pf.mark("BTC/USDT") is not None)
        eq, unpriced = pf.equity()
        assert unpriced == [] and pf.excluded() == []
        want = sum((pf.balances[c] * pf.mark(f"{c}/USDT") for c in ("BTC", "ETH", "SOL")), pf.balances["USDT"])
        assert eq == want  # every holding at its mark (ETH and SOL from the venue's tickers)
        rep = RiskMonitor(pf, None).compute()
        assert set(rep.report.exposure) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
        assert rep.equity == pytest.approx(float(eq)) and rep.report.leverage == pytest.approx(
            rep.report.gross_exposure / float(eq))
        assert engine.feed.symbols == ["BTC/USDT"]  # a poll, not a subscription
    finally:
        await engine.stop()


def test_a_coin_without_a_market_in_the_valuation_converts_through_usdt_or_is_excluded():
    from tps19.engine.trading.portfolio import Portfolio

    markets = {"ABC/USDT": {"base": "ABC", "quote": "USDT"}, "USDT/EUR": {"base": "USDT", "quote": "EUR"},
               "BTC/EUR": {"base": "BTC", "quote": "EUR"}}
    pf = Portfolio(mode="paper", markets=markets, valuation="EUR")
    pf.balances = {"EUR": Decimal("100"), "ABC": Decimal("10"), "BTC": Decimal("1"), "XYZ": Decimal("5")}
    pf.marks = {"ABC/USDT": Decimal("2"), "USDT/EUR": Decimal("0.9"), "BTC/EUR": Decimal("50000")}
    assert pf.value_of("ABC", Decimal("10")) == Decimal("18.0")  # 10 x 2 USDT x 0.9 EUR
    assert pf.excluded() == ["XYZ"]  # no market path to EUR: listed, not counted, not 'unpriced'
    assert pf.equity() == (Decimal("100") + Decimal("18.0") + Decimal("50000"), [])
    assert pf.price_symbols() == {"ABC/USDT", "USDT/EUR", "BTC/EUR"}
    from tps19.engine.bus import EventBus
    from tps19.engine.trading.marks import MarkPublisher

    up = MarkPublisher(pf, EventBus()).update()
    assert up.excluded == ("XYZ",) and up.unpriced == () and up.equity == Decimal("50118.0")


async def test_a_timeframe_the_venue_does_not_offer_is_a_one_line_error_at_start(sim_settings):
    """TPS19_SYMBOLS__TIMEFRAME=1s on the simulated exchange started fine and the strategy then
    never decided (no 1s candles ever closed)."""
    from tps19.engine.engine import EngineError

    bad = sim_settings.model_copy(update={"symbols": sim_settings.symbols.model_copy(update={"timeframe": "1s"})})
    engine = Engine(bad, "paper")
    with pytest.raises(EngineError) as err:
        await engine.start()
    await engine.stop()
    msg = str(err.value)
    assert "\n" not in msg and "timeframe 1s" in msg and "1m" in msg, msg
