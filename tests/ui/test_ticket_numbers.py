"""The order ticket and absurd numbers: whatever is typed, the ticket shows a valid order or a
clear message, and the desk keeps running."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tps19.engine.trading.orders import OrderRejected
from tps19.desk.screens.ticket import ticket_order

from .conftest import desk_app, desk_ready, screen_text, step_market, wait_for
from .test_desk_pilot import _is_desk, _open_ticket

BTC = {"symbol": "BTC/USDT", "active": True, "precision": {"price": 0.01, "amount": 1e-05},
       "limits": {"amount": {"min": None, "max": None}, "price": {"min": None, "max": None},
                  "cost": {"min": None, "max": None}}, "maker": 0.0004, "taker": 0.0006}

TYPED = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789.,_-+eE ", max_size=30),
    st.from_regex(r"\s*[-+]?\d{0,20}(\.\d{0,25})?([eE][-+]?\d{1,9})?\s*", fullmatch=True),
    st.sampled_from(["1e999999", "-1e999999", "1e-999999", "NaN", "sNaN", "-nan", "Infinity", "inf", "1,5",
                     "1,000.5", "1,00", "9" * 70, "0.0000000000000000001", "999999999999999.99", "١٢"]),
)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amount=TYPED, price=TYPED, side=st.sampled_from(["buy", "sell"]),
       otype=st.sampled_from(["limit", "market", "ioc", "post_only"]))
def test_whatever_is_typed_the_ticket_has_an_order_or_a_clear_message(amount, price, side, otype):
    try:
        v = ticket_order("BTC/USDT", side, otype, amount, price, BTC, ref_price=Decimal("60000.5"))
    except OrderRejected as e:
        assert e.reason and "\n" not in e.reason and len(e.reason) < 200, e.reason
        return
    assert v.amount.is_finite() and Decimal(0) < v.amount < Decimal("1e15")
    if otype != "market":
        assert v.price is not None and v.price.is_finite() and Decimal(0) < v.price < Decimal("1e15")


@pytest.mark.parametrize(("amount", "price", "message"), [
    ("1e999999", "60000", "amount is too large"),
    ("0.01", "1e999999", "price is too large"),
    ("NaN", "60000", "amount must be a positive number, not NaN"),
    ("0.01", "-Infinity", "price must be a positive number, not infinity"),
    ("1,5", "60000", "amount is not a number"),  # a decimal comma is not read as fifteen
    ("", "60000", "enter an amount"),
])
def test_ticket_messages_name_the_field(amount, price, message):
    with pytest.raises(OrderRejected) as e:
        ticket_order("BTC/USDT", "buy", "limit", amount, price, BTC, ref_price=None)
    assert message in e.value.reason


def test_thousands_separators_and_blanks_still_read():
    v = ticket_order("BTC/USDT", "buy", "limit", " 1,000.5 ", "60,000.25", BTC, ref_price=None)
    assert v.amount == Decimal("1000.5") and v.price == Decimal("60000.25")


async def test_typing_1e999999_shows_a_message_and_the_desk_keeps_running(settings):
    # A paused seeded venue that the test moves itself (see docs/desk.md): every wait below is for a
    # state the desk reaches once it has handled what was sent, never for the market to move by itself.
    app = desk_app(settings)
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        assert app.trading is not None
        ticket = await _open_ticket(pilot, app)
        await pilot.press(*"1e999999")
        await wait_for(pilot, lambda: "amount is too large" in (ticket.error or ""), what="amount message")
        await wait_for(pilot, lambda: "amount is too large" in screen_text(app), what="message on screen")
        await pilot.press("enter")  # cannot review it
        await pilot.pause()
        assert ticket.stage == "edit" and app.is_running

        ticket.query_one("#amount").value = "0.01"
        price = ticket.query_one("#price")
        price.value = ""
        price.focus()
        await wait_for(pilot, lambda: price.has_focus, what="the price field focused")
        await pilot.press(*"1e999999")
        await wait_for(pilot, lambda: "price is too large" in (ticket.error or ""), what="price message")
        await wait_for(pilot, lambda: "price is too large" in screen_text(app), what="message on screen")
        assert ticket.validated is None

        # the desk is still alive: the market moves on under the ticket and the ticket still works
        await step_market(pilot, app, 40)
        await pilot.press("escape")
        await wait_for(pilot, lambda: _is_desk(app), what="the ticket to close")
        assert app.is_running
        ticket = await _open_ticket(pilot, app)
        await pilot.press(*"0.01")
        await wait_for(pilot, lambda: ticket.validated is not None, what=lambda: f"a valid order ({ticket.error!r})")
        await pilot.press("escape")
        await wait_for(pilot, lambda: _is_desk(app), what="the ticket to close")
        assert app.return_code is None


def test_an_oco_says_what_each_leg_sends_at_its_trigger():
    # the ticket read "at trigger: a market sell of 0.005 @ 65,234.84" for an OCO with a price:
    # a market order has no price; the stop leg sends a market order, the take-profit leg a limit
    from tps19.desk.screens.ticket import at_trigger_text

    extra = {"sl": "64500", "tp": "66500"}
    with_price = ticket_order("BTC/USDT", "sell", "oco", "0.005", "65234.84", BTC, None, extra)
    assert at_trigger_text(with_price) == ("stop-loss: a market sell of 0.005; take-profit: a limit sell of 0.005 "
                                           "@ 65,234.84 (taker fee if it takes)")
    bare = ticket_order("BTC/USDT", "sell", "oco", "0.005", "", BTC, None, extra)
    assert at_trigger_text(bare) == "either leg: a market sell of 0.005 (taker fee if it takes)"
    stop_limit = ticket_order("BTC/USDT", "sell", "stop_limit", "0.005", "64400", BTC, None, {"trigger": "64500"})
    assert at_trigger_text(stop_limit) == "a limit sell of 0.005 @ 64,400 (taker fee if it takes)"
    stop = ticket_order("BTC/USDT", "sell", "stop_market", "0.005", "", BTC, None, {"trigger": "64500"})
    assert at_trigger_text(stop) == "a market sell of 0.005 (taker fee if it takes)"


def ticket_app(mode: str, side: str) -> Any:
    """An app showing only an order ticket for BTC/USDT, the book 65,200.00 / 65,201.00."""
    from textual.app import App

    from tps19.desk.screens.ticket import TicketScreen
    from tps19.engine.events import BookEvent

    book = BookEvent("BTC/USDT", bids=((65200.0, 1.0),), asks=((65201.0, 1.0),), ts=1, seq=1)

    class One(App):
        def on_mount(self) -> None:
            self.push_screen(TicketScreen(mode=mode, side=side, symbol="BTC/USDT", market=BTC,
                                          book_fn=lambda: book, trading_available=True))

    return One()


async def test_a_live_review_at_80x24_shows_the_order_and_how_to_send_it():
    # at 80x24 a live bracket's review (levels, worst case, "type y to send") was below the screen's
    # edge: the trader saw only "LIVE ORDER: REAL MONEY" and the order line
    app = ticket_app("live", "buy")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press(*"0.001", "tab", "tab", *"64000", "tab", *"66500", "enter")
        await wait_for(pilot, lambda: app.screen.stage == "review", what="the live review")
        await pilot.pause()
        review = app.screen.query_one("#review")
        await wait_for(pilot, lambda: review.region.bottom <= 24 and review.region.height > 0,
                       what="the review inside the screen")
        shown = screen_text(app)
        assert "type y to send" in shown and "worst case" in shown and "stop-loss 64,000.00" in shown


async def test_an_oco_typed_in_the_ticket_asks_for_both_levels_and_does_not_inherit_the_entry_price():
    # the OCO's stop-loss/take-profit fields said "optional", and the price field kept the pre-filled
    # best bid, so an OCO typed without touching it placed its take-profit as a limit at today's bid
    from textual.widgets import Input, Select

    app = ticket_app("paper", "sell")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        t = app.screen
        assert t.query_one("#price", Input).value == "65201.00"  # a sell rests at the best ask
        t.query_one("#type", Select).value = "oco"
        await wait_for(pilot, lambda: t.query_one("#price", Input).value == "", what="the pre-filled price cleared")
        assert "required" in t.query_one("#sl", Input).placeholder and "required" in t.query_one("#tp", Input).placeholder
        t.query_one("#amount", Input).value = "0.005"
        t.query_one("#sl", Input).value = "64500"
        t.query_one("#tp", Input).value = "66500"
        await wait_for(pilot, lambda: t.validated is not None, what=lambda: f"a valid oco: {t.error}")
        assert t.validated.price is None  # both legs send market orders


async def test_a_trailing_stops_notional_is_not_said_to_be_at_its_level():
    # 'notional 326.17 USDT at the level' for a 1 % trailing stop was amount x the market, not its level
    from textual.widgets import Input, Select

    app = ticket_app("paper", "sell")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        t = app.screen
        t.query_one("#type", Select).value = "trailing_stop"
        t.query_one("#amount", Input).value = "0.005"
        t.query_one("#trail", Input).value = "1%"
        await wait_for(pilot, lambda: "notional" in screen_text(app), what=lambda: f"the estimate: {t.error}")
        assert "at the market now" in screen_text(app) and "at the level" not in screen_text(app)
