"""Several venues in one process: the Crypto.com-dialect and Binance-dialect simulated exchanges at
once, each behind its own venue unit (engine: ccxt client, feed, broker, balances, fees, lock),
over real HTTP/websockets on 127.0.0.1, with the portfolio level (tps19.engine.multivenue) above."""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal as D

import pytest
from pydantic import SecretStr
from sqlmodel import select

from tps19 import figures
from tps19.cli.backtest import venue_taker_fee
from tps19.config import SIM_DEMO_API_KEY, Settings, VenueKeys
from tps19.engine.engine import Engine
from tps19.engine.headless_venues import run_headless_venues
from tps19.engine.health import check_venues_health
from tps19.engine.multivenue import VenuePlanError, VenueSet, plan_venues
from tps19.engine.strategies.registry import create
from tps19.engine.strategies.signals import Signal, SignalEvent
from tps19.engine.storage.models import Order as OrderRecord
from tps19.engine.trading.events import FillEvent
from tps19.engine.trading.orders import OrderRequest, OrderStatus
from tps19.launch import embedded_venue_sims, start_embedded_sim

from .helpers import wait_for

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def two_venues(settings: Settings, mode: str = "paper", symbols=("BTC/USDT", "sim-binance:ETH/USDT"),
                     strategy=None):
    """Both simulated venues started the way `tps19 paper --exchange sim --exchange sim-binance`
    starts them (tps19.launch: one market, one order flow each), with one engine per venue;
    ``strategy``: (venue, Strategy) run on that venue's engine."""
    plans = plan_venues(settings, ["sim", "sim-binance"], list(symbols))
    async with embedded_venue_sims(plans) as (pointed, sims):
        venues = VenueSet({p.venue: Engine(p.settings, mode, strategy=strategy[1] if strategy and strategy[0] == p.venue
                                           else None) for p in pointed})
        try:
            yield venues, sims
        finally:
            await venues.stop()


async def _booked(engine: Engine, symbol: str) -> None:
    assert await wait_for(lambda: engine.books[symbol].best_bid() is not None, timeout=15)


def test_plan_gives_each_venue_its_symbols_and_only_its_own_keys():
    s = Settings(exchange={"id": "binance", "api_key": "bin-key", "secret": "bin-secret"},
                 venues={"cryptocom": VenueKeys(api_key="cdc-key", secret="cdc-secret")})
    plans = {p.venue: p.settings for p in plan_venues(s, ["binance", "cryptocom", "kraken"],
                                                       ["BTC/USDT", "cryptocom:eth/usdt"])}
    assert plans["binance"].symbols.watch == ["BTC/USDT"]
    assert plans["cryptocom"].symbols.watch == ["BTC/USDT", "ETH/USDT"]
    assert plans["binance"].exchange.api_key.get_secret_value() == "bin-key"
    assert plans["cryptocom"].exchange.api_key.get_secret_value() == "cdc-key"
    assert plans["kraken"].exchange.api_key is None  # another venue's keys are never sent to it
    assert plan_venues(s, ["binance"], None)[0].settings.symbols.watch == list(s.symbols.watch)
    with pytest.raises(VenuePlanError, match="'okx' is not one of the venues given"):
        plan_venues(s, ["binance", "cryptocom"], ["okx:BTC/USDT"])
    with pytest.raises(VenuePlanError, match="given twice"):
        plan_venues(s, ["binance", "BINANCE"], None)


