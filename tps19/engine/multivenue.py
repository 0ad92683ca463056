"""Several venues at once: one venue unit per venue, a portfolio level above them.

Each venue runs in its own :class:`~tps19.engine.engine.Engine` — its ccxt client (and with it
its rate limiter), market feed, broker, balances, fees, venue-level risk stage, database lock
(keyed by venue) and reconciliation — so a venue that fails to start, drops its connections or
answers errors never stops another. :class:`VenueSet` is the level above: it starts and stops
them, kills one venue or every venue, and adds equity and P&L up in one reporting currency.

    plans = plan_venues(settings, ["sim", "sim-binance"], ["BTC/USDT", "sim-binance:ETH/USDT"])
    venues = VenueSet({p.venue: Engine(p.settings, "paper") for p in plans}, report_currency="USDT")
    failed = await venues.start()      # venue -> error line, for those that did not start
    venues.totals()                    # per venue and total, in the reporting currency
    await venues.kill()                # every venue; venues.kill("sim") for one
    await venues.stop()
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..config import ExchangeSettings, Settings, is_sim, venue_env_id

if TYPE_CHECKING:
    from .engine import Engine


class VenuePlanError(ValueError):
    """Venues or symbols given that cannot run together (worded for the trader)."""


@dataclass(frozen=True)
class VenuePlan:
    venue: str  # the exchange id: "sim", "sim-binance" or a ccxt id
    settings: Settings  # this venue's settings: its exchange (id, keys) and its symbols


def split_symbol(text: str, venues: list[str], flag: str = "--symbol") -> tuple[str | None, str]:
    """``VENUE:S`` -> (venue, S); ``S`` -> (None, S). A prefix that names no given venue is an error
    (``flag`` names the option in it: ``--strategy VENUE:NAME`` reads the same way)."""
    head, sep, tail = text.partition(":")
    if not sep:
        return None, text
    venue = head.strip().lower()
    if venue not in venues:
        raise VenuePlanError(f"{flag} {text}: {head!r} is not one of the venues given ({', '.join(venues)})")
    return venue, tail.strip()


def strategy_venue(text: str, venues: list[str]) -> tuple[str, str]:
    """``--strategy VENUE:NAME`` -> (venue, name). A strategy trades one venue (every symbol watched
    there): with one venue the prefix may be left out; with several it must name one."""
    venue, name = split_symbol(text, venues, "--strategy")
    if venue is None:
        if len(venues) > 1:
            raise VenuePlanError(f"--strategy {text}: with several venues a strategy names the venue it trades, "
                                 f"e.g. --strategy {venues[-1]}:{text} (it trades every symbol watched there)")
        venue = venues[0]
    if not name:
        raise VenuePlanError(f"--strategy {text}: no strategy name after the venue")
    return venue, name


def plan_venues(settings: Settings, exchanges: list[str], symbols: list[str] | None) -> list[VenuePlan]:
    """Each venue's settings. ``symbols``: plain ones go to every venue, ``VENUE:S`` to that one;
    none given: the configured watch list on every venue. Keys: TPS19_VENUES__<ID>__*, else the
    configured exchange's keys for the configured exchange only (a venue's keys are never sent to
    another venue), else none (a simulated venue then uses its demo keys)."""
    venues = []
    for e in exchanges:
        v = e.strip().lower()
        if not v:
            raise VenuePlanError("--exchange must not be empty")
        if v in venues:
            raise VenuePlanError(f"--exchange {v} given twice")
        venues.append(v)
    per: dict[str, list[str]] = {v: [] for v in venues}
    for text in symbols or []:
        venue, sym = split_symbol(text, venues)
        for v in ([venue] if venue else venues):
            if sym.upper() not in per[v]:
                per[v].append(sym.upper())
    plans = []
    for v in venues:
        keys = settings.venues.get(venue_env_id(v))
        ex = settings.exchange
        if keys is not None:
            exchange = ExchangeSettings(id=v, api_key=keys.api_key, secret=keys.secret, password=keys.password,
                                        sandbox=ex.sandbox, timeout_ms=ex.timeout_ms)
        elif v == ex.id:
            exchange = ex.model_copy()
        else:
            exchange = ExchangeSettings(id=v, sandbox=ex.sandbox, timeout_ms=ex.timeout_ms)
        watch = per[v] or list(settings.symbols.watch)
        if not watch:
            raise VenuePlanError(f"no symbol for venue {v}")
        symbols_settings = settings.symbols.model_copy(update={"watch": watch})
        plans.append(VenuePlan(v, settings.model_copy(update={"exchange": exchange, "symbols": symbols_settings})))
    return plans


def sim_seed(settings: Settings, index: int) -> int:
    """Each embedded simulated venue gets its own seed: two sims are two different markets."""
    return settings.sim.seed + 1000 * index


@dataclass(frozen=True)
class TotalLimits:
    """The limits over every venue and the venues' figures against them (``VenueSet.limits``),
    in the reporting currency; ``unavailable``: why the figures cannot be computed."""

    currency: str
    max_gross_exposure: Decimal | None
    daily_loss_limit: Decimal | None
    gross_exposure: Decimal | None = None
    pnl_today: Decimal | None = None  # the venues that have one (``pnl_unknown``: those without)
    pnl_unknown: tuple[str, ...] = ()
    unavailable: str | None = None


class VenueSet:
    """The portfolio level over one engine per venue."""

    def __init__(self, engines: dict[str, Engine], report_currency: str | None = None,
                 max_gross_exposure: Decimal | None = None, daily_loss_limit: Decimal | None = None) -> None:
        self.engines = engines
        report = next(iter(engines.values())).settings.report if engines else None
        self.report_currency = report_currency or (report.currency if report else "USDT")
        self.max_gross_exposure = max_gross_exposure if max_gross_exposure is not None else (
            report.max_gross_exposure if report else None)
        self.daily_loss_limit = daily_loss_limit if daily_loss_limit is not None else (
            report.daily_loss_limit if report else None)
        self.failed: dict[str, str] = {}  # venue -> why it is not running
        self._starts: dict[str, asyncio.Task[None]] = {}

    @property
    def running(self) -> dict[str, Engine]:
        return {v: e for v, e in self.engines.items() if v not in self.failed and e.started_at is not None}

    async def start(self) -> dict[str, str]:
        """Start every venue at once; one that fails is reported and stays down, the others run."""
        from .engine import EngineError

        await self._prepare_database()
        self._starts = {v: asyncio.create_task(e.start(), name=f"engine-start:{v}") for v, e in self.engines.items()}
        await asyncio.wait(self._starts.values())
        for v, t in self._starts.items():
            err = t.exception() if not t.cancelled() else asyncio.CancelledError()
            if err is not None:
                self.failed[v] = str(err) if isinstance(err, EngineError) else f"{type(err).__name__}: {err}"
        for v, e in self.running.items():
            if e.trading is not None:
                e.trading.broker.risk.total = partial(self._total_check, v)
        return dict(self.failed)

    def limits(self, venue: str | None = None, added: Decimal = Decimal(0), *,
               marked: Mapping[str, Any] | None = None, peek: bool = False) -> TotalLimits:
        """Where the venues stand against the limits over all of them (reporting currency): their
        gross exposure, with ``added`` on ``venue`` (an order's, valued in that venue's currency),
        and their P&L today, each venue's own figure at its rate. Order entry enforces these
        (``_total_check``); the desk's risk pane shows them. ``marked``: per venue, the
        PortfolioUpdate a reader shows: its gross exposure and P&L today are that update's (the
        balance values on screen add up to it; reading the risk engine's P&L at draw time could
        also fix the day's start before every mark is known). ``peek``: a reader's look, not an
        order's check: a venue whose marks are not all known yet has no P&L today (the call would
        fix its day's start early, as it does for an order)."""
        rep = self.report_currency
        gross = Decimal(0)
        pnl = Decimal(0)
        unknown = []
        for name, e in self.running.items():
            if e.trading is None:
                continue
            risk = e.trading.broker.risk
            rate, how = self._rate(e, getattr(e.trading.portfolio, "valuation", rep))
            if rate is None:
                return TotalLimits(rep, self.max_gross_exposure, self.daily_loss_limit,
                                   unavailable=f"{name}'s holdings have no value in {rep} ({how})")
            shown = (marked or {}).get(name)
            if shown is not None and shown.gross_exposure is not None:
                gross += shown.gross_exposure * rate
            elif risk.account is not None:
                gross += risk.account.gross_exposure() * rate
            pub = e.trading.portfolio.publisher
            if shown is not None:
                today = shown.pnl_today
            elif peek and (pub is None or not pub.marks_complete()):
                today = None
            else:
                today = risk.pnl_today()
            if today is not None:
                pnl += today * rate
            else:
                unknown.append(name)
            if name == venue:
                gross += added * rate
        return TotalLimits(rep, self.max_gross_exposure, self.daily_loss_limit, gross_exposure=gross,
                           pnl_today=pnl, pnl_unknown=tuple(unknown))

    def _total_check(self, venue: str, v: Any, added: Decimal) -> str | None:
        """The limits over every venue, for an order adding ``added`` exposure on ``venue``
        (valued in that venue's currency): refused when the venues' gross exposure with it, or
        their P&L today, is beyond the total limits (reporting currency)."""
        lim = self.limits(venue, added)
        rep, gross, pnl = lim.currency, lim.gross_exposure, lim.pnl_today
        if lim.unavailable is not None or gross is None or pnl is None:
            return f"total limits cannot be checked: {lim.unavailable}"
        if self.daily_loss_limit is not None and pnl <= -self.daily_loss_limit:
            return (f"daily loss limit of all venues reached (P&L today {pnl:.2f} {rep} <= -{self.daily_loss_limit}); "
                    "only orders that reduce a position are allowed")
        if self.max_gross_exposure is not None and gross > self.max_gross_exposure:
            return (f"gross exposure of all venues after this order would be {gross:.2f} {rep} > the total cap "
                    f"{self.max_gross_exposure}")
        return None

    async def _prepare_database(self) -> None:
        """The venues share one database: its tables are created once, before the engines open it
        at the same time (two concurrent creations race: 'table bars already exists')."""
        from .storage import Database

        targets = {str(e.settings.database.target): e.settings.database.target for e in self.engines.values()}
        for target in targets.values():
            db = Database(target)
            try:
                await db.open(probe_write=True)
            except Exception:  # each engine's own open reports it, per venue
                pass
            finally:
                await db.close()

    async def stop(self) -> None:
        for t in self._starts.values():
            if not t.done():
                t.cancel()
        if self._starts:
            await asyncio.wait(self._starts.values())
        for e in self.engines.values():
            await e.stop()

    async def kill(self, venue: str | None = None, reason: str = "kill switch") -> dict[str, int]:
        """Cancel every order and block new ones on ``venue`` (None: every venue). Returns the
        orders canceled per venue; a venue not running is skipped."""
        out = {}
        for v, e in self.running.items():
            if venue is not None and v != venue:
                continue
            if e.trading is not None:
                out[v] = await e.trading.broker.kill(f"{reason} ({'all venues' if venue is None else v})")
        if venue is not None and venue not in self.engines:
            raise KeyError(f"unknown venue {venue!r} (venues: {', '.join(self.engines)})")
        return out

    def release(self, venue: str | None = None) -> None:
        for v, e in self.running.items():
            if (venue is None or v == venue) and e.trading is not None:
                e.trading.broker.release()

    def _rate(self, engine: Engine, ccy: str) -> tuple[Decimal | None, str]:
        """Value of one unit of ``ccy`` in the reporting currency, and how it was found."""
        rep = self.report_currency
        if ccy == rep:
            return Decimal(1), "same currency"
        for sym, invert in ((f"{ccy}/{rep}", False), (f"{rep}/{ccy}", True)):
            book = engine.books.get(sym)
            if book is None:
                continue
            bb, ba = book.best_bid(), book.best_ask()
            if bb and ba:
                mid = (Decimal(str(bb[0])) + Decimal(str(ba[0]))) / 2
                return (Decimal(1) / mid if invert else mid), f"mid of {sym} on this venue"
        return None, f"no {ccy}/{rep} market on this venue"

    def totals(self, marked: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Equity and P&L per venue (each in its valuation currency, as that venue's ``portfolio``
        line writes them, and under ``in_report`` in the reporting currency with the conversion
        stated) and in total (reporting currency). Every figure is written by tps19/figures.py: a
        venue's term in the reporting currency is rounded once, and the total is the sum of those
        terms, so the rows shown add up to the total shown. The desk shows these very figures (it
        never converts or adds money itself): its panes read these keys
        (tps19/desk/widgets/panes.py, checked by tests/ui/test_desk_venues.py).

        ``marked``: per venue, the PortfolioUpdate whose balances and positions a reader shows
        beside these totals. That venue's equity and P&L are then taken from it rather than from
        the portfolio as marked this instant: marks move on every book, updates are published at
        most every ``marks.INTERVAL_S``, and an equity row read live under balance rows from the
        last update disagreed with their sum by however far the market had moved (the desk)."""
        from ..figures import fee, money

        rep = self.report_currency
        rows: dict[str, Any] = {}
        total = {k: Decimal(0) for k in ("equity", "realized_pnl", "unrealized_pnl", "fees", "net_pnl")}
        left_out = []
        for v, e in self.engines.items():
            if v in self.failed or e.trading is None:
                rows[v] = {"state": "down", "reason": self.failed.get(v, "not started")}
                left_out.append(v)
                continue
            p = e.trading.portfolio
            shown = (marked or {}).get(v)
            if shown is not None:
                eq, unpriced = shown.equity, list(shown.unpriced)
                t = {k: getattr(shown, k) for k in ("realized_pnl", "unrealized_pnl", "fees", "net_pnl")}
            else:
                eq, unpriced = p.equity()
                t = p.totals()
            ccy = getattr(p, "valuation", "USDT")
            rate, how = self._rate(e, ccy)
            row: dict[str, Any] = {"state": "up", "currency": ccy, "equity": money(eq, ccy),
                                   **{k: fee(val) if k == "fees" else money(val, ccy) for k, val in t.items()},
                                   "killed": e.trading.broker.killed, "open_orders": len(e.trading.broker.open_orders())}
            if unpriced:
                row["unpriced"] = unpriced
            row["conversion"] = how
            if rate is None:
                left_out.append(v)
            else:
                row["rate"] = _rate_text(rate)
                # this venue's figures in the reporting currency, each rounded once: the terms the
                # total adds up
                row["in_report"] = {"equity": money(eq * rate, rep)}
                for k in ("realized_pnl", "unrealized_pnl", "fees", "net_pnl"):
                    row["in_report"][k] = fee(t[k] * rate) if k == "fees" else money(t[k] * rate, rep)
                for k, text in row["in_report"].items():
                    total[k] += Decimal(text)
            rows[v] = row
        out: dict[str, Any] = {"currency": rep, "venues": rows,
                               "total": {k: fee(val) if k == "fees" else money(val, rep) for k, val in total.items()}}
        if left_out:
            out["not_in_total"] = left_out
        # where the venues stand against the limits over all of them (what the desk's risk pane
        # shows, what order entry checks), as of the same updates when marked
        lim = self.limits(marked=marked, peek=True)
        out["limits"] = {"unavailable": lim.unavailable} if lim.unavailable is not None else {
            "pnl_today": None if lim.pnl_unknown or lim.pnl_today is None else money(lim.pnl_today, rep),
            "daily_loss_limit": None if lim.daily_loss_limit is None else str(lim.daily_loss_limit),
            "gross_exposure": None if lim.gross_exposure is None else money(lim.gross_exposure, rep),
            "max_gross_exposure": None if lim.max_gross_exposure is None else str(lim.max_gross_exposure)}
        return out

    def session_lines(self, mode: str) -> list[str]:
        """What the run did on each venue and over all of them, for a person: printed when the
        several-venue desk closes (the one-venue desk prints its session's lines), from the
        figures of the closing ``summary`` line."""
        from .trading.session import summary_lines

        s = self.session_summary()
        out: list[str] = []
        for v, part in s["venues"].items():
            if "state" in part:
                out.append(f"{v}: {part['state']} ({part['reason']})")
            else:
                out += summary_lines(f"{v} ({part['mode']})", part)
        out += summary_lines(f"all venues ({mode})", {"fills": s["fills"], "currency": s["currency"], **s["total"]})
        if s.get("not_in_total"):
            out.append(f"  not in the total: {', '.join(s['not_in_total'])}")
        return out

    def session_summary(self) -> dict[str, Any]:
        """What this run did on every venue (each venue's own ``summary`` figures in its currency,
        and under ``in_report`` in the reporting currency, each rounded once) and in total in the
        reporting currency (the sum of those terms): the several-venue run's closing ``summary``
        line."""
        from ..figures import fee, money

        rep = self.report_currency
        parts: dict[str, Any] = {}
        keys = ("realized_pnl", "unrealized_pnl", "fees", "equity_start", "equity_end")
        total: dict[str, Decimal | None] = {k: Decimal(0) for k in keys}
        fills = 0
        left_out = []
        for v, e in self.engines.items():
            session = getattr(e.trading, "session", None) if e.trading is not None else None
            if v in self.failed or session is None:
                parts[v] = {"state": "down", "reason": self.failed.get(v, "not started")}
                left_out.append(v)
                continue
            row = dict(session.summary())
            f = session.figures()
            fills += f["fills"]
            rate, how = self._rate(e, row["currency"])
            row["conversion"] = how
            if rate is None:
                left_out.append(v)
            else:
                row["rate"] = _rate_text(rate)
                row["in_report"] = {k: None if f[k] is None else (fee(f[k] * rate) if k == "fees" else
                                                                  money(f[k] * rate, rep)) for k in keys}
                for k, text in row["in_report"].items():
                    cur = total[k]
                    total[k] = None if cur is None or text is None else cur + Decimal(text)
            parts[v] = row
        out: dict[str, Any] = {"currency": rep, "fills": fills, "venues": parts,
                               "total": {k: None if x is None else (fee(x) if k == "fees" else money(x, rep))
                                         for k, x in total.items()}}
        if left_out:
            out["not_in_total"] = left_out
        # the total's equity leaves out what each venue's equity leaves out
        if excluded := [f"{c} on {v}" for v, row in parts.items() if v not in left_out for c in row.get("excluded", ())]:
            out["total"]["excluded"] = excluded
        return out


def _rate_text(rate: Decimal) -> str:
    """A conversion rate as written: 1 as "1", a mid as it is, an inverse at 12 significant digits."""
    from decimal import localcontext

    with localcontext() as ctx:
        ctx.prec = 12
        return f"{(+rate).normalize():f}"


def _taker(engine: Engine, symbol: str) -> Decimal:
    """The taker rate this venue charges on ``symbol`` (the venue's schedule written into ccxt's
    market by trading.fees, else ccxt's own figure)."""
    m = engine.markets.get(symbol) or {}
    return Decimal(str(m.get("taker") or 0))


def consolidated(venues: VenueSet) -> dict[str, Any]:
    """One symbol across venues: best bid/ask per venue and, for every ordered pair of venues,
    the edge of buying at one's ask and selling at the other's bid after both taker fees, in
    basis points of the mid (positive: a cross-venue spread that pays its fees)."""
    out: dict[str, Any] = {}
    by_symbol: dict[str, dict[str, tuple[Decimal, Decimal, Decimal]]] = {}
    for v, e in venues.running.items():
        for sym in e.symbols:
            bb, ba = e.books[sym].best_bid(), e.books[sym].best_ask()
            if bb and ba:
                by_symbol.setdefault(sym, {})[v] = (Decimal(str(bb[0])), Decimal(str(ba[0])), _taker(e, sym))
    for sym, quotes in by_symbol.items():
        if len(quotes) < 2:
            continue
        mid = sum(((b + a) / 2 for b, a, _ in quotes.values()), Decimal(0)) / len(quotes)
        pairs = {}
        for buy, (_, ask, fee_buy) in quotes.items():
            for sell, (bid, _, fee_sell) in quotes.items():
                if buy != sell:
                    edge = (bid * (1 - fee_sell) - ask * (1 + fee_buy)) / mid * 10_000
                    pairs[f"buy {buy} sell {sell}"] = str(edge.quantize(Decimal("0.01")))
        out[sym] = {"quotes": {v: {"bid": str(b), "ask": str(a), "taker": str(f)} for v, (b, a, f) in quotes.items()},
                    "edge_bp_after_fees": pairs}
    return out


def check_live_allowed_all(plans: list[VenuePlan]) -> str | None:
    """Live on several venues: every venue must pass the single-venue check."""
    from .assembly import check_live_allowed

    for p in plans:
        reason = check_live_allowed(p.settings)
        if reason:
            return f"{p.venue}: {reason}"
    return None


__all__ = ["VenuePlan", "VenuePlanError", "VenueSet", "check_live_allowed_all", "is_sim", "plan_venues", "sim_seed",
           "split_symbol", "strategy_venue"]
