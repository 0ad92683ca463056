"""Pilot tests: the real DeskApp on the real engine against the embedded simulated exchange."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tps19.app import DeskApp
from tps19.config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET
from tps19.screens.confirm import ConfirmScreen, MessageScreen
from tps19.screens.help import HelpScreen
from tps19.screens.ticket import TicketScreen
from tps19.widgets.book import BookLadder
from tps19.widgets.panes import OrdersTable

from .conftest import screen_text, wait_for

try:
    import tps19.engine.trading  # noqa: F401

    HAVE_TRADING = True
except ImportError:  # pragma: no cover
    HAVE_TRADING = False

needs_trading = pytest.mark.skipif(not HAVE_TRADING, reason="tps19.engine.trading not installed")


async def _ready(pilot, app: DeskApp, symbol: str = "BTC/USDT") -> None:
    await wait_for(pilot, lambda: app.ready and symbol in app.state.books, what=f"first {symbol} book")
    await pilot.pause(0.2)


def _working(app: DeskApp) -> list:
    return app.trading.broker.open_orders() if app.trading is not None else []


async def test_desk_shows_book_levels_and_switches_symbol(settings):
    app = DeskApp(settings=settings, mode="paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(pilot, app)
        book = app.screen.query_one("#book", BookLadder)
        assert book.symbol == "BTC/USDT" and book.event is not None
        ev = app.state.books["BTC/USDT"]
        text = screen_text(app)
        best_bid = f"{ev.best_bid:,.2f}"
        assert "Book BTC/USDT" in text
        assert "PAPER" in text and "LIVE" not in text
        assert "mid " in text and "spread" in text
        # the ladder shows real levels from the simulated venue (the latest drawn book)
        drawn = book.event
        assert f"{drawn.bids[0][0]:,.2f}" in text and f"{drawn.asks[0][0]:,.2f}" in text, best_bid

        await pilot.press("2")
        await _ready(pilot, app, "ETH/USDT")
        assert app.symbol == "ETH/USDT"
        await pilot.pause(0.2)
        assert book.symbol == "ETH/USDT"
        assert book.event is not None and book.event.symbol == "ETH/USDT"
        await wait_for(pilot, lambda: "Book ETH/USDT" in screen_text(app), timeout=3, what="ETH title")

        await pilot.press("9")  # only three symbols: says so, stays put
        await pilot.pause(0.1)
        assert app.symbol == "ETH/USDT"

        await pilot.press("d")  # depth cycles
        assert book.levels == 20

        await pilot.press("question_mark")
        await pilot.pause(0.1)
        assert isinstance(app.screen, HelpScreen)
        await wait_for(pilot, lambda: "kill switch" in screen_text(app), timeout=3, what="help text")
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


@needs_trading
async def test_paper_order_ticket_orders_cancel_position(settings):
    app = DeskApp(settings=settings, mode="paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(pilot, app)
        assert app.trading is not None, "engine did not build the trading layer"

        # a buy limit far below the market rests; it shows in the orders pane and on the ladder
        await pilot.press("b")
        assert isinstance(app.screen, TicketScreen)
        bid = app.state.books["BTC/USDT"].best_bid
        price = app.screen.query_one("#price")
        price.value = f"{bid * 0.98:.2f}"
        await pilot.press(*"0.01")
        await pilot.pause(0.1)
        assert app.screen.validated is not None, app.screen.error
        await pilot.press("enter")  # review
        assert app.screen.stage == "review"
        await pilot.pause(0.2)
        await wait_for(pilot, lambda: "paper order" in screen_text(app), timeout=3, what="review text")
        await pilot.press("enter")  # paper: places
        await wait_for(pilot, lambda: len(_working(app)) == 1, what="resting order")
        table = app.screen.query_one("#orders", OrdersTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="order in the orders pane")
        await wait_for(pilot, lambda: "open" in screen_text(app), timeout=3, what="open order row")

        # c cancels the selected order
        table.focus()
        await pilot.press("c")
        await wait_for(pilot, lambda: not _working(app), what="cancel")
        await wait_for(pilot, lambda: table.row_count == 0, what="orders pane empty")

        # a market buy fills and shows as a position
        await pilot.press("b", "ctrl+t", *"0.01")
        await pilot.pause(0.1)
        assert app.screen.query_one("#type").value == "market"
        await pilot.press("enter", "enter")
        await wait_for(pilot, lambda: "BTC/USDT" in app.state.positions
                       and app.state.positions["BTC/USDT"].net_position == Decimal("0.01"), what="position")
        await pilot.pause(0.6)  # the positions pane redraws at <= 2 Hz
        text = screen_text(app)
        assert "Positions" in text and "0.01" in text and "no positions" not in text

        # C cancels all resting orders for the symbol
        for _ in range(2):
            await pilot.press("b")
            app.screen.query_one("#price").value = f"{bid * 0.97:.2f}"
            await pilot.press(*"0.01", "enter", "enter")
            await pilot.pause(0.1)
        await wait_for(pilot, lambda: len(_working(app)) == 2, what="two resting orders")
        await pilot.press("C")
        await wait_for(pilot, lambda: not _working(app), what="cancel all")


@needs_trading
async def test_ticket_validates_before_review(settings):
    app = DeskApp(settings=settings, mode="paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(pilot, app)
        await pilot.press("s")
        ticket = app.screen
        assert isinstance(ticket, TicketScreen) and ticket.side == "sell"
        await pilot.press(*"abc")
        assert ticket.validated is None and "not a number" in ticket.error
        ticket.query_one("#amount").value = ""
        await pilot.press(*"1000")  # 1000 BTC: far above the per-order cap
        await pilot.pause(0.05)
        assert ticket.validated is None and "cap" in ticket.error
        await pilot.press("enter")
        assert ticket.stage == "edit"  # cannot review an invalid order
        ticket.query_one("#amount").value = ""
        await pilot.press(*"0.01")
        await pilot.pause(0.2)
        assert ticket.validated is not None
        await wait_for(pilot, lambda: "fee (est.)" in screen_text(app) and "notional" in screen_text(app), timeout=3,
                       what="estimate")
        await pilot.press("escape")
        assert not isinstance(app.screen, TicketScreen)
        assert not _working(app)


@needs_trading
async def test_rejected_order_is_a_notification_and_a_log_line(settings):
    # the sim account starts with 1 BTC (~60k USDT): a buy breaks a 50k position cap in the broker
    capped = settings.model_copy(update={"risk": settings.risk.model_copy(update={"max_position_notional": 50_000})})
    app = DeskApp(settings=capped, mode="paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(pilot, app)
        await pilot.press("b", *"0.01", "enter", "enter")
        await wait_for(pilot, lambda: any(e.level == "error" and "rejected" in e.message for e in app.state.log),
                       what="rejection in the log")
        await pilot.pause(0.2)
        assert any("rejected" in str(n.message) for n in app._notifications)
        await wait_for(pilot, lambda: "rejected" in screen_text(app), timeout=3, what="rejection on screen")
        assert not _working(app)


@needs_trading
async def test_kill_switch_cancels_blocks_and_releases(settings):
    app = DeskApp(settings=settings, mode="paper")
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(pilot, app)
        bid = app.state.books["BTC/USDT"].best_bid
        await pilot.press("b")
        app.screen.query_one("#price").value = f"{bid * 0.98:.2f}"
        await pilot.press(*"0.01", "enter", "enter")
        await wait_for(pilot, lambda: len(_working(app)) == 1, what="resting order")

        await pilot.press("ctrl+k")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # no: nothing happens
        assert not app.trading.broker.killed and len(_working(app)) == 1
        await pilot.press("ctrl+k", "y")
        await wait_for(pilot, lambda: app.trading.broker.killed and not _working(app), what="kill switch")
        await pilot.pause(0.6)
        text = screen_text(app)
        assert "KILL SWITCH" in text and "ENGAGED" in text

        await pilot.press("b")  # the ticket refuses while the switch is engaged
        assert "kill switch engaged" in (app.screen.error or "")
        await pilot.press("escape")

        await pilot.press("ctrl+k", "y")  # again: release (asks first)
        await wait_for(pilot, lambda: not app.trading.broker.killed, what="release")


@needs_trading
async def test_live_confirmation_cannot_be_skipped(settings):
    try:
        import tps19.engine.trading.live  # noqa: F401
    except ImportError:
        pytest.skip("live broker (tps19.engine.trading.live) not installed yet")
    live = settings.model_copy(update={"exchange": settings.exchange.model_copy(
        update={"api_key": SIM_DEMO_API_KEY, "secret": SIM_DEMO_SECRET})})
    from pydantic import SecretStr

    live.exchange.api_key = SecretStr(SIM_DEMO_API_KEY)
    live.exchange.secret = SecretStr(SIM_DEMO_SECRET)
    app = DeskApp(settings=live, mode="live")
    async with app.run_test(size=(120, 40)) as pilot:
        await _ready(pilot, app)
        assert app.trading is not None and app.trading.mode == "live"
        text = screen_text(app)
        assert "LIVE" in text and "PAPER" not in text
        assert SIM_DEMO_SECRET not in text and SIM_DEMO_API_KEY not in text

        bid = app.state.books["BTC/USDT"].best_bid
        await pilot.press("b")
        ticket = app.screen
        ticket.query_one("#price").value = f"{bid * 0.98:.2f}"
        await pilot.press(*"0.001")
        # enter, enter, enter: review, then nothing -- a live order needs y
        await pilot.press("enter", "enter", "enter")
        await pilot.pause(0.3)
        assert isinstance(app.screen, TicketScreen) and ticket.stage == "review"
        await wait_for(pilot, lambda: "LIVE ORDER" in screen_text(app) and "type y" in screen_text(app), timeout=3,
                       what="live review")
        assert not _working(app)
        # escape goes back to editing; y while editing types into the field, sends nothing
        await pilot.press("escape")
        assert ticket.stage == "edit"
        await pilot.press("y")
        await pilot.pause(0.2)
        assert not _working(app) and isinstance(app.screen, TicketScreen)
        ticket.query_one("#amount").value = "0.001"
        await pilot.press("enter", "y")
        await wait_for(pilot, lambda: len(_working(app)) == 1, timeout=10, what="live order on the sim")

        # quitting with an open live order asks first
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen)
        await pilot.press("C")
        await wait_for(pilot, lambda: not _working(app), timeout=10, what="live cancel all")


async def test_engine_error_is_a_message_not_a_traceback(settings):
    bad = settings.model_copy(update={"symbols": settings.symbols.model_copy(update={"watch": ["NOPE/USDT"]})})
    app = DeskApp(settings=bad, mode="paper")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MessageScreen), what="error message")
        await pilot.pause(0.2)
        text = screen_text(app)
        assert "could not start" in text and "NOPE/USDT" in text
        assert "Traceback" not in text
        await pilot.press("q")
        await pilot.pause(0.2)
    assert app.return_code == 1


async def test_desk_at_80x24_no_color_palette_and_backtest_key(settings, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = DeskApp(settings=settings, mode="paper")
    assert app.no_color  # Textual renders monochrome; the desk never relies on colour alone
    async with app.run_test(size=(80, 24)) as pilot:
        await _ready(pilot, app)
        assert app.screen.has_class("-narrow")
        assert not app.screen.query_one("#chart").display
        text = screen_text(app)
        assert "Book BTC/USDT" in text and "Open orders" in text and "PAPER" in text

        # the command palette switches symbols too
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"SOL/USDT")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.symbol == "SOL/USDT", timeout=5, what="palette symbol switch")

        await pilot.press("ctrl+b")  # the backtest screen (another engineer's), or "not built"
        await pilot.pause(0.3)
        from tps19.screens.desk import DeskScreen

        if not isinstance(app.screen, DeskScreen):
            await pilot.press("escape")