async def test_paper_trades_both_dialects_at_once_each_at_its_own_fees(settings):
    async with two_venues(settings) as (venues, sims):
        assert await venues.start() == {}
        cdc, bn = venues.engines["sim"], venues.engines["sim-binance"]
        assert bn.venue is not None and bn.venue.client.id == "binance" and cdc.venue.client.id == "cryptocom"
        await _booked(cdc, "BTC/USDT")
        await _booked(bn, "ETH/USDT")
        a = await cdc.trading.broker.place(OrderRequest("BTC/USDT", "buy", "market", D("0.01")))
        b = await bn.trading.broker.place(OrderRequest("ETH/USDT", "buy", "market", D("0.2")))
        assert await wait_for(lambda: a.status == OrderStatus.FILLED and b.status == OrderStatus.FILLED, timeout=10)
        # each venue charges its own schedule: 0.06 % taker on the Crypto.com sim, 0.1 % on Binance's,
        # and a backtest modelled on a venue charges what that venue charged these fills
        assert float(a.fee / (a.filled * a.avg_price)) == pytest.approx(0.0006, rel=1e-4)
        assert float(b.fee / (b.filled * b.avg_price)) == pytest.approx(0.001, rel=1e-4)
        for o, venue in ((a, "sim"), (b, "sim-binance")):
            assert venue_taker_fee(venue)[0] == pytest.approx(float(o.fee / (o.filled * o.avg_price)), rel=1e-4)
        # one figure, one computation: a venue's row is its portfolio line's figures (2 dp in USDT,
        # fees at 8)
        t = venues.totals()
        lines = {v: e.trading.summary() for v, e in venues.engines.items()}
        for v, line in lines.items():
            assert {k: t["venues"][v][k] for k in ("equity", "net_pnl", "fees")} == \
                   {k: line[k] for k in ("equity", "net_pnl", "fees")}
            assert D(line["equity"]).as_tuple().exponent == -2 and D(line["fees"]).as_tuple().exponent == -8
        # each venue's terms in the reporting currency (what the desk shows per venue), each the
        # exact figure rounded once; the total is their sum, so the rows shown add up to it
        exact = {v: e.trading.portfolio.equity()[0] for v, e in venues.engines.items()}
        for v, r in t["venues"].items():
            assert r["in_report"]["equity"] == str(exact[v].quantize(D("0.01")))  # USDT: rate 1
        for k in ("equity", "net_pnl", "fees"):
            assert D(t["total"][k]) == sum(D(r["in_report"][k]) for r in t["venues"].values())
        # each venue's fee written once (8 dp), the total their sum: rounding the exact sum instead
        # differs by 1e-8 when a fee has a 5 in its 9th decimal (0.611947465: red once at load 16)
        assert t["currency"] == "USDT" and D(t["total"]["fees"]) == D(figures.fee(a.fee)) + D(figures.fee(b.fee))
        async with cdc.db.session() as s:
            rows = (await s.execute(select(OrderRecord))).scalars().all()
        assert {(r.exchange, r.symbol) for r in rows} == {("sim", "BTC/USDT"), ("sim-binance", "ETH/USDT")}
        # the total cap over both venues: room for ~100 USDT more across them, so 0.1 ETH (~300 USDT)
        # that fits Binance's own cap is refused, while a sell that reduces a position passes
        gross = sum(e.trading.broker.risk.account.gross_exposure() for e in (cdc, bn))
        venues.max_gross_exposure = gross + D(100)
        # the figures the desk's risk pane shows are the ones checked (USDT on both: rate 1)
        lim = venues.limits()
        assert (lim.gross_exposure, lim.max_gross_exposure, lim.currency) == (gross, gross + D(100), "USDT")
        over = await bn.trading.broker.place(OrderRequest("ETH/USDT", "buy", "market", D("0.1")))
        assert over.status == OrderStatus.REJECTED and "gross exposure of all venues" in over.reason
        reduce = await bn.trading.broker.place(OrderRequest("ETH/USDT", "sell", "market", D("0.1")))
        assert await wait_for(lambda: reduce.status == OrderStatus.FILLED, timeout=10)
        venues.max_gross_exposure = None
        # a per-venue kill: Binance's orders blocked, Crypto.com's go on
        assert await venues.kill("sim-binance") == {"sim-binance": 0}
        refused = await bn.trading.broker.place(OrderRequest("ETH/USDT", "buy", "market", D("0.1")))
        taken = await cdc.trading.broker.place(OrderRequest("BTC/USDT", "sell", "market", D("0.005")))
        assert refused.status == OrderStatus.REJECTED
        assert await wait_for(lambda: taken.status == OrderStatus.FILLED, timeout=10)
        await venues.kill()
        assert cdc.trading.broker.killed and bn.trading.broker.killed


