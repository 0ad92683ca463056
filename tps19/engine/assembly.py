"""Assembly: the one place a trading stack is wired together, above trading and risk.

A stack has two levels, so that several venues can later share one engine:

* a **venue unit** (:class:`VenueUnit`): one venue's order path — broker (orders, balances,
  fees, the venue-level risk stage), portfolio and store; the engine attaches the venue's
  market feed to it;
* the **portfolio level** (:class:`TradingStack`): what spans venues — the circuit breakers,
  the kill switch they pull, the risk monitor and the figures in total. Today a stack holds one
  unit and ``stack.broker`` / ``stack.portfolio`` / ``stack.store`` are that unit's.

Public API (all money is ``Decimal``)::

    stack = await build_trading(mode="paper"|"live", bus=bus, db=db, client=ccxt_pro_client,
                                markets=client.markets, settings=settings)
    await stack.start()                      # paper: load state; live: reconcile, then watch+poll
    stack.broker / stack.portfolio / stack.store   # the venue unit's parts (tps19.engine.trading)
    stack.breakers, stack.risk_metrics             # the portfolio level, once started
    stack.summary()                                # plain dict for logs
    await stack.stop()

The CLI calls :func:`check_live_allowed` before starting live mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ..config import Settings
from .trading.entry import HoldingsView
from .trading.portfolio import Portfolio
from .trading.protocol import Broker
from .trading.risk import RiskEngine
from .trading.store import TradingStore

if TYPE_CHECKING:
    from .bus import EventBus
    from .feed import MarketFeed
    from .risk.breakers import BreakerWatch
    from .risk.monitor import RiskMonitor
    from .trading.session import Session
    from .storage import Database

__all__ = ["TradingStack", "VenueUnit", "build_trading", "check_live_allowed"]


@dataclass
class VenueUnit:
    """One venue's order path: its broker (orders, balances, fees, venue-level risk stage), its
    portfolio and its store. ``feed`` is the venue's market feed once the engine attaches it (the
    broker's risk stage refuses new risk on a stale book through it)."""

    venue: str
    broker: Broker
    portfolio: Portfolio
    store: TradingStore
    feed: MarketFeed | None = None

    def attach_feed(self, feed: MarketFeed | None) -> None:
        self.feed = feed
        self.broker.risk.feed = feed


