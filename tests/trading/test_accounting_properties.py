"""The accounting is proved, not assumed: random sequences of orders, partial fills, marks,
cancels and restarts on the paper broker (and on the live broker against the simulated
exchange, whose buys pay their fee in the base currency), after each step:

* equity = sum of balances x marks, and the balances are the starting ones plus every stored
  fill's movement (they reconcile with the database, also after a restart);
* equity - the starting holdings at today's marks = realised + unrealised (both gross of fees)
  - fees: what the account had before is revalued, the rest is P&L (zero revaluation on a
  quote-only account);
* P&L today is one figure: the risk stage's (the loss limit's) = the desk's PortfolioUpdate =
  the headless line;
* no spot balance goes below zero (an order for more than is free is refused);
* a restarted engine shows the same balances, positions and P&L.

Example counts are fixed by the hypothesis profile (tests/conftest.py: derandomised, no deadline).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tps19.engine.assembly import build_trading
from tps19.engine.bus import EventBus
from tps19.engine.events import Trade, TradeEvent
from tps19.engine.storage import Database
from tps19.engine.trading.portfolio import fill_balance_deltas
from tps19.figures import money

from .conftest import cryptocom_markets
from .helpers import book, settings

D = Decimal
ZERO = D(0)
MARKETS = cryptocom_markets()
SYMBOLS = ("BTC/USDT", "ETH/USDT")
TICK = {"BTC/USDT": D("0.01"), "ETH/USDT": D("0.01")}
STEP = {"BTC/USDT": D("0.00001"), "ETH/USDT": D("0.0001")}


def _book(symbol: str, mid: Decimal) -> Any:
    """A two-sided book around ``mid``: 1 tick either side, then deeper levels (a market order
    larger than the top walks the book: several fills, partial at a level)."""
    t = TICK[symbol]
    size = 0.5 if symbol == "BTC/USDT" else 5.0
    bids = tuple((float(mid - t * k), size * k) for k in (1, 10, 100))
    asks = tuple((float(mid + t * k), size * k) for k in (1, 10, 100))
    return book(symbol, bids=bids, asks=asks)


class Accounting(RuleBasedStateMachine):
    """Drives one trading stack; subclasses choose the broker."""

    start_balances: dict[str, Decimal] = {}

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.mkdtemp(prefix="tps19-props-")
        self.db = Database(Path(self.dir) / "t.db")
        self.run(self.db.open())
        self.mid = {"BTC/USDT": D("50000"), "ETH/USDT": D("3000")}
        self.stack: Any = None
        self.bus: Any = None

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    # -- the stack -------------------------------------------------------------------------------
    async def _build(self) -> Any:
        raise NotImplementedError

    async def _settle(self) -> None:
        """Wait until the broker handled every event it was sent."""
        sub = getattr(self.stack.broker, "_sub", None)
        for _ in range(2000):
            if sub is None or sub.pending() == 0:
                break
            await asyncio.sleep(0.001)
        async with self.stack.broker.lock:
            pass

    def publish_books(self) -> None:
        for s in SYMBOLS:
            self.bus.publish(_book(s, self.mid[s]))
        self.run(self._settle())

    def teardown(self) -> None:
        try:
            if self.stack is not None:
                self.run(self.stack.stop())
            self.run(self.db.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- rules -----------------------------------------------------------------------------------
    @rule(symbol=st.sampled_from(SYMBOLS), move=st.integers(-300, 300))
    def mark_moves(self, symbol: str, move: int) -> None:
        self.mid[symbol] = max(self.mid[symbol] + TICK[symbol] * move * 10, D("100"))
        self.publish_books()

    @rule(symbol=st.sampled_from(SYMBOLS), lots=st.integers(1, 3000))
    def market_buy(self, symbol: str, lots: int) -> None:
        self.run(self.stack.broker.place_order(symbol, "buy", "market", STEP[symbol] * lots))
        self.run(self._settle())

    @rule(symbol=st.sampled_from(SYMBOLS), share=st.integers(1, 100))
    def market_sell_part_of_the_position(self, symbol: str, share: int) -> None:
        qty = self.stack.portfolio.position(symbol).qty
        amount = (qty * share / 100).quantize(STEP[symbol], rounding="ROUND_DOWN")
        if amount > 0:
            self.run(self.stack.broker.place_order(symbol, "sell", "market", amount))
            self.run(self._settle())

    @rule(symbol=st.sampled_from(SYMBOLS))
    def selling_more_than_is_held_is_refused(self, symbol: str) -> None:
        base = MARKETS[symbol]["base"]
        before = dict(self.stack.portfolio.balances)
        too_much = self.stack.portfolio.balances.get(base, ZERO) + STEP[symbol] * 100
        o = self.run(self.stack.broker.place_order(symbol, "sell", "market", too_much))
        assert o.status.value == "rejected", (o.status, o.reason)
        assert self.stack.portfolio.balances == before

    @rule(symbol=st.sampled_from(SYMBOLS), lots=st.integers(1, 2000), ticks=st.integers(2, 50))
    def limit_buy_rests(self, symbol: str, lots: int, ticks: int) -> None:
        price = self.mid[symbol] - TICK[symbol] * ticks * 3
        self.run(self.stack.broker.place_order(symbol, "buy", "limit", STEP[symbol] * lots, price))
        self.run(self._settle())

    @precondition(lambda self: bool(self.stack.broker.open_orders()))
    @rule(pick=st.integers(0, 10), part=st.integers(1, 100), through=st.booleans())
    def a_venue_trade_fills_a_resting_order(self, pick: int, part: int, through: bool) -> None:
        """Partial (at its price, part of its size) or whole (through its price)."""
        working = self.stack.broker.open_orders()
        o = working[pick % len(working)]
        size = (o.remaining * part / 100).quantize(STEP[o.symbol], rounding="ROUND_DOWN") or STEP[o.symbol]
        price = o.price - TICK[o.symbol] if through and o.side == "buy" else o.price
        ev = TradeEvent(o.symbol, (Trade(ts=0, side="sell" if o.side == "buy" else "buy", price=float(price),
                                         amount=float(size)),))
        self.bus.publish(ev)
        self.run(self._settle())

    @precondition(lambda self: bool(self.stack.broker.open_orders()))
    @rule(pick=st.integers(0, 10))
    def cancel(self, pick: int) -> None:
        working = self.stack.broker.open_orders()
        self.run(self.stack.broker.cancel(working[pick % len(working)].client_order_id))
        self.run(self._settle())

    @rule()
    def restart(self) -> None:
        before = self._figures()
        self.run(self.stack.stop())
        self.stack = self.run(self._build())
        self.publish_books()  # marks are not stored: the same books give the same marks
        after = self._figures()
        assert after == before, (before, after)

    # -- invariants ------------------------------------------------------------------------------
    def _figures(self) -> dict[str, Any]:
        pf = self.stack.portfolio
        return {"balances": {c: v for c, v in pf.balances.items() if v}, "totals": pf.totals(),
                "equity": pf.equity(), "positions": {s: (p.qty, p.avg_entry) for s, p in pf.positions.items() if p.qty}}

    def _value(self, currency: str, amount: Decimal) -> Decimal:
        return amount if currency == "USDT" else amount * self.stack.portfolio.marks[f"{currency}/USDT"]

    @invariant()
    def balances_reconcile_with_the_stored_fills_and_none_is_negative(self) -> None:
        if self.stack is None:
            return
        want = dict(self.start_balances)
        for f in self.run(self.stack.store.fills()):
            m = MARKETS[f.symbol]
            for c, d in fill_balance_deltas(f.side, f.price, f.amount, f.fee, f.fee_currency, m["base"],
                                            m["quote"]).items():
                want[c] = want.get(c, ZERO) + d
        got = self.stack.portfolio.balances
        assert {c: v for c, v in got.items() if v} == {c: v for c, v in want.items() if v}
        assert all(v >= 0 for v in got.values()), got

    @invariant()
    def equity_is_the_holdings_at_the_marks_and_its_change_is_the_pnl(self) -> None:
        if self.stack is None:
            return
        pf = self.stack.portfolio
        eq, unpriced = pf.equity()
        assert unpriced == []
        assert eq == sum((self._value(c, v) for c, v in pf.balances.items() if v), ZERO)
        before = sum((self._value(c, v) for c, v in self.start_balances.items()), ZERO)
        t = pf.totals()
        # exact but for the 28-digit quotient of an average entry price (1e-26 of a dollar)
        assert abs(eq - before - (t["realized_pnl"] + t["unrealized_pnl"] - t["fees"])) < D("1e-12"), (eq, before, t)

    @invariant()
    def pnl_today_is_one_figure(self) -> None:
        if self.stack is None:
            return
        today = self.stack.broker.risk.pnl_today()
        update = self.stack.portfolio.publisher.update()
        assert update.pnl_today == today
        assert self.stack.summary().get("pnl_today") == (None if today is None else money(today, "USDT"))


class PaperAccounting(Accounting):
    start_balances = {"USDT": D("100000"), "BTC": D("1"), "ETH": D("10")}

    async def _build(self) -> Any:
        self.bus = EventBus()
        s = await build_trading(mode="paper", bus=self.bus, db=self.db, client=None, markets=MARKETS,
                                settings=settings(), starting_balances=dict(self.start_balances),
                                snapshot_interval_s=0)
        await s.start()
        return s

    @initialize()
    def open_the_account(self) -> None:
        self.stack = self.run(self._build())
        self.publish_books()


class QuoteOnlyPaperAccounting(PaperAccounting):
    start_balances = {"USDT": D("250000")}


TestPaperAccounting = PaperAccounting.TestCase
TestQuoteOnlyPaperAccounting = QuoteOnlyPaperAccounting.TestCase
TestPaperAccounting.settings = hsettings(TestPaperAccounting.settings, max_examples=12, stateful_step_count=14)
TestQuoteOnlyPaperAccounting.settings = hsettings(TestQuoteOnlyPaperAccounting.settings, max_examples=6,
                                                  stateful_step_count=14)
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


live_actions = st.lists(st.one_of(
    st.tuples(st.just("buy"), st.integers(1, 2000)),
    st.tuples(st.just("sell"), st.integers(1, 100)),
    st.tuples(st.just("limit"), st.integers(100, 2000), st.integers(1, 100)),
    st.tuples(st.just("oversell")),
    st.tuples(st.just("restart"))), min_size=3, max_size=7)


@hsettings(max_examples=3)
@given(actions=live_actions)
def test_live_accounting_on_the_simulated_exchange(actions):
    """The live broker against the simulated exchange over loopback (ccxt REST and websockets):
    the venue charges a buy's fee in the base currency and a sell's in the quote, another
    trader's orders fill ours in part. The actions are drawn before the run (the venue's timing
    must not steer what is generated); after each one the broker waits until its balances are
    the venue's, then the same invariants as on paper hold."""
    LiveRun(actions).go()


