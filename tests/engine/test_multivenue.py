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

from tps19.config import SIM_DEMO_API_KEY, Settings, VenueKeys
from tps19.engine.engine import Engine
from tps19.engine.headless_venues import run_headless_venues
from tps19.engine.multivenue import VenuePlanError, VenueSet, plan_venues
from tps19.engine.storage.models import Order as OrderRecord
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
        # each venue charges its own schedule: 0.06 % taker on the Crypto.com sim, 0.1 % on Binance's
        assert float(a.fee / (a.filled * a.avg_price)) == pytest.approx(0.0006, rel=1e-4)
        assert float(b.fee / (b.filled * b.avg_price)) == pytest.approx(0.001, rel=1e-4)
        t = venues.totals()
        eq = {v: D(r["equity"]) for v, r in t["venues"].items()}
        assert D(t["total"]["equity"]) == eq["sim"] + eq["sim-binance"] and t["currency"] == "USDT"
        assert D(t["total"]["fees"]) > 0
        # each venue's terms of the total, in the reporting currency (what the desk shows per venue)
        for k in ("equity", "net_pnl", "fees"):
            assert D(t["total"][k]) == sum(D(r["in_report"][k]) for r in t["venues"].values())
        async with cdc.db.session() as s:
            rows = (await s.execute(select(OrderRecord))).scalars().all()
        assert {(r.exchange, r.symbol) for r in rows} == {("sim", "BTC/USDT"), ("sim-binance", "ETH/USDT")}
        # the total cap over both venues: room for ~100 USDT more across them, so 0.1 ETH (~300 USDT)
        # that fits Binance's own cap is refused, while a sell that reduces a position passes
        gross = sum(e.trading.broker.risk.account.gross_exposure() for e in (cdc, bn))
        venues.max_gross_exposure = gross + D(100)
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
        assert bn_msgs.state.value != "connected" or bn_msgs.errors + bn_msgs.reconnects > 0
        sims["sim-binance"].faults.clear()  # back: the Binance unit recovers on its own
        assert await wait_for(lambda: bn.feed.stats.get("book", "BTC/USDT").state.value == "connected"
                              and bn.books["BTC/USDT"].best_bid() is not None, timeout=20)


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
    per_venue = [x for x in got if x["event"] not in ("starting", "venues", "cross_venue", "stopped")]
    assert per_venue and all(x["venue"] in ("sim", "sim-binance") for x in per_venue)
    assert {x["venue"] for x in got if x["event"] == "market"} == {"sim", "sim-binance"}
    total = [x for x in got if x["event"] == "venues"][-1]
    assert set(total["venues"]) == {"sim", "sim-binance"} and total["currency"] == "USDT"
    assert D(total["total"]["equity"]) == sum(D(r["equity"]) for r in total["venues"].values())
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


def test_the_cli_says_what_several_venues_do_not_support_yet(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tps19.cli import app

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["paper", "--exchange", "sim", "--exchange", "sim-binance", "--strategy", "sma"])
    assert r.exit_code == 2 and "--strategy with several venues is not built yet" in r.output
    r = runner.invoke(app, ["paper", "--exchange", "sim", "--exchange", "sim-binance", "--no-ui", "--symbol", "okx:BTC/USDT"])
    assert r.exit_code == 2 and "'okx' is not one of the venues given" in r.output


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
