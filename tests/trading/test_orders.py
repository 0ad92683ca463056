from __future__ import annotations

import copy
import itertools
from decimal import Decimal

import pytest

from tps19.engine.trading.orders import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    OrderRejected,
    OrderRequest,
    OrderState,
    OrderStatus,
    check_transition,
    new_client_order_id,
    validate_order,
)

S = OrderStatus
LEGAL = {
    (S.NEW, S.OPEN), (S.NEW, S.PARTIALLY_FILLED), (S.NEW, S.FILLED), (S.NEW, S.CANCELLED),
    (S.NEW, S.REJECTED), (S.NEW, S.EXPIRED), (S.NEW, S.UNKNOWN),
    (S.UNKNOWN, S.OPEN), (S.UNKNOWN, S.PARTIALLY_FILLED), (S.UNKNOWN, S.FILLED), (S.UNKNOWN, S.CANCELLED),
    (S.UNKNOWN, S.REJECTED), (S.UNKNOWN, S.EXPIRED),
    (S.OPEN, S.PARTIALLY_FILLED), (S.OPEN, S.FILLED), (S.OPEN, S.CANCELLED), (S.OPEN, S.EXPIRED),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED), (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCELLED), (S.PARTIALLY_FILLED, S.EXPIRED),
}


def test_transition_table_is_the_documented_one():
    got = {(a, b) for a, nxt in TRANSITIONS.items() for b in nxt}
    assert got == LEGAL
    assert TERMINAL == {S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}


@pytest.mark.parametrize("src,dst", list(itertools.product(S, S)))
def test_every_transition(src, dst):
    o = OrderState("c1", "paper", "x", "BTC/USDT", "buy", "limit", Decimal("1"), Decimal("10"), status=src)
    if (src, dst) in LEGAL:
        prev = o.transition(dst)
        assert prev is src and o.status is dst
        check_transition(src, dst)
    else:
        with pytest.raises(IllegalTransition):
            o.transition(dst)
        assert o.status is src


def test_client_order_id_is_unique_and_venue_safe():
    ids = {new_client_order_id() for _ in range(2000)}
    assert len(ids) == 2000
    for i in list(ids)[:50]:
        assert len(i) <= 36 and all(c.isalnum() or c == "-" for c in i)


def test_market_shape_is_ccxt_tick_size(markets):
    m = markets["BTC/USDT"]
    assert m["precision"] == {"price": 0.01, "amount": 1e-05}
    assert m["limits"]["amount"]["min"] is None and m["maker"] == 0.0025 and m["taker"] == 0.005


def req(**kw):
    base = dict(symbol="BTC/USDT", side="buy", type="limit", amount=Decimal("0.123456789"), price=Decimal("50000.019"))
    base.update(kw)
    return OrderRequest(**base)


def test_rounding_amount_down_and_price_to_traders_side(markets):
    v = validate_order(req(), markets["BTC/USDT"])
    assert v.amount == Decimal("0.12345") and v.price == Decimal("50000.01")
    assert v.notional == Decimal("0.12345") * Decimal("50000.01")
    assert v.notes  # says what rounding changed
    s = validate_order(req(side="sell"), markets["BTC/USDT"])
    assert s.price == Decimal("50000.02")  # a sell rounds up: never a worse price than asked
    sol = validate_order(req(symbol="SOL/USDT", price=Decimal("150.0123"), amount=Decimal("2.5")), markets["SOL/USDT"])
    assert sol.price == Decimal("150.01") and sol.amount == Decimal("2.5")  # tick 0.005
    sol2 = validate_order(req(symbol="SOL/USDT", side="sell", price=Decimal("150.0123"), amount=Decimal("2.5")), markets["SOL/USDT"])
    assert sol2.price == Decimal("150.015")
    exact = validate_order(req(amount=Decimal("0.5"), price=Decimal("50000")), markets["BTC/USDT"])
    assert exact.notes == ()