class LiveRun(Accounting):
    start_balances = {"USDT": D("100000"), "BTC": D("1")}

    def __init__(self, actions: list[tuple[Any, ...]]) -> None:
        super().__init__()
        self.actions = actions

    async def _clients(self) -> None:
        from .simhelp import KEY2, SECRET2, make_client

        self.client = await make_client(self.sim.base_url)
        self.other = await make_client(self.sim.base_url, KEY2, SECRET2)

    async def _build(self) -> Any:
        self.bus = EventBus()
        s = await build_trading(mode="live", bus=self.bus, db=self.db, client=self.client,
                                markets=self.client.markets, settings=settings(), snapshot_interval_s=0,
                                poll_interval_s=0.2, watch_timeout_s=1.0, request_timeout_s=3.0)
        await s.start()
        return s

    async def _settle(self) -> None:
        """Until the broker's balances are the venue's (fills arrive over the user stream)."""
        from .simhelp import venue_totals

        loop = asyncio.get_running_loop()
        end = loop.time() + 15.0
        while {c: v for c, v in self.stack.portfolio.balances.items() if v} != venue_totals(self.sim):
            assert loop.time() < end, "the broker never caught up with the venue's balances"
            await asyncio.sleep(0.01)

    def publish_books(self) -> None:
        ob = self.run(self.client.fetch_order_book("BTC/USDT", 5))
        self.bus.publish(book("BTC/USDT", bids=tuple(tuple(x[:2]) for x in ob["bids"]),
                              asks=tuple(tuple(x[:2]) for x in ob["asks"])))

    def check(self) -> None:
        self.balances_reconcile_with_the_stored_fills_and_none_is_negative()
        self.equity_is_the_holdings_at_the_marks_and_its_change_is_the_pnl()
        self.pnl_today_is_one_figure()

    def go(self) -> None:
        from .simhelp import inside_spread_price, make_sim

        self.sim = make_sim()
        try:
            self.run(self.sim.start())
            self.run(self._clients())
            self.stack = self.run(self._build())
            self.publish_books()
            self.check()
            for act in self.actions:
                self.step(act, inside_spread_price)
                self.publish_books()
                self.check()
        finally:
            try:
                if self.stack is not None:
                    self.run(self.stack.stop())
                    self.stack = None
                self.run(self.client.close())
                self.run(self.other.close())
                self.run(self.sim.stop())
            finally:
                self.teardown()

    def step(self, act: tuple[Any, ...], inside_spread_price: Any) -> None:
        broker, step = self.stack.broker, STEP["BTC/USDT"]
        if act[0] == "buy":
            self.run(broker.place_order("BTC/USDT", "buy", "market", step * act[1]))
        elif act[0] == "sell":
            amount = (self.stack.portfolio.position("BTC/USDT").qty * act[1] / 100).quantize(step, "ROUND_DOWN")
            if amount > 0:
                self.run(broker.place_order("BTC/USDT", "sell", "market", amount))
        elif act[0] == "limit":
            price = self.run(inside_spread_price(self.client))
            o = self.run(broker.place_order("BTC/USDT", "buy", "limit", step * act[1], price))
            if o.status.value == "open":
                size = max((o.amount * act[2] / 100).quantize(step, "ROUND_DOWN"), step)
                self.run(self.other.create_order("BTC/USDT", "limit", "sell", float(size), float(price)))
                self.run(self._until_filled(o.client_order_id))
                self.run(broker.cancel(o.client_order_id))
        elif act[0] == "oversell":
            self.selling_more_than_is_held_is_refused("BTC/USDT")
        elif act[0] == "restart":
            before = self._figures()
            self.run(self.stack.stop())
            self.stack = self.run(self._build())
            self.publish_books()
            self.run(self._settle())
            assert self._figures() == before
        self.run(self._settle())

    async def _until_filled(self, coid: str) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + 15.0
        while not ((x := self.stack.broker.orders.get(coid)) is None or x.filled > 0):
            assert loop.time() < end, "the venue's fill never reached the broker"
            await asyncio.sleep(0.01)
