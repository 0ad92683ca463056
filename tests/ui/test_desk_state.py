"""The desk's pure parts: state folding stays bounded, the ticket's book-walk estimate."""

from __future__ import annotations

from decimal import Decimal

from tps19.engine.events import BookEvent, LogEvent, Trade, TradeEvent
from tps19.desk.screens.ticket import estimate
from tps19.desk.widgets.state import MAX_LOG, MAX_TRADES, DeskState

BOOK = BookEvent("BTC/USDT", bids=((100.0, 1.0), (99.0, 2.0)), asks=((101.0, 1.0), (102.0, 2.0)), ts=1, seq=1)
MARKET = {"taker": 0.001, "maker": 0.0005}


def test_state_is_bounded_and_books_keep_only_the_latest():
    st = DeskState(["BTC/USDT"])
    for i in range(5_000):
        dirty = st.apply([TradeEvent("BTC/USDT", (Trade(i, "buy", 100.0, 1.0),)), LogEvent("info", f"l{i}"),
                          BookEvent("BTC/USDT", ((100.0 + i, 1.0),), ((200.0 + i, 1.0),), i, i)])
    assert {"book", "tape", "log"} <= dirty
    assert len(st.trades["BTC/USDT"]) == MAX_TRADES
    assert len(st.log) == MAX_LOG and len(st.new_log) <= MAX_LOG
    assert st.books["BTC/USDT"].seq == 4_999


def test_error_logs_become_alerts():
    st = DeskState(["BTC/USDT"])
    st.apply([LogEvent("error", "venue said no")])
    assert st.alerts == [("error", "venue said no")]


def test_market_buy_walks_the_asks():
    est = estimate("buy", "market", Decimal("2"), None, BOOK, MARKET)
    assert est.taker_amount == Decimal("2")
    assert est.avg_price == Decimal("101.5")  # 1 @ 101 + 1 @ 102
    assert est.notional == Decimal("203")
    assert est.fee == Decimal("0.203")
    assert est.slippage_bps is not None and est.slippage_bps > 0
    assert not est.short_book
    assert estimate("buy", "market", Decimal("5"), None, BOOK, MARKET).short_book


def test_resting_limit_pays_maker_and_fills_nothing_now():
    est = estimate("sell", "limit", Decimal("1"), Decimal("105"), BOOK, MARKET)
    assert est.avg_price is None and est.taker_amount == 0
    assert est.notional == Decimal("105") and est.fee == Decimal("105") * Decimal("0.0005")


def test_crossing_limit_takes_up_to_its_price_then_rests():
    est = estimate("sell", "limit", Decimal("2"), Decimal("100"), BOOK, MARKET)
    assert est.taker_amount == Decimal("1") and est.avg_price == Decimal("100")
    assert est.notional == Decimal("200")  # 1 taken at 100, 1 resting at 100


def test_equity_without_every_holding_priced_is_no_chart_point():
    """A PortfolioUpdate sent before BTC had a mark has the USDT alone as equity: as a chart point
    it made a jump that read as a gain."""
    from decimal import Decimal

    from tps19.engine.trading.events import PortfolioUpdate

    def upd(eq: str, unpriced: tuple[str, ...], ts: int) -> PortfolioUpdate:
        return PortfolioUpdate("paper", "USDT", Decimal(eq), unpriced, Decimal(0), Decimal(0), Decimal(0), Decimal(0),
                               None, None, (), ts=ts)

    st = DeskState(symbols=["BTC/USDT"])
    st.apply([upd("100000", ("BTC",), 1_000), upd("165000", (), 2_000), upd("165010", (), 3_000)])
    assert [v for _, v in st.equity_points] == [Decimal("165000"), Decimal("165010")]
    assert st.portfolio.equity == Decimal("165010")


def test_the_fat_finger_warning_shows_the_quoted_mid_without_float_noise():
    from tps19.desk.screens.ticket import far_from_mid

    book = BookEvent("BTC/USDT", bids=((65105.72, 1.0),), asks=((65105.74, 1.0),), ts=1, seq=1)
    warning = far_from_mid("sell", Decimal("1"), book)
    assert warning is not None and "the mid 65,105.73:" in warning, warning  # was 65,105.729999999996