async def test_live_on_both_simulated_exchanges_and_one_venue_down_leaves_the_other_trading(settings):
    async with two_venues(settings, mode="live", symbols=("BTC/USDT",)) as (venues, sims):
        assert await venues.start() == {}
        cdc, bn = venues.engines["sim"], venues.engines["sim-binance"]
        await _booked(cdc, "BTC/USDT")
        await _booked(bn, "BTC/USDT")
        bid = D(str(bn.books["BTC/USDT"].best_bid()[0]))
        rest = await bn.trading.broker.place(OrderRequest("BTC/USDT", "buy", "limit", D("0.001"), (bid * D("0.9")).quantize(D("0.01"))))
        assert await wait_for(lambda: rest.status == OrderStatus.OPEN, timeout=10)
        assert [o["orderId"] for o in sims["sim-binance"].open_orders(SIM_DEMO_API_KEY)] == [int(rest.venue_order_id)]
        # the Binance venue goes dark: every REST call fails, every websocket drops, no market data
        sims["sim-binance"].faults.fail_next_requests(1_000_000, 503)
        sims["sim-binance"].faults.stop_stream("")
        sims["sim-binance"].faults.drop_connections()
        bn_msgs = bn.feed.stats.get("book", "BTC/USDT")
        before = cdc.feed.stats.get("book", "BTC/USDT").messages
        o = await cdc.trading.broker.place(OrderRequest("BTC/USDT", "buy", "market", D("0.002")))
        assert await wait_for(lambda: o.status == OrderStatus.FILLED, timeout=10)
        assert D(str(sims["sim"].account_balances(SIM_DEMO_API_KEY)["BTC"]["total"])) > D("1")
        assert await wait_for(lambda: cdc.feed.stats.get("book", "BTC/USDT").messages > before + 20, timeout=10)
        failed = await bn.trading.broker.place(OrderRequest("BTC/USDT", "sell", "market", D("0.001")))
        assert failed.status in (OrderStatus.REJECTED, OrderStatus.UNKNOWN)  # reported, not raised
        # the drop is seen by the feed (awaited: under load it may come after the fill above)
        assert await wait_for(lambda: bn_msgs.state.value != "connected" or bn_msgs.errors + bn_msgs.reconnects > 0,
                              timeout=30)
        sims["sim-binance"].faults.clear()  # back: the Binance unit recovers on its own
        assert await wait_for(lambda: bn.feed.stats.get("book", "BTC/USDT").state.value == "connected"
                              and bn.books["BTC/USDT"].best_bid() is not None, timeout=20)


