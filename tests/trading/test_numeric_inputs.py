"""Absurd numbers (overflow, NaN, sNaN, infinities, huge exponents, endless decimals) given to order
validation and to the broker: always a valid order or a clear one-line rejection, never a crash."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tps19.engine.assembly import build_trading
from tps19.engine.trading.orders import SIGNIFICANT_DIGITS, TICK_SIZE, OrderRejected, OrderRequest, validate_order

from .conftest import START, cryptocom_markets
from .helpers import book
from .helpers import settings as trading_settings

MARKETS = cryptocom_markets()
# a market without precision or limits: nothing rounds, so only the input checks stand between
# a huge number and the arithmetic that follows
BARE = {"symbol": "X/Y", "precision": {"price": None, "amount": None}, "limits": {}}
SIG = {"symbol": "S/Y", "precision": {"price": 5, "amount": 4}, "limits": {}}


def _huge_exponent_decimals() -> st.SearchStrategy[Decimal]:
    # built from tuples: exact, no context involved, exponents far beyond any float
    return st.builds(lambda sign, digits, exp: Decimal((sign, tuple(digits), exp)),
                     st.integers(0, 1), st.lists(st.integers(0, 9), min_size=1, max_size=40),
                     st.integers(-1_000_000, 1_000_000))


NUMBERS = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("NaN"), Decimal("-NaN"), Decimal("sNaN"), Decimal("-sNaN"), Decimal("NaN123"),
                     Decimal("Infinity"), Decimal("-Infinity"), Decimal("1e999999"), Decimal("-1e999999"),
                     Decimal("1e-999999"), Decimal("0E-999999"), Decimal("1E+999999999999999999")]),
    _huge_exponent_decimals(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.from_regex(r"\s*[-+]?(\d{0,25}(\.\d{0,25})?([eE][-+]?\d{1,12})?|inf|Infinity|nan|sNaN)\s*", fullmatch=True),
    st.text(max_size=80),
    st.none(),
    st.booleans(),
)


def _sane(d: Decimal) -> bool:
    return d.is_finite() and Decimal(0) < d < Decimal("1e15") and -d.normalize().as_tuple().exponent <= 18


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    amount=NUMBERS,
    price=NUMBERS,
    side=st.sampled_from(["buy", "sell"]),
    otype=st.sampled_from(["limit", "market", "ioc", "post_only"]),
    where=st.sampled_from([("BTC/USDT", TICK_SIZE), ("SOL/USDT", TICK_SIZE), ("X/Y", TICK_SIZE), ("S/Y", SIGNIFICANT_DIGITS)]),
    ref=st.one_of(st.none(), st.sampled_from([Decimal("50000.5"), Decimal("0.0001"), Decimal("999999999999999")])),
)
def test_validation_returns_a_sane_order_or_a_clear_rejection(amount, price, side, otype, where, ref):
    symbol, mode = where
    market = {"X/Y": BARE, "S/Y": SIG}.get(symbol) or MARKETS[symbol]
    if otype == "market":
        price = None
    try:
        v = validate_order(OrderRequest(symbol, side, otype, amount, price), market, precision_mode=mode, ref_price=ref)
    except OrderRejected as e:
        reason = e.reason
        assert isinstance(reason, str) and reason and "\n" not in reason and len(reason) < 200, reason
        return
    assert _sane(v.amount), v
    assert v.price is None if otype == "market" else _sane(v.price), v
    assert v.notional is None or v.notional.is_finite()


@pytest.mark.parametrize(("field", "value", "words"), [
    ("amount", "1e999999", "too large"),
    ("amount", Decimal("1e999999"), "too large"),
    ("amount", Decimal("1e15"), "too large"),
    ("amount", Decimal("sNaN"), "NaN"),
    ("amount", float("inf"), "infinity"),
    ("amount", Decimal("1e-19"), "decimal places"),
    ("price", "1e999999", "too large"),
    ("price", Decimal("-Infinity"), "infinity"),
    ("price", Decimal("NaN"), "NaN"),
    ("price", "1" * 500, "too long"),
])
@pytest.mark.parametrize("symbol", ["BTC/USDT", "X/Y"])
def test_absurd_numbers_are_rejected_naming_the_field(field, value, words, symbol):
    kw = {"amount": Decimal("0.01"), "price": Decimal("50000")} | {field: value}
    market = BARE if symbol == "X/Y" else MARKETS[symbol]
    with pytest.raises(OrderRejected) as e:
        validate_order(OrderRequest(symbol, "buy", "limit", kw["amount"], kw["price"]), market)
    assert e.value.reason.startswith(field) and words in e.value.reason


async def test_broker_rejects_overflow_with_a_reason_not_an_internal_error(bus, db, markets):
    s = await build_trading(mode="paper", bus=bus, db=db, client=None, markets=markets, settings=trading_settings(),
                            exchange="cryptocom", starting_balances=dict(START), snapshot_interval_s=0)
    await s.start()
    try:
        bus.publish(book())
        for amount, price in (("1e999999", "50000"), ("0.01", "1e999999"), (Decimal("sNaN"), "50000"),
                              ("0.01", Decimal("Infinity")), (10**30, "50000")):
            o = await s.broker.place_order("BTC/USDT", "buy", "limit", amount, price)
            assert o.status.value == "rejected", (amount, price, o)
            assert "internal error" not in o.reason and ("amount" in o.reason or "price" in o.reason), o.reason
            # what is booked for the rejected order is a number the desk can show
            for booked in (o.amount, o.price):
                assert booked is None or (booked.is_finite() and booked.copy_abs() < Decimal("1e15")), o
        assert s.broker.issues.get("place", 0) == 0
        # and the broker still trades
        ok = await s.broker.place_order("BTC/USDT", "buy", "limit", "0.01", "40000")
        assert ok.status.value == "open"
    finally:
        await s.stop()
