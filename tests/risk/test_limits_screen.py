"""The desk's limits screen: `r` opens it, a change is applied, stored, shown; live mode needs the
word typed; a refused value changes nothing and says why in one line."""

from __future__ import annotations

from decimal import Decimal

from sqlmodel import select

from tps19.engine.storage.models import RiskLimitChange
from tps19.desk.screens.limits import LimitsScreen

from ..ui.conftest import desk_app, desk_ready, no_idle_guessing, screen_text, settings, wait_for  # noqa: F401


def _is_desk(app) -> bool:
    return not isinstance(app.screen, LimitsScreen)


async def _set(pilot, app, name: str, value: str) -> None:
    box = app.screen.query_one(f"#limit-{name}")
    box.value = value
    await pilot.pause()


async def test_a_limit_changed_in_the_desk_is_in_force_and_stored(settings):  # noqa: F811
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        # the live risk metrics are on the Risk pane (engine/risk/monitor.py)
        await wait_for(pilot, lambda: "leverage" in screen_text(app) and "from peak" in screen_text(app),
                       what="the risk metrics on the Risk pane")
        await pilot.press("r")
        # a pushed screen may not have composed its fields yet: wait for them, not for the screen alone
        await wait_for(pilot, lambda: isinstance(app.screen, LimitsScreen)
                       and bool(app.screen.query("#limit-max_open_orders")), what="the limits screen's fields")
        await _set(pilot, app, "max_order_notional", "1234")
        await _set(pilot, app, "max_open_orders", "0")  # refused by the settings' rule: > 0
        await pilot.press("ctrl+s")
        # the screen stays, says why, marks the field and keeps every edit (it closed and lost them)
        await wait_for(pilot, lambda: "invalid limit max_open_orders (TPS19_RISK__MAX_OPEN_ORDERS)"
                       in (getattr(app.screen, "error", None) or ""), what="the refusal on the limits screen")
        screen = app.screen
        assert isinstance(screen, LimitsScreen)
        box = screen.query_one("#limit-max_open_orders")
        assert box.has_class("-invalid") and box.has_focus
        assert screen.query_one("#limit-max_order_notional").value == "1234"
        assert app.trading.broker.risk.settings.max_open_orders == 100
        await _set(pilot, app, "max_open_orders", "100")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.trading.broker.risk.settings.max_order_notional == Decimal("1234"),
                       what="the new per-order cap in force")
        async with app.engine.db.session() as s:
            rows = (await s.execute(select(RiskLimitChange))).scalars().all()
        assert [(r.name, r.old, r.new) for r in rows] == [("max_order_notional", "10000", "1234")]


async def test_live_limits_need_the_word_typed(settings):  # noqa: F811
    from tps19.config import RiskSettings

    screen = LimitsScreen(RiskSettings(), live=True)
    results: list = []

    from textual.app import App

    class One(App):
        def on_mount(self) -> None:
            self.push_screen(screen, results.append)

    async with One().run_test(size=(80, 50)) as pilot:
        screen.query_one("#limit-max_order_notional").value = "500"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert results == [] and "type change to confirm" in str(screen.query_one("#limit-error").render())
        screen.query_one("#limit-confirm").value = "change"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert results == [{"max_order_notional": "500"}]


async def test_the_ticket_checks_the_limits_in_force_and_the_free_balance_before_review(settings):  # noqa: F811
    """The ticket checked the per-order cap from start-up: raised with `r`, a large buy was still
    refused at 10,000 by the ticket; lowered, the ticket accepted what the engine then refused
    after review. It now asks the engine's order entry (one source of limits), and a sell of more
    than is held is caught before review, not after enter."""
    from tps19.desk.screens.ticket import TicketScreen

    from ..ui.test_desk_pilot import _open_ticket

    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        risk = app.trading.broker.risk
        risk.settings = risk.settings.model_copy(update={"max_order_notional": Decimal("200000")})  # as `r` does
        ticket = await _open_ticket(pilot, app)
        await pilot.press("ctrl+t")  # market: the value is checked at the book's ask
        await wait_for(pilot, lambda: ticket.query_one("#type").value == "market", what="market order type")
        await wait_for(pilot, lambda: not ticket.query_one("#row-price").display, what="no price field on a market ticket")
        await pilot.press(*"1.2")
        await wait_for(pilot, lambda: ticket.validated is not None,
                       what=lambda: f"1.2 BTC accepted under the raised cap (error: {ticket.error!r})")
        risk.settings = risk.settings.model_copy(update={"max_order_notional": Decimal("1000")})
        ticket.query_one("#amount").value = "0.05"
        await wait_for(pilot, lambda: "exceeds the per-order cap 1,000" in (ticket.error or ""),
                       what=lambda: f"the lowered cap refused in the ticket (error: {ticket.error!r})")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TicketScreen), what="the ticket to close")
        risk.settings = risk.settings.model_copy(update={"max_order_notional": Decimal("10000000")})
        ticket = await _open_ticket(pilot, app, "s")
        await pilot.press(*"5")  # 1 BTC held
        await wait_for(pilot, lambda: "not enough free BTC" in (ticket.error or ""),
                       what=lambda: f"the sell of more than is held refused before review ({ticket.error!r})")
        await pilot.press("enter")
        assert ticket.stage == "edit"