async def test_a_strategy_trades_its_venue_live_while_the_other_venue_is_dark(settings):
    """`tps19 live --exchange sim --exchange sim-binance --strategy sim-binance:sma_cross`: the
    strategy runs on the Binance venue only; the Crypto.com venue goes dark and the strategy's
    target still becomes a real order on the Binance venue, at its fee."""
    strategy = create("sma_cross", ["fast=3", "slow=8"])
    async with two_venues(settings, mode="live", symbols=("BTC/USDT",), strategy=("sim-binance", strategy)) \
            as (venues, sims):
        signals: dict[str, list[SignalEvent]] = {"sim": [], "sim-binance": []}
        for v, e in venues.engines.items():
            e.bus.on(SignalEvent, signals[v].append)
        assert await venues.start() == {}
        cdc, bn = venues.engines["sim"], venues.engines["sim-binance"]
        assert cdc.runner is None and bn.runner is not None and bn.executor is not None
        assert signals["sim"] == [] and {s.symbol for s in signals["sim-binance"]} == {"BTC/USDT"}  # its warm-up
        await _booked(cdc, "BTC/USDT")
        await _booked(bn, "BTC/USDT")
        # the Crypto.com venue goes dark: every REST call fails, every websocket drops, no data
        sims["sim"].faults.fail_next_requests(1_000_000, 503)
        sims["sim"].faults.stop_stream("")
        sims["sim"].faults.drop_connections()
        st = cdc.feed.stats.get("book", "BTC/USDT")
        assert await wait_for(lambda: st.state.value != "connected" or st.errors + st.reconnects > 0, timeout=30)
        refused = await cdc.trading.broker.place(OrderRequest("BTC/USDT", "buy", "market", D("0.001")))
        assert refused.status in (OrderStatus.REJECTED, OrderStatus.UNKNOWN)  # reported, not raised
        btc0 = D(str(sims["sim-binance"].account_balances(SIM_DEMO_API_KEY)["BTC"]["total"]))
        fills: list[FillEvent] = []
        bn.bus.on(FillEvent, fills.append)
        await bn.executor.submit_target("BTC/USDT", 0.5, Signal(direction=1, strength=1.0, reason="test", target=0.5))
        assert await wait_for(lambda: bool(fills), timeout=15)
        order = await bn.trading.store.order(fills[0].client_order_id)
        assert await wait_for(lambda: bn.trading.broker.orders.get(order.client_order_id, order).status
                              == OrderStatus.FILLED, timeout=15)
        order = await bn.trading.store.order(fills[0].client_order_id)
        assert order.exchange == "sim-binance" and order.side.value == "buy" and order.venue_order_id
        assert float(order.fee / (order.filled * order.avg_price)) == pytest.approx(0.001, rel=1e-4)
        # the Binance venue's own account moved by what was booked (Binance takes a buy's fee in the
        # base currency): a real order on that venue, not a paper fill
        btc1 = D(str(sims["sim-binance"].account_balances(SIM_DEMO_API_KEY)["BTC"]["total"]))
        assert sum(f.amount for f in fills) == order.filled
        assert btc1 - btc0 == order.filled - sum(f.fee for f in fills if f.fee_currency == "BTC")
        sims["sim"].faults.clear()


async def test_a_venue_that_cannot_start_is_reported_and_the_others_run(settings):
    plans = plan_venues(settings, ["sim", "sim-binance"], ["BTC/USDT"])
    s_ok, sim_ok = await start_embedded_sim(plans[0].settings)
    s_bn, sim_bn = await start_embedded_sim(plans[1].settings)
    wrong = s_bn.model_copy(update={"exchange": s_bn.exchange.model_copy(
        update={"api_key": SecretStr("not-a-key"), "secret": SecretStr("nope")})})  # the venue refuses them
    venues = VenueSet({"sim": Engine(s_ok, "paper"), "sim-binance": Engine(wrong, "paper")})
    try:
        failed = await venues.start()
        assert list(failed) == ["sim-binance"] and "rejected the API credentials" in failed["sim-binance"]
        assert "not-a-key" not in failed["sim-binance"] and "nope" not in failed["sim-binance"]
        assert list(venues.running) == ["sim"]
        await _booked(venues.engines["sim"], "BTC/USDT")
        t = venues.totals()
        assert t["venues"]["sim-binance"]["state"] == "down" and t["not_in_total"] == ["sim-binance"]
        assert D(t["total"]["equity"]) == D(t["venues"]["sim"]["equity"])
        # /healthz over the venues: unhealthy while one is down, the reason naming it
        health = await check_venues_health(venues)
        assert not health.ok and any(r.startswith("sim-binance: did not start: ") for r in health.reasons)
        assert not any(r.startswith("sim:") and "did not start" in r for r in health.reasons)
        assert await venues.kill() == {"sim": 0}  # the kill reaches every venue that runs
    finally:
        await venues.stop()
        await sim_ok.stop()
        await sim_bn.stop()


