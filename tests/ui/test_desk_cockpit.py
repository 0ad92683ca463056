"""Pilot tests of the desk as a trader's cockpit (issue 10): marks that move P&L, balances with
what the account already held, history from the database across a restart, panes that never
hide rows silently, a ticket that follows the book and warns of a fat finger, a kill-switch
key no text field uses. The real DeskApp on the real engine and a paused seeded sim."""

from __future__ import annotations

from decimal import Decimal

from tps19.desk.app import DeskApp
from tps19.engine.trading.orders import OrderRequest
from tps19.desk.screens.confirm import ConfirmScreen
from tps19.desk.screens.history import HistoryScreen
from tps19.desk.screens.logview import LogScreen
from tps19.desk.screens.performance import PerformanceScreen
from tps19.desk.screens.ticket import TicketScreen
from tps19.desk.widgets.rows import RowsPane

from .conftest import desk_app, desk_ready, screen_text, step_market, wait_for

BTC = "BTC/USDT"


def pane_text(app: DeskApp, selector: str) -> str:
    """What the trader reads inside one pane, border included (title and subtitle)."""
    w = app.screen.query_one(selector)
    r = w.region
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in strips[y].crop(r.x, r.right)) for y in range(r.y, r.bottom))


def pane_row(app: DeskApp, selector: str, first: str) -> list[str]:
    """The cells of the pane's line that starts with ``first`` (split on blanks)."""
    for line in pane_text(app, selector).splitlines():
        cells = line.strip("│ ").split()
        if cells and cells[0] == first:
            return cells
    return []


def _is_desk(app: DeskApp) -> bool:
    from tps19.desk.screens.desk import DeskScreen

    return isinstance(app.screen, DeskScreen)


async def _place(app: DeskApp, side: str, otype: str, amount: str, price: Decimal | None = None) -> object:
    """Set-up orders go straight to the broker (the ticket's own path is tested in test_desk_pilot)."""
    o = await app.trading.broker.place(OrderRequest(BTC, side, otype, Decimal(amount), price))
    assert o.status != "rejected", o.reason
    return o


async def test_unrealized_pnl_follows_the_mark_without_a_fill(settings):
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        await _place(app, "buy", "market", "0.1")
        await wait_for(pilot, lambda: app.state.positions.get(BTC) is not None
                       and app.state.positions[BTC].net_position == Decimal("0.1"), what="the 0.1 BTC position")
        await step_market(pilot, app, 1)
        # 120 columns are too narrow for every column once the row has an entry: held (which the
        # balances pane shows) is left out, said on the border, and no figure is cut short
        await wait_for(pilot, lambda: pane_row(app, "#positions", BTC)[1:2] == ["0.1"],
                       what=lambda: f"the position drawn (pane: {pane_text(app, '#positions')})")
        assert "held hidden (narrow)" in pane_text(app, "#positions")
        before = pane_row(app, "#positions", BTC)
        fills = len(app.state.fills[BTC])
        # only the market moves: no order of ours is working, so no fill can happen
        assert not app.trading.broker.open_orders()
        await step_market(pilot, app, 300)
        mark = app.trading.portfolio.mark(BTC)
        await wait_for(pilot, lambda: app.state.positions[BTC].mark == mark, what="a position event at the new mark")
        await wait_for(pilot, lambda: pane_row(app, "#positions", BTC)[3:5] != before[3:5],
                       what=lambda: f"mark and unrealized P&L to move on screen (before {before}, "
                                    f"now {pane_row(app, '#positions', BTC)})")
        after = pane_row(app, "#positions", BTC)
        assert len(app.state.fills[BTC]) == fills, "a fill happened: the test no longer isolates the mark"
        assert after[3] != before[3] and after[4] != before[4]  # mark and unrealized both moved
        pos = app.state.positions[BTC]
        assert after[4] == f"{(pos.mark - pos.avg_entry) * pos.net_position:+,.2f}"
        assert after[-1] == f"{pos.fees:,.2f}"  # the fees whole (the cropped pane read "3.9" for 3.96)