def test_help_lists_every_key_of_the_desk_and_its_screens():
    """`?` left out r (risk limits), m, ctrl+b, ctrl+t, ctrl+q: every binding of the app, the desk
    and the ticket is listed."""
    from tps19.desk.app import DeskApp
    from tps19.desk.screens.desk import DeskScreen
    from tps19.desk.screens.help import KEYS
    from tps19.desk.screens.ticket import TicketScreen

    import re

    listed = {part.replace(" ", "") for k, _ in KEYS for part in re.split(r"\s+/\s+|,\s*", k)}
    names = {"question_mark": "?"}
    for cls in (DeskApp, DeskScreen, TicketScreen):
        for b in cls.BINDINGS:
            for key in b.key.split(","):
                key = names.get(key, key)
                if key.isdigit():
                    key = "1-9"
                assert key in listed, f"{cls.__name__}: {key} ({b.description}) not in help: {sorted(listed)}"


async def test_help_scrolls_to_its_last_key_at_80x24():
    from textual.app import App

    from tps19.desk.screens.help import HelpScreen

    class One(App):
        def on_mount(self) -> None:
            self.push_screen(HelpScreen("paper"))

    app = One()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        from .conftest import screen_text

        def text() -> str:
            return screen_text(app)

        assert isinstance(app.screen, HelpScreen)
        assert "quit (live mode asks" not in text()  # 24 rows: the last keys are below the fold
        for _ in range(4):
            await pilot.press("pagedown")
        await pilot.pause()
        assert "quit (live mode asks" in text(), text()


async def test_signals_pane_marks_warm_up_signals_and_shows_the_strategys_clock():
    """A warm-up signal (decided on history at start, never traded) read like a live one; a running
    strategy without a signal yet said "no strategy running"; nothing said when it next decides."""
    from textual.app import App

    from tps19.desk.widgets.panes import SignalsPane, strategy_clock
    from tps19.engine.strategies.signals import Signal, SignalEvent

    from .conftest import screen_text

    class Runner:
        prototype = type("P", (), {"name": "sma_cross"})()
        timeframe = "1m"
        last_ts = {"BTC/USDT": 1_700_000_040_000}  # 22:14 UTC

    clock = strategy_clock(Runner(), "BTC/USDT")
    assert clock == "last bar 22:14:00 · next decision 22:16:00 (1m)"
    assert strategy_clock(None, "BTC/USDT") is None

    class One(App):
        CSS = "SignalsPane { border: round white; height: 8; }"  # the desk's pane border

        def compose(self):
            yield SignalsPane("", id="signals")

    app = One()
    async with app.run_test(size=(100, 12)) as pilot:
        pane = app.query_one(SignalsPane)
        pane.show_signals([], True, clock)
        await pilot.pause()
        assert "no signals yet" in screen_text(app) and "next decision 22:16:00" in screen_text(app)
        warm = SignalEvent("sma_cross", "BTC/USDT", "1m", 1_700_000_040_000,
                           Signal(direction=1, strength=1.0, reason="fast above slow", target=1.0), warmup=True)
        pane.show_signals([warm], True, clock)
        await pilot.pause()
        assert "warm-up, not traded: fast above slow" in screen_text(app)


async def test_a_shadow_models_decisions_are_visible_in_the_pane_and_headless_lines(tmp_path):
    """A model in shadow predicted on every bar and only the database knew: its decisions now reach
    the bus (DecisionEvent), the desk's Signals pane (SHADOW rows) and headless `decision` lines
    with the position it would hold."""
    import json

    from tps19.engine.bus import EventBus
    from tps19.engine.events import BarEvent
    from tps19.engine.headless import _write_event
    from tps19.engine.jsonlog import JsonLines
    from tps19.engine.ml.strategy import Prediction
    from tps19.engine.strategies.runner import StrategyRunner
    from tps19.engine.strategies.signals import DecisionEvent

    class Model:
        name = "ml"

        def __init__(self, model_id: str, p: float) -> None:
            self.model_id, self.p, self.last_prediction = model_id, p, None

        def clone(self):
            return Model(self.model_id, self.p)

        def param_dict(self):
            return {}

        def on_bar(self, bar, portfolio=None):
            self.last_prediction = Prediction(self.model_id, bar.ts, self.p, bar.close, 1, {}, "buy", 1.0)
            return None

    bus = EventBus()
    seen: list = []
    bus.on(DecisionEvent, seen.append)
    runner = StrategyRunner(bus, Model("champion", 0.4), symbols=["BTC/USDT"], timeframe="1m",
                            shadows=[Model("challenger", 0.7)])
    await runner.handle(BarEvent("BTC/USDT", "1m", 60_000, 1.0, 1.0, 1.0, 1.0, 1.0, True))
    assert [(d.model, d.shadow, d.target) for d in seen] == [("champion", False, 1.0), ("challenger", True, 1.0)]
    st = DeskState(["BTC/USDT"])
    st.apply(seen)
    assert [s.model for s in st.signals] == ["challenger"]  # the running model's show as its signals
    assert st.signals[0].reason == "SHADOW challenger (no order): P(up) 0.700, would hold 1.00"
    log = tmp_path / "h.jsonl"
    out = JsonLines(log)
    _write_event(out, seen[1], 20)
    out.close()
    line = json.loads(log.read_text())
    assert line["event"] == "decision" and line["model"] == "challenger" and line["shadow"] is True
    assert line["position"] == 1.0 and line["probability"] == 0.7