async def test_headless_lines_name_the_venue_and_add_up_the_venues(settings, tmp_path):
    log = tmp_path / "run.jsonl"
    async with two_venues(settings) as (venues, sims):
        stop = asyncio.Event()
        run = asyncio.create_task(run_headless_venues(venues, log, stop))

        def lines() -> list[dict]:
            return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

        assert await wait_for(lambda: sum(1 for x in lines() if x["event"] == "venues") >= 2, timeout=20)
        stop.set()
        assert await run == 0
    got = lines()
    # every line that belongs to a venue names it; only the run's own lines do not
    assert {x["event"] for x in got if "venue" not in x} == {"starting", "venues", "cross_venue", "summary", "stopped"}
    assert all(x["venue"] in ("sim", "sim-binance") for x in got if "venue" in x)
    assert {x["venue"] for x in got if x["event"] == "market"} == {"sim", "sim-binance"}
    i = max(n for n, x in enumerate(got) if x["event"] == "venues")
    total = got[i]
    assert set(total["venues"]) == {"sim", "sim-binance"} and total["currency"] == "USDT"
    # one figure, one computation: each venue's equity on the venues line is the one its portfolio
    # line of the same interval shows (both 2 dp); the total adds up the venues' terms as shown
    portfolio = {x["venue"]: x for x in got[:i] if x["event"] == "portfolio"}
    for v, row in total["venues"].items():
        assert (row["equity"], row["net_pnl"], row["fees"]) == (portfolio[v]["equity"], portfolio[v]["net_pnl"],
                                                                portfolio[v]["fees"])
        assert D(row["equity"]).as_tuple().exponent == -2 and row["in_report"]["equity"] == row["equity"]  # rate 1
    assert D(total["total"]["equity"]) == sum(D(r["in_report"]["equity"]) for r in total["venues"].values())
    assert D(total["total"]["equity"]).as_tuple().exponent == -2
    # the limits over all venues, as the desk's risk pane shows them (VenueSet.limits): every venue
    # holds BTC, ETH and SOL besides USDT, so their gross exposure is most of the total equity
    lim = total["limits"]
    assert (lim["max_gross_exposure"], lim["daily_loss_limit"]) == ("500000", "1000")
    assert 0 < D(lim["gross_exposure"]) < D(total["total"]["equity"]) and D(lim["gross_exposure"]).as_tuple().exponent == -2
    assert D(lim["pnl_today"]).as_tuple().exponent == -2
    # the closing summary: each venue's own line, and the total over them in the reporting currency
    own = {x["venue"]: x for x in got if x["event"] == "summary" and "venue" in x}
    [summary] = [x for x in got if x["event"] == "summary" and "venue" not in x]
    assert set(own) == set(summary["venues"]) == {"sim", "sim-binance"} and summary["currency"] == "USDT"
    for v, part in summary["venues"].items():
        assert {k: part[k] for k in ("fills", "fees", "realized_pnl", "equity_end")} == \
               {k: own[v][k] for k in ("fills", "fees", "realized_pnl", "equity_end")}
    assert D(summary["total"]["equity_end"]) == sum(D(own[v]["equity_end"]) for v in own)  # USDT: rate 1
    assert summary["fills"] == 0
    # the several-venue desk prints, once it closes (its venues stopped, as here), what the run did
    # per venue and in total (the one-venue desk printed its session; two venues printed nothing)
    after = venues.session_summary()
    printed = venues.session_lines("paper")
    for v in ("sim", "sim-binance"):
        part = after["venues"][v]
        assert part["fees"] == own[v]["fees"]
        i = printed.index(f"{v} (paper): 0 fill(s), fees {part['fees']} USDT (quote value)")
        assert printed[i + 2] == f"  equity {D(part['equity_start']):,f} -> {D(part['equity_end']):,f} USDT"
    t = after["total"]
    i = printed.index(f"all venues (paper): 0 fill(s), fees {t['fees']} USDT (quote value)")
    assert printed[i + 1] == (f"  realised P&L {D(t['realized_pnl']):,f} USDT, "
                              f"unrealised P&L {D(t['unrealized_pnl']):,f} USDT")
    assert printed[i + 2] == f"  equity {D(t['equity_start']):,f} -> {D(t['equity_end']):,f} USDT"
    assert got[-1]["event"] == "stopped" and got[-1]["venues"] == {"sim": "stopped", "sim-binance": "stopped"}
    assert "tps19-demo-secret" not in log.read_text()
    cross = [x for x in got if x["event"] == "cross_venue"][-1]["symbols"]
    assert list(cross) == ["BTC/USDT"]  # the one symbol both venues list in this run
    q = cross["BTC/USDT"]["quotes"]
    assert (q["sim"]["taker"], q["sim-binance"]["taker"]) == ("0.0006", "0.001")
    bid, ask = D(q["sim-binance"]["bid"]), D(q["sim"]["ask"])
    mid = (D(q["sim"]["bid"]) + ask + bid + D(q["sim-binance"]["ask"])) / 4
    edge = (bid * (1 - D("0.001")) - ask * (1 + D("0.0006"))) / mid * 10_000
    assert D(cross["BTC/USDT"]["edge_bp_after_fees"]["buy sim sell sim-binance"]) == edge.quantize(D("0.01"))
    # one instrument, one market: the two simulated venues quote it a few bp apart (two unrelated
    # markets showed a 1,256 bp "edge"), so after both taker fees (16 bp) neither way pays
    mids = {v: (D(x["bid"]) + D(x["ask"])) / 2 for v, x in q.items()}
    assert abs(mids["sim"] - mids["sim-binance"]) / mid * 10_000 < 25, mids
    assert all(D(e) < 0 for e in cross["BTC/USDT"]["edge_bp_after_fees"].values())