async def test_balances_risk_and_hidden_rows_at_120x40(settings):
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        # what the sim account held before TPS19 traded anything: 1 BTC, 10 ETH, 100 SOL
        await wait_for(pilot, lambda: pane_row(app, "#balances", "BTC")[1:3] == ["1", "0"]
                       and pane_row(app, "#balances", "ETH")[1:2] == ["10"],
                       what=lambda: f"held balances on screen ({pane_text(app, '#balances')})")
        # a holding is a position (never "no positions", never negative)
        await wait_for(pilot, lambda: pane_row(app, "#positions", BTC)[1:3] == ["1", "0"],
                       what=lambda: f"the held BTC in the positions pane ({pane_text(app, '#positions')})")

        # nothing is cut from the risk pane at 120x40, down to the last limit
        risk = app.screen.query_one("#risk", RowsPane)
        text = pane_text(app, "#risk")
        for label in ("kill switch", "P&L today", "drawdown", "exposure", "leverage", "max order",
                      "orders today", "max position"):
            assert label in text, f"{label!r} missing from the risk pane:\n{text}"
        assert risk.rows_hidden == 0 and "more" not in text

        # more resting orders than the pane can show: the header stays, the border counts the rest
        bid = Decimal(str(app.state.books[BTC].best_bid))
        for i in range(9):
            await _place(app, "buy", "limit", "0.01", (bid * Decimal("0.9") - i).quantize(Decimal("0.01")))
        orders = app.screen.query_one("#orders", RowsPane)
        await wait_for(pilot, lambda: orders.row_count == 9 and orders.rows_hidden > 0,
                       what="nine orders, some out of view")
        await wait_for(pilot, lambda: f"{orders.rows_hidden} more" in pane_text(app, "#orders"),
                       what=lambda: f"the hidden count on the border:\n{pane_text(app, '#orders')}")
        text = pane_text(app, "#orders")
        assert "symbol" in text.splitlines()[1] and "status" in text.splitlines()[1], text
        # the quote the resting buys lock shows as locked (on the engine's next portfolio update:
        # the market moves)
        await step_market(pilot, app, 50)
        await wait_for(pilot, lambda: pane_row(app, "#balances", "USDT")[2:3] != ["0"],
                       what=lambda: f"USDT locked by the buys ({pane_text(app, '#balances')})")

        # the log screen: every line whole, and the database file named in full
        app.state.note("warning", "a long line " + "x" * 150 + " END")
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LogScreen), what="the log screen")
        await wait_for(pilot, lambda: "END" in screen_text(app) and str(settings.database.path) in screen_text(app),
                       what="the whole long line and the database path")
        await pilot.press("escape")
        await wait_for(pilot, lambda: _is_desk(app), what="back on the desk")


async def test_ticket_follows_the_book_warns_and_leaves_ctrl_k_to_the_field(settings):
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, TicketScreen)
                       and any(w.id == "amount" and w.has_focus for w in app.screen.query("#amount")),
                       what="the buy ticket, amount focused")
        ticket: TicketScreen = app.screen  # type: ignore[assignment]
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: ticket.query_one("#type").value == "market", what="market order type")
        await pilot.press(*"0.1")
        await wait_for(pilot, lambda: ticket.estimate is not None and ticket.estimate.avg_price is not None,
                       what="an estimate")
        first = ticket.estimate
        shown = f"{first.avg_price:,.2f}"
        await wait_for(pilot, lambda: shown in screen_text(app), what="the estimate on screen")

        # the market moves while the ticket is open: the estimate follows the newest book
        await step_market(pilot, app, 300)
        await wait_for(pilot, lambda: ticket.estimate is not first and ticket.estimate.avg_price != first.avg_price,
                       what="a new estimate from the moved book")
        await wait_for(pilot, lambda: f"{ticket.estimate.avg_price:,.2f}" in screen_text(app),
                       what="the new estimate on screen")

        # ctrl+k in a text field is readline's kill-line, never the kill switch
        await pilot.press("home", "ctrl+k")
        await wait_for(pilot, lambda: ticket.query_one("#amount").value == "", what="ctrl+k to clear the field")
        assert isinstance(app.screen, TicketScreen) and not app.trading.broker.killed
        await pilot.press("escape")
        await wait_for(pilot, lambda: _is_desk(app), what="the ticket to close")
        # the key, in the footer (the desk repaints on the frame after the ticket closes: wait for it)
        await wait_for(pilot, lambda: "f9 Kill switch" in screen_text(app), what="f9 Kill switch in the footer")
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the kill switch question")
        await pilot.press("n")
        await wait_for(pilot, lambda: _is_desk(app), what="question answered")

        # a sell limit at 1 on a ~60k market is flagged before it can be sent
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen is not ticket
                       and any(w.id == "amount" and w.has_focus for w in app.screen.query("#amount")),
                       what="the sell ticket")
        sell: TicketScreen = app.screen  # type: ignore[assignment]
        sell.query_one("#price").value = "1"
        await pilot.press(*"0.01")
        await wait_for(pilot, lambda: sell.query_one("#amount").value == "0.01"
                       and (sell.validated is not None or sell.error is not None), what="the sell ticket checked")
        if sell.validated is not None:  # the ticket lets it through to review, with a warning
            await pilot.press("enter")
            await wait_for(pilot, lambda: sell.stage == "review", what="the review")
            await wait_for(pilot, lambda: "WARNING" in screen_text(app) and "below the mid" in screen_text(app),
                           what=lambda: f"the fat-finger warning at review:\n{screen_text(app)}")
        else:  # the engine's price band refuses it outright: the refusal says why
            assert "price" in sell.error.lower(), sell.error
        await pilot.press("escape", "escape")
        await wait_for(pilot, lambda: _is_desk(app), what="the ticket to close")
        assert not app.trading.broker.open_orders()


