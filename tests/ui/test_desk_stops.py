"""Pilot tests of protective orders in the desk: the ticket offers every kind with its trigger
fields and distance to the market, refuses a stop that would fire at once in one line, shows a
bracket's worst-case loss; the orders pane shows trigger, state, where it lives and the OCO
group; `c` on one leg cancels the group after confirmation; the chart marks the levels."""

from __future__ import annotations

from decimal import Decimal

from tps19.desk.app import DeskApp
from tps19.desk.screens.confirm import ConfirmScreen
from tps19.desk.screens.ticket import TYPES, TicketScreen
from tps19.desk.widgets.panes import OrdersTable

from .conftest import desk_app, desk_ready, screen_text, wait_for
from .test_desk_pilot import _is_desk, _open_ticket, _review


def _held(app: DeskApp) -> list:
    return app.trading.broker.emulator.orders() if app.trading is not None else []


async def _choose(pilot, ticket: TicketScreen, otype: str) -> None:
    ticket.query_one("#type").value = otype
    await wait_for(pilot, lambda: ticket.query_one(f"#row-{'trigger' if otype != 'oco' else 'sl'}").display,
                   what=f"the {otype} fields")


async def test_ticket_arms_a_stop_and_the_orders_pane_and_chart_show_it(settings):
    app = desk_app(settings, "paper")
    async with app.run_test(size=(140, 44)) as pilot:
        await desk_ready(pilot, app)
        ticket = await _open_ticket(pilot, app, "s")
        assert [t for _, t in TYPES] == ["limit", "market", "post_only", "ioc", "stop_market", "stop_limit",
                                          "take_profit", "take_profit_limit", "trailing_stop", "oco"]
        await _choose(pilot, ticket, "stop_market")
        assert not ticket.query_one("#row-price").display and not ticket.query_one("#row-sl").display
        mid = Decimal(repr(app.state.books["BTC/USDT"].mid))
        # above the market: a sell stop there would fire at once -> one line, nothing to review
        ticket.query_one("#trigger").value = f"{mid * Decimal('1.01'):.2f}"
        ticket.query_one("#amount").value = "0.1"
        await wait_for(pilot, lambda: ticket.error is not None and "would trigger at once" in ticket.error,
                       what=lambda: f"the would-trigger-at-once refusal (error {ticket.error!r})")
        rang: list[int] = []
        app.bell = lambda: rang.append(1)  # type: ignore[method-assign]
        await pilot.press("enter")
        # the refusal is a bell: wait for it, or the enter may be handled only after the valid
        # trigger below is typed, review the ticket, and the review's enter then places it
        # ("timed out waiting for the ticket's review stage (stage 'sent')", seen under load)
        await wait_for(pilot, lambda: rang, what="the refused enter's bell")
        assert ticket.stage == "edit" and _held(app) == []
        level = (mid * Decimal("0.99")).quantize(Decimal("0.01"))
        ticket.query_one("#trigger").value = f"{level}"
        await wait_for(pilot, lambda: ticket.validated is not None, what=lambda: f"a valid stop (error {ticket.error!r})")
        # the trigger's distance in % and bp, and the kill-switch rule, before review
        await wait_for(pilot, lambda: all(t in screen_text(app) for t in ("below the mid", " bp) ", "keeps working")),
                       what="the trigger's distance in % and bp")
        await _review(pilot, ticket)
        await pilot.press("enter")
        await wait_for(pilot, lambda: _is_desk(app), what="the ticket to close")
        await wait_for(pilot, lambda: len(_held(app)) == 1, what="the stop armed")
        [stop] = _held(app)
        assert (stop.type.value, stop.trigger_price, stop.amount) == ("stop_market", level, Decimal("0.1"))
        table = app.screen.query_one("#orders", OrdersTable)
        await wait_for(pilot, lambda: "armed emu" in screen_text(app), what=lambda: "the stop in the orders pane:\n" + screen_text(app))
        text = screen_text(app)
        assert "trigger" in text and f"{level:,.2f}" in text and "stop_market" in text
        assert "emu: protects only while TPS19 runs" in text, text
        assert table.selected_order_id() == stop.client_order_id
        chart = app.screen.query_one("#chart")
        await wait_for(pilot, lambda: (float(level), "stop") in chart.levels, what="the stop on the chart")


async def test_bracket_ticket_shows_worst_case_loss_and_c_on_an_oco_leg_cancels_the_group(settings):
    app = desk_app(settings, "paper")
    async with app.run_test(size=(140, 44)) as pilot:
        await desk_ready(pilot, app)
        book = app.state.books["BTC/USDT"]
        bid = Decimal(repr(book.best_bid))
        ticket = await _open_ticket(pilot, app, "b")
        price = (bid * Decimal("0.995")).quantize(Decimal("0.01"))
        stop = (price * Decimal("0.98")).quantize(Decimal("0.01"))
        ticket.query_one("#price").value = f"{price}"
        ticket.query_one("#sl").value = f"{stop}"
        ticket.query_one("#tp").value = f"{price * Decimal('1.05'):.2f}"
        ticket.query_one("#amount").value = "0.1"
        await wait_for(pilot, lambda: ticket.validated is not None and ticket.validated.is_bracket,
                       what=lambda: f"a valid bracket (error {ticket.error!r})")
        fee = ticket.market["maker"], ticket.market["taker"]
        loss = Decimal("0.1") * (price - stop) + Decimal("0.1") * price * Decimal(repr(fee[0])) \
            + Decimal("0.1") * stop * Decimal(repr(fee[1]))
        await wait_for(pilot, lambda: f"-{loss:,.2f} USDT at the stop-loss" in screen_text(app),
                       what=lambda: f"the worst-case loss -{loss:,.2f}")
        # a take-profit below the stop on a long: one line
        ticket.query_one("#tp").value = f"{stop - 10:.2f}"
        await wait_for(pilot, lambda: ticket.error is not None and "not above the stop-loss" in ticket.error,
                       what="the TP-below-stop refusal")
        await pilot.press("escape")
        await wait_for(pilot, lambda: _is_desk(app), what="the ticket closed")

        # an OCO protecting the BTC held: two legs, one group; c on one leg asks, then cancels both
        ticket = await _open_ticket(pilot, app, "s")
        await _choose(pilot, ticket, "oco")
        mid = Decimal(repr(app.state.books["BTC/USDT"].mid))
        ticket.query_one("#sl").value = f"{mid * Decimal('0.97'):.2f}"
        ticket.query_one("#tp").value = f"{mid * Decimal('1.03'):.2f}"
        ticket.query_one("#price").value = ""
        ticket.query_one("#amount").value = "0.2"
        await wait_for(pilot, lambda: ticket.validated is not None, what=lambda: f"a valid OCO (error {ticket.error!r})")
        await _review(pilot, ticket)
        await pilot.press("enter")
        await wait_for(pilot, lambda: _is_desk(app) and len(_held(app)) == 2, what="both OCO legs armed")
        group = _held(app)[0].oco_group
        await wait_for(pilot, lambda: group[-4:] in screen_text(app) and "take_profit" in screen_text(app),
                       what="the OCO group in the orders pane")
        app.screen.query_one("#orders", OrdersTable).focus()
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the group-cancel question")
        await wait_for(pilot, lambda: "whole OCO group" in screen_text(app), what="the question on screen")
        await pilot.press("y")
        await wait_for(pilot, lambda: _held(app) == [], what="both legs cancelled")