def test_the_cli_says_which_venue_a_strategy_trades_and_what_several_venues_refuse(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tps19.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    two = ["paper", "--exchange", "sim", "--exchange", "sim-binance", "--no-ui"]
    r = runner.invoke(app, [*two, "--strategy", "sma_cross"])
    assert r.exit_code == 2 and "with several venues a strategy names the venue it trades" in r.output
    assert "--strategy sim-binance:sma_cross" in r.output
    r = runner.invoke(app, [*two, "--strategy", "okx:sma_cross"])
    assert r.exit_code == 2 and "'okx' is not one of the venues given" in r.output
    r = runner.invoke(app, [*two, "--sizing", "fixed"])
    assert r.exit_code == 2 and "apply to a strategy: add --strategy VENUE:NAME" in r.output
    r = runner.invoke(app, [*two, "--cost-basis", "BTC=60000"])
    assert r.exit_code == 2 and "--cost-basis is refused with several venues: a cost basis belongs to one account" \
        in " ".join(r.output.split())
    r = runner.invoke(app, [*two, "--symbol", "okx:BTC/USDT"])
    assert r.exit_code == 2 and "'okx' is not one of the venues given" in r.output
    r = runner.invoke(app, ["paper", "--exchange", "sim", "--no-ui", "--strategy", "sim-binance:sma_cross"])
    assert r.exit_code == 2 and "'sim-binance' is not one of the venues given (sim)" in r.output


def test_a_venue_line_keeps_an_issues_own_venue_figure(tmp_path):
    from tps19.engine.headless_venues import VenueLines
    from tps19.engine.jsonlog import JsonLines

    out = JsonLines(tmp_path / "l.jsonl", secrets=[])
    lines = VenueLines(out, "sim-binance")
    lines.write("issue", kind="balance_difference", currency="BTC", booked="1", venue="1.5")
    lines.write("log", level="info", message="venue connected", venue="sim-binance@127.0.0.1:1")
    out.close()
    issue, log = (json.loads(x) for x in (tmp_path / "l.jsonl").read_text().splitlines())
    assert (issue["venue"], issue["venue_amount"], issue["booked"]) == ("sim-binance", "1.5", "1")
    assert (log["venue"], log["venue_name"]) == ("sim-binance", "sim-binance@127.0.0.1:1")