@dataclass
class TradingStack:
    """The portfolio level: the venue unit(s) below, breakers, kill switch and risk monitor above."""

    mode: str
    unit: VenueUnit
    breakers: BreakerWatch | None = None  # the circuit breakers' watch, once started
    risk_metrics: RiskMonitor | None = None  # live risk metrics, once started
    session: Session | None = None  # what this run did (the closing summary), once started
    _started: bool = field(default=False, repr=False)

    @property
    def units(self) -> list[VenueUnit]:
        return [self.unit]

    @property
    def broker(self) -> Broker:
        return self.unit.broker

    @property
    def portfolio(self) -> Portfolio:
        return self.unit.portfolio

    @property
    def store(self) -> TradingStore:
        return self.unit.store

    async def start(self) -> None:
        if self._started:
            return
        await self.broker.start()
        await self._restore_day_start()
        from .trading.session import Session

        self.session = Session(self.portfolio, self.portfolio.bus)  # after the restore: this run's figures
        self.portfolio.start()
        # numpy and the breakers' queries load with the first started stack, not with the CLI
        from .risk.breakers import BreakerWatch
        from .risk.limits import restore_limits
        from .risk.monitor import RiskMonitor

        await restore_limits(self)  # limits changed in the desk stay in force across restarts
        self.breakers = BreakerWatch(self.broker, self.portfolio, self.broker.risk.settings)  # type: ignore[arg-type]
        await self.breakers.start()
        self.risk_metrics = RiskMonitor(self.portfolio, self.portfolio.bus, breakers=self.breakers)
        self.risk_metrics.start()
        self._started = True

    def summary(self) -> dict[str, Any]:
        """Plain (JSON-friendly) figures for logs/headless output."""
        from ..figures import amount, fee, money

        eq, unpriced = self.portfolio.equity()
        t = self.portfolio.totals()
        val = self.portfolio.valuation  # equity and P&L at its precision: 2 decimals in USDT
        out: dict[str, Any] = {"mode": self.mode, "equity": money(eq, val), **{k: fee(v) if k == "fees" else money(v, val) for k, v in t.items()},
                               "open_orders": len(self.broker.open_orders()), "killed": self.broker.killed,
                               "issues": sum(self.broker.issues.values())}
        if unpriced:
            out["unpriced"] = unpriced
        if excluded := self.portfolio.excluded():
            out["excluded"] = excluded  # held, no market values them: not in equity
        pub = self.portfolio.publisher
        if pub is not None and self.portfolio.pnl_today_source is not None and pub.marks_complete():
            today = self.portfolio.pnl_today_source()  # the daily loss limit's figure (marks.py)
            if today is not None:
                out["pnl_today"] = money(today, val)
        for sym, p in self.portfolio.positions.items():
            if p.qty:
                out[f"pos {sym}"] = amount(p.qty, self.portfolio.markets.get(sym))
        return out

    async def settle(self) -> None:
        """Judge everything the feed published so far, then publish the marked portfolio: the
        figures a run reports at its end (a replay ends right after its last frame)."""
        settled = getattr(self.broker, "settled", None)
        if settled is not None:
            await settled()
        if self.portfolio.publisher is not None:
            self.portfolio.publisher.publish_changes()

    async def _restore_day_start(self) -> None:
        """The daily loss limit counts from the day's first snapshot, so a restart does not reset it."""
        db = self.portfolio.db
        if db is None:
            return
        from sqlmodel import col, select

        from .storage.models import PortfolioSnapshot
        from .trading.risk import utc_day_start_ms

        from .trading.history import valued

        q = (select(PortfolioSnapshot)
             .where(PortfolioSnapshot.mode == self.mode, PortfolioSnapshot.ts >= utc_day_start_ms())
             .order_by(col(PortfolioSnapshot.ts)))
        async with db.session() as s:
            first = next((r for r in (await s.execute(q)).scalars() if valued(r)), None)
        if first is not None:
            self.broker.risk.set_day_start(first.realized_pnl + first.unrealized_pnl - first.fees)
            self.portfolio.day_start_ts = first.ts

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self.breakers is not None:
            await self.breakers.stop()
        if self.risk_metrics is not None:
            await self.risk_metrics.stop()
        await self.portfolio.stop()
        await self.broker.stop()
        try:
            await self.portfolio.snapshot()
        except Exception:  # a final snapshot is best effort
            pass