@pytest.mark.parametrize("kw,needle", [
    (dict(amount=Decimal("0.000001")), "below the amount step"),
    (dict(amount=Decimal("0")), "positive"),
    (dict(amount=Decimal("-1")), "positive"),
    (dict(amount=Decimal("NaN")), "positive"),
    (dict(price=None), "needs a price"),
    (dict(price=Decimal("0.001")), "below the tick size"),
    (dict(price=Decimal("-5")), "positive"),
    (dict(side="hold"), "side"),
    (dict(type="stop"), "order type"),
    (dict(type="market", price=Decimal("1")), "takes no price"),
    (dict(symbol="DOGE/USDT"), "unknown market"),
    (dict(amount="abc"), "not a number"),
])
def test_invalid_orders_get_a_reason(markets, kw, needle):
    r = req(**kw)
    with pytest.raises(OrderRejected) as e:
        validate_order(r, markets.get(r.symbol))
    assert needle in e.value.reason


def test_limits_min_amount_and_min_cost(markets):
    m = copy.deepcopy(markets["BTC/USDT"])
    m["limits"]["amount"]["min"] = 0.0001
    m["limits"]["cost"]["min"] = 5.0
    m["limits"]["amount"]["max"] = 100.0
    with pytest.raises(OrderRejected, match="below the minimum 0.0001"):
        validate_order(req(amount=Decimal("0.00005")), m)
    with pytest.raises(OrderRejected, match="order value .* below the minimum 5"):
        validate_order(req(amount=Decimal("0.0001"), price=Decimal("100")), m)
    with pytest.raises(OrderRejected, match="above the maximum 100"):
        validate_order(req(amount=Decimal("101")), m)
    # market orders check min cost against the reference price, and refuse without one
    with pytest.raises(OrderRejected, match="no reference price"):
        validate_order(req(type="market", price=None, amount=Decimal("0.001")), m)
    v = validate_order(req(type="market", price=None, amount=Decimal("0.001")), m, ref_price=Decimal("50000"))
    assert v.notional == Decimal("50")
    inactive = copy.deepcopy(m)
    inactive["active"] = False
    with pytest.raises(OrderRejected, match="not tradable"):
        validate_order(req(), inactive)


def test_decimal_places_mode():
    m = {"symbol": "X/Y", "precision": {"price": 2, "amount": 3}, "limits": {}}
    v = validate_order(req(symbol="X/Y", amount=Decimal("1.23456"), price=Decimal("9.999")), m, precision_mode=2)
    assert v.amount == Decimal("1.234") and v.price == Decimal("9.99")


def test_check_live_allowed():
    from pydantic import SecretStr

    from tps19.config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET, ExchangeSettings, Settings
    from tps19.engine.assembly import check_live_allowed

    def s(**kw):
        return Settings.model_construct(exchange=ExchangeSettings(**kw))

    assert "API credentials" in check_live_allowed(s(id="cryptocom"))
    assert "API credentials" in check_live_allowed(s(id="cryptocom", api_key=SecretStr("k")))
    assert "non-sim API keys" in check_live_allowed(s(id="sim", api_key=SecretStr("real"), secret=SecretStr("x")))
    assert check_live_allowed(s(id="sim", api_key=SecretStr(SIM_DEMO_API_KEY), secret=SecretStr(SIM_DEMO_SECRET))) is None
    assert check_live_allowed(s(id="sim")) is None  # no keys on the sim: its demo keys, as .env.example says
    assert "API credentials" in check_live_allowed(s(id="sim", api_key=SecretStr(SIM_DEMO_API_KEY)))
    assert "demo keys" in check_live_allowed(s(id="cryptocom", api_key=SecretStr(SIM_DEMO_API_KEY), secret=SecretStr(SIM_DEMO_SECRET)))
    reason = check_live_allowed(s(id="cryptocom", api_key=SecretStr("k"), secret=SecretStr("top-secret-value")))
    assert reason is None
    assert "top-secret" not in (check_live_allowed(s(id="sim", api_key=SecretStr("k"), secret=SecretStr("top-secret-value"))) or "")


def test_demo_keys_allowed_against_a_standalone_sim_url():
    from pydantic import SecretStr

    from tps19.config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET, ExchangeSettings, Settings
    from tps19.engine.assembly import check_live_allowed

    ex = ExchangeSettings(id="cryptocom", api_key=SecretStr(SIM_DEMO_API_KEY), secret=SecretStr(SIM_DEMO_SECRET),
                          rest_url="http://127.0.0.1:8765")
    assert check_live_allowed(Settings.model_construct(exchange=ex)) is None