async def test_history_lists_filled_and_cancelled_orders_after_a_restart(settings):
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        filled = await _place(app, "buy", "market", "0.02")
        bid = Decimal(str(app.state.books[BTC].best_bid))
        resting = await _place(app, "buy", "limit", "0.01", (bid * Decimal("0.9")).quantize(Decimal("0.01")))
        await app.trading.broker.cancel(resting.client_order_id)
        await wait_for(pilot, lambda: not app.trading.broker.open_orders(), what="the cancel")
        await app.action_request_quit()
    # a new desk on the same database: the history comes from there
    app = desk_app(settings, "paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await desk_ready(pilot, app)
        await pilot.press("h")
        await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen) and app.screen.loaded > 0,
                       what="the history screen, loaded")
        hist: HistoryScreen = app.screen  # type: ignore[assignment]
        assert hist.error is None, hist.error
        orders = pane_text(app, "#hist-orders")
        for o, status in ((filled, "filled"), (resting, "cancelled")):
            line = next((ln for ln in orders.splitlines() if o.client_order_id[-6:] in ln), "")
            assert status in line, f"{status} order {o.client_order_id} not listed:\n{orders}"
        fills = pane_text(app, "#hist-fills")
        fill_line = next((ln for ln in fills.splitlines() if filled.client_order_id[-6:] in ln), "")
        assert "0.02" in fill_line and "taker" in fill_line, fills  # amount, liquidity (price, fee, P&L beside)
        # fees at one precision per currency, the same in both tables (orders showed 4 decimals, fills all)
        fee = f"{filled.fee:,.8f}"
        assert fee in fill_line, (fee, fills)
        assert fee in next(ln for ln in orders.splitlines() if filled.client_order_id[-6:] in ln), (fee, orders)

        await pilot.press("f")  # the filter: BTC/USDT only, still both
        await wait_for(pilot, lambda: hist.symbol == BTC and hist.loaded > 1, what="the BTC filter")
        await pilot.press("f")  # ETH/USDT: none of ours
        await wait_for(pilot, lambda: hist.symbol == "ETH/USDT" and "no finished orders on ETH/USDT"
                       in pane_text(app, "#hist-orders"), what="no ETH orders")
        await pilot.press("escape")
        await wait_for(pilot, lambda: _is_desk(app), what="back on the desk")

        # the P&L screen: today's row from the stored snapshots (one at each engine stop), live
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, PerformanceScreen) and app.screen.loaded > 0,
                       what="the P&L screen, loaded")
        await wait_for(pilot, lambda: "live" in pane_text(app, "#perf-daily"),
                       what=lambda: f"today's live row:\n{pane_text(app, '#perf-daily')}")
        assert "no strategy has traded" in pane_text(app, "#perf-strategies")
        await pilot.press("escape")
        await wait_for(pilot, lambda: _is_desk(app), what="back on the desk")