async def build_trading(*, mode: str, bus: EventBus | None, db: Database, client: Any,
                        markets: dict[str, dict[str, Any]], settings: Settings,
                        exchange: str | None = None, starting_balances: dict[str, Decimal] | None = None,
                        latency_s: float = 0.0, snapshot_interval_s: float = 60.0, valuation: str = "USDT",
                        **live_options: Any) -> TradingStack:
    """Build the trading stack for ``mode`` "paper" or "live".

    * ``client``: the ccxt.pro (async) client; live mode sends orders through it, paper mode
      only reads its ``id``/``precisionMode``.
    * ``markets``: ccxt's ``client.markets`` (unified symbol -> market dict).
    * ``settings``: tps19 ``Settings`` (risk caps; paper starting balances default to
      ``settings.sim.starting_balances``).
    """
    if mode not in ("paper", "live"):
        raise ValueError(f"trading mode must be 'paper' or 'live', not {mode!r}")
    # the configured venue ("sim" vs "cryptocom") keeps simulated and real books apart even
    # though the sim is driven by ccxt's cryptocom client
    ex_id = exchange or settings.exchange.id or getattr(client, "id", None) or "sim"
    precision_mode = int(getattr(client, "precisionMode", 4) or 4)
    # Nothing awaits until the portfolio and the broker are on the bus: the engine builds trading
    # after the feed has started, and a book published during an await here would never reach
    # them (on a quiet market its symbol would stay unmarked until its next update).
    store = TradingStore(db, mode=mode, exchange=ex_id)
    portfolio = Portfolio(mode=mode, markets=markets, bus=bus, db=db, valuation=valuation,
                          snapshot_interval_s=snapshot_interval_s)
    holdings = getattr(settings, "holdings", None)
    portfolio.cost_basis = dict(holdings.cost_basis) if holdings is not None else {}
    if client is not None:
        from .trading.held_prices import HeldPrices

        portfolio.held_prices = HeldPrices(portfolio, client, settings.symbols.watch)
    view = HoldingsView(portfolio, markets)
    risk = RiskEngine(settings.risk, view, account=view)
    broker: Broker
    stops = getattr(settings, "stops", None)
    live_options.setdefault("stop_trigger", stops.trigger if stops is not None else "last")
    live_options.setdefault("stop_placement", stops.placement if stops is not None else "auto")
    if mode == "paper":
        from .trading.paper import PaperBroker

        balances = settings.sim.starting_balances if starting_balances is None else starting_balances
        broker = PaperBroker(starting_balances=balances, latency_s=latency_s, bus=bus, store=store,
                             portfolio=portfolio, markets=markets, risk=risk, exchange=ex_id,
                             precision_mode=precision_mode, stop_trigger=live_options["stop_trigger"],
                             stop_placement=live_options["stop_placement"])
        # the venue's prints for a paper stop's blind window (emulator.py); market data only
        broker.venue_client = client
    else:
        from .trading.live import LiveBroker

        broker = LiveBroker(client=client, bus=bus, store=store, portfolio=portfolio, markets=markets, risk=risk,
                            exchange=ex_id, precision_mode=precision_mode, **live_options)
        broker.scope = list(settings.symbols.watch)  # read symbol by symbol where the venue wants it
    view.attach_orders(broker.orders, held=broker.emulator.held)  # type: ignore[attr-defined]
    # paper charges, and the ticket estimates, what the venue charges (fees.py); read at fill and
    # estimate time, so filling them in after the broker is built is in time
    from .trading.fees import install_fee_schedule

    await install_fee_schedule(client, markets, maker=settings.fees.maker, taker=settings.fees.taker)
    return TradingStack(mode=mode, unit=VenueUnit(venue=ex_id, broker=broker, portfolio=portfolio, store=store))


def check_live_allowed(settings: Settings) -> str | None:
    """Why live trading must not start with these settings, or None if it may.

    Refuses without API keys (except on the simulated exchange, which then uses its demo keys),
    and refuses the simulated exchange unless the keys are the sim's demo keys (so real keys are never sent to a simulator, nor sim keys mistaken for
    a real account).
    """
    from ..config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET, is_sim

    ex = settings.exchange

    def val(s: SecretStr | None) -> str:
        return "" if s is None else s.get_secret_value()

    k, sec = val(ex.api_key).strip(), val(ex.secret).strip()
    ex_id = ex.id.lower()
    if is_sim(ex_id) and not k and not sec:
        return None  # the simulated venue's demo keys (tps19-demo-key / tps19-demo-secret) are used
    if not k or not sec:
        return "live trading needs API credentials: set TPS19_EXCHANGE__API_KEY and TPS19_EXCHANGE__SECRET"
    is_demo = k == SIM_DEMO_API_KEY and sec == SIM_DEMO_SECRET
    if is_sim(ex_id) and not is_demo:
        return f"refusing --exchange {ex_id} with non-sim API keys (use the sim's demo keys, see `tps19 exchange --help`)"
    if not is_sim(ex_id) and is_demo and not ex.rest_url:
        # (with a rest_url override the client may be pointed at a standalone `tps19 exchange`)
        return f"refusing live trading on {ex_id} with the simulated exchange's demo keys"
    return None
