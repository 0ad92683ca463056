"""`tps19 paper --no-ui --exchange sim --exchange sim-binance` as an operator runs it: a strategy on
one venue, Prometheus metrics labelled per venue, one control API over every venue (a kill per
venue and for all), a recording per venue; a real process on both simulated exchanges."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

import pytest

from .conftest import clean_env, samples, stop, tps19, wait_for

TOKEN = "t0ken-for-the-venues-api"
pytestmark = pytest.mark.slow


def http(method: str, url: str, body: dict[str, Any] | None = None, token: str | None = TOKEN) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            text = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as err:
        text, status = err.read().decode(), err.code
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def test_strategy_metrics_api_and_recording_over_two_venues(tmp_path):
    env = clean_env(TPS19_DATABASE__PATH=str(tmp_path / "v.db"), TPS19_API__TOKEN=TOKEN,
                    TPS19_LOG__SUMMARY_INTERVAL_S="0.5")
    proc = subprocess.Popen(tps19("paper", "--no-ui", "--exchange", "sim", "--exchange", "sim-binance",
                                  "--symbol", "BTC/USDT", "--strategy", "sim-binance:sma_cross", "--param", "fast=3",
                                  "--param", "slow=8", "--metrics-port", "0", "--api-port", "0",
                                  "--record", str(tmp_path / "rec"), "--log-file", str(tmp_path / "run.jsonl")),
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "run.jsonl"  # a file, not a pipe: nobody has to drain it while the test talks HTTP

    def lines() -> list[dict[str, Any]]:
        return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []

    def until(event: str, timeout: float = 90.0) -> dict[str, Any]:
        """The run's first ``event`` line, once it is written (or the run ended without one)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = [x for x in lines() if x["event"] == event]
            if found:
                return found[0]
            assert proc.poll() is None, f"the run ended before a {event!r} line: {proc.stderr.read()[-2000:]}"
            time.sleep(0.1)
        raise AssertionError(f"no {event!r} line in {timeout:g}s: {lines()[-5:]}")

    try:
        metrics = until("metrics")
        api = until("api")
        assert metrics["venues"] == api["venues"] == ["sim", "sim-binance"]
        until("venues")  # both venues started and valued
        url = api["url"]
        # the strategy runs on the venue it names, and only there
        status, st = http("GET", f"{url}/status")
        assert status == 200 and set(st["venues"]) == {"sim", "sim-binance"}
        assert all(v["started"] and v["kill_switch"]["engaged"] is False for v in st["venues"].values())
        assert (st["venues"]["sim"]["strategy"], st["venues"]["sim-binance"]["strategy"]) == (None, "sma_cross")
        # metrics: every series carries its venue
        with urllib.request.urlopen(metrics["url"], timeout=20) as r:
            m = samples(r.read().decode())
        for venue in ("sim", "sim-binance"):
            assert m[("tps19_kill_switch", (("mode", "paper"), ("venue", venue)))] == 0
            assert m[("tps19_equity", (("mode", "paper"), ("venue", venue)))] > 0
        assert all(dict(labels).get("venue") in ("sim", "sim-binance") for (_, labels) in m if labels)
        # healthy once every stream of every venue has data (a stream's first message may come late)
        health = wait_for("a healthy /healthz",
                          lambda: (lambda h: h if h[0] == 200 else None)(http("GET", metrics["health"], token=None)),
                          show=lambda: http("GET", metrics["health"], token=None))
        assert health[1] == {"status": "ok", "reasons": []}
        # one API over both: an order names its venue; a venue's own kill stops that venue only
        order = {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.001"}
        status, o = http("POST", f"{url}/orders", order)
        assert status == 422 and "name the order's venue" in o["detail"]
        status, o = http("POST", f"{url}/orders", order | {"venue": "sim-binance", "client_order_id": "api-bn-1"})
        assert status == 201 and o["venue"] == "sim-binance" and o["status"] == "filled", o
        status, k = http("POST", f"{url}/venues/sim/kill", {"reason": "venue maintenance"})
        assert status == 200 and k["kill_switch"] is True
        status, st = http("GET", f"{url}/status")
        assert st["venues"]["sim"]["kill_switch"]["engaged"] and not st["venues"]["sim-binance"]["kill_switch"]["engaged"]
        status, o = http("POST", f"{url}/venues/sim/orders", order)
        assert status == 422 and "kill switch" in o["detail"]
        status, o = http("POST", f"{url}/venues/sim-binance/orders", order)
        assert status == 201 and o["status"] == "filled"
        # DELETE /api/v1/orders/ID (the one-venue route) cancels on the venue holding the order; it
        # answered a bare 404 'Not Found' with several venues
        below = (Decimal(o["avg_price"]) * Decimal("0.97")).quantize(Decimal("0.01"))  # rests, inside the price band
        rest = {"symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": "0.001", "price": str(below),
                "venue": "sim-binance", "client_order_id": "api-bn-rest"}
        status, o = http("POST", f"{url}/orders", rest)
        assert status == 201 and o["status"] == "open", o
        status, o = http("DELETE", f"{url}/orders/api-bn-rest")
        assert status == 200 and (o["venue"], o["status"]) == ("sim-binance", "cancelled"), o
        status, o = http("DELETE", f"{url}/orders/nobody")
        assert status == 404 and "no order 'nobody' on any venue" in o["detail"], o
        # the kill over every venue, then a refusal everywhere
        status, k = http("POST", f"{url}/kill", {"reason": "leaving"})
        assert status == 200 and set(k["cancelled"]) == {"sim", "sim-binance"}
        status, st = http("GET", f"{url}/status")
        assert all(v["kill_switch"]["engaged"] for v in st["venues"].values())
        status, _ = http("GET", f"{url}/status", token="wrong-token-wrong-token")
        assert status == 401
        status, totals = http("GET", f"{url}/venues")
        assert status == 200 and set(totals["venues"]) == {"sim", "sim-binance"} and totals["currency"] == "USDT"
        # the fills reached the metrics, labelled with the venue that filled them
        with urllib.request.urlopen(metrics["url"], timeout=20) as r:
            m = samples(r.read().decode())
        assert m[("tps19_fills_total", (("side", "buy"), ("symbol", "BTC/USDT"), ("venue", "sim-binance")))] >= 2
        assert ("tps19_fills_total", (("side", "buy"), ("symbol", "BTC/USDT"), ("venue", "sim"))) not in m
        assert m[("tps19_rejections_total", (("reason", "kill_switch"), ("venue", "sim")))] == 1
    finally:
        code = stop(proc)
    err = proc.stderr.read()
    assert code == 0, err
    assert proc.stdout.read() == ""  # every line went to the log file
    got = lines()
    assert got[-1]["event"] == "stopped"
    running = [x for x in got if x["event"] == "log" and x.get("message") == "strategy running"]
    assert [x["venue"] for x in running] == ["sim-binance"]
    assert {x["venue"] for x in got if x["event"] == "signal"} == {"sim-binance"}  # its warm-up signal at least
    assert "Traceback" not in err and TOKEN not in err + log.read_text()
    # each venue recorded its own session, in its own directory
    for venue in ("sim", "sim-binance"):
        files = list((tmp_path / "rec" / venue).rglob("*.parquet"))
        assert files, f"nothing recorded for {venue}"