def _order(**kw):
    from tps19.engine.trading.events import OrderUpdate

    base = dict(client_order_id="t19-x-000000abc123", venue_order_id=None, mode="paper", symbol="BTC/USDT",
                side="sell", type="stop_market", amount=Decimal("0.01"), price=None, filled=Decimal("0"),
                avg_price=None, fee=Decimal("0"), status="new", previous_status=None)
    base.update(kw)
    return OrderUpdate(**base)


def test_protective_order_log_lines_read_as_prices_and_kinds():
    # a trader saw "armed: sell 0.01 BTC/USDT stop_market trigger 6.4E+4" and, when the group was
    # cancelled, "cancelled: sell 0.01 BTC/USDT market" for a take-profit
    st = DeskState(["BTC/USDT"])
    st.apply([_order(trigger_price=Decimal("64000"), trigger_state="armed", placement="emulated"),
              _order(client_order_id="t19-x-000000def456", type="take_profit", trigger_price=Decimal("66500.00"),
                     trigger_state="armed", placement="emulated"),
              _order(client_order_id="t19-x-000000def456", type="take_profit", trigger_price=Decimal("66500.00"),
                     trigger_state="armed", placement="emulated", status="cancelled", previous_status="new")])
    lines = [e.message for e in st.log]
    assert lines[0] == "armed: sell 0.01 BTC/USDT stop_market trigger 64000 (held by TPS19)"
    assert lines[1] == "armed: sell 0.01 BTC/USDT take_profit trigger 66500 (held by TPS19)"
    assert lines[2] == "cancelled: sell 0.01 BTC/USDT take_profit trigger 66500"
    assert all("E+" not in line for line in lines)


async def test_the_pnl_screens_live_row_follows_the_engine_not_the_last_reload():
    # the P&L screen's today row is marked "live" but kept the figures of the moment it was opened
    # (end equity 210,570.59 / P&L -0.60) while the chart above moved on: 'r' was needed to update it
    import time
    from types import SimpleNamespace as NS

    from textual.app import App

    from tps19.desk.screens.performance import PerformanceScreen

    from .conftest import screen_text, wait_for

    today = time.strftime("%Y-%m-%d", time.gmtime())

    class History:
        async def equity_series(self):
            return []

        async def daily_pnl(self, days=30):
            return [NS(day=today, start_equity=Decimal("1000"), end_equity=Decimal("1000"), pnl=Decimal("0"))]

        async def strategies(self):
            return []

    state = NS(portfolio=NS(equity=Decimal("1010.25"), pnl_today=Decimal("-1.50"), valuation="USDT"),
               positions={}, equity_points=[])

    class One(App):
        def on_mount(self) -> None:
            self.push_screen(PerformanceScreen(History(), state, []))

    app = One()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: getattr(app.screen, "loaded", 0) > 0, what="the P&L screen loaded")
        await wait_for(pilot, lambda: "1,010.25" in screen_text(app), what="today's live row")
        state.portfolio = NS(equity=Decimal("1020.75"), pnl_today=Decimal("-2.25"), valuation="USDT")
        await wait_for(pilot, lambda: "1,020.75" in screen_text(app) and "-2.25" in screen_text(app),
                       what=lambda: f"today's row after the engine's next figure:\n{screen_text(app)}")
