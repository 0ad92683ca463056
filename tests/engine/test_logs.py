"""Every log record goes through the JSON log with redaction; trading issues are `issue` lines
with ids and amounts; log files are private (0600)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import stat
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tps19.config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET
from tps19.engine.jsonlog import JsonLines, JsonLogHandler
from tps19.simex import SimExchange, point_ccxt

ROOT = Path(__file__).resolve().parents[2]
# a key and a secret that JSON and repr() both escape
KEY = 'k"ey\\live-7731'
SECRET = 'se\\cr"et-0042-xyz'
# `live --exchange sim` refuses any key but the sim's demo key and secret (so real keys never go
# to a simulator); the third credential, the password, is free and carries the quote/backslash
PASSWORD = 'pa"ss\\wo\'rd-88'


def leaked_forms(secret: str, depth: int = 3) -> list[str]:
    """How a secret can show up in text: raw, JSON-escaped, repr-escaped, and those nested."""
    forms = {secret}
    for _ in range(depth):
        forms |= {g for f in forms for g in (json.dumps(f)[1:-1], repr(f)[1:-1])}
    return sorted(forms)


def assert_no_secret(text: str, secrets: tuple[str, ...] = (KEY, SECRET)) -> None:
    for s in secrets:
        for f in leaked_forms(s):
            assert f not in text, f"secret leaked as {f!r}"


def test_redaction_covers_json_escaped_and_repr_forms(tmp_path):
    path = tmp_path / "out.jsonl"
    out = JsonLines(path, secrets=[KEY, SECRET, PASSWORD])
    err = RuntimeError(f"auth failed for {SECRET!r} body={json.dumps({'api_key': KEY})}")
    out.write("log", message=f"raw {KEY} and {SECRET}", error=repr(err), nested={"k": [KEY, repr(SECRET)]})
    out.close()
    text = path.read_text()
    assert_no_secret(text)
    rec = json.loads(text)
    assert rec["message"] == "raw *** and ***" and rec["error"].count("***") == 2
    for s in (KEY, SECRET, PASSWORD):
        assert all(out.redact(f"<{f}>") == "<***>" for f in leaked_forms(s))


def test_log_file_is_created_private_and_an_existing_one_keeps_working(tmp_path):
    path = tmp_path / "new.jsonl"
    out = JsonLines(path)
    out.write("x", n=1)
    out.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    old = tmp_path / "old.jsonl"
    old.write_text('{"event":"before"}\n')
    out = JsonLines(old)
    out.write("after")
    out.close()
    assert [json.loads(l)["event"] for l in old.read_text().splitlines()] == ["before", "after"]


def test_stdlib_records_become_json_lines_without_tracebacks(tmp_path, capsys):
    path = tmp_path / "h.jsonl"
    out = JsonLines(path, secrets=[SECRET])
    handler = JsonLogHandler(out)
    lg = logging.getLogger("tps19.test.logs")
    lg.addHandler(handler)
    lg.propagate = False
    try:
        try:
            raise ValueError(f"bad thing with {SECRET}")
        except ValueError:
            lg.error("it broke: %s", "details", exc_info=True)
        lg.warning("already on the bus", extra={"tps19_issue": True})  # written as an `issue` event instead
    finally:
        lg.removeHandler(handler)
        lg.propagate = True
        out.close()
    [rec] = [json.loads(l) for l in path.read_text().splitlines()]
    assert rec["event"] == "log" and rec["level"] == "error" and rec["logger"] == "tps19.test.logs"
    assert rec["message"] == "it broke: details" and rec["exc_type"] == "ValueError"
    assert "Traceback" not in path.read_text() and SECRET not in path.read_text()
    cap = capsys.readouterr()
    assert cap.err == "" and cap.out == ""


# ------------------------------------------------------------------ a headless live run on the sim

def _env(tmp_path: Path, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPS19_")}
    env.update(PYTHONPATH=str(ROOT), TPS19_DATABASE__PATH=str(tmp_path / "live.db"),
               TPS19_LOG__SUMMARY_INTERVAL_S="0.5", TPS19_EXCHANGE__REST_URL=base_url,
               TPS19_EXCHANGE__API_KEY=SIM_DEMO_API_KEY, TPS19_EXCHANGE__SECRET=SIM_DEMO_SECRET,
               TPS19_EXCHANGE__PASSWORD=PASSWORD)
    return env


async def _run_live(tmp_path: Path, base_url: str, until: callable) -> tuple[list[str], str, int]:
    """Run `tps19 live --no-ui` until `until(records)` holds (or it ends), then SIGINT it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.engine.leaky_child", "live", "--no-ui", "--symbol", "BTC/USDT",
        cwd=str(tmp_path), env=_env(tmp_path, base_url),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    lines: list[str] = []
    records: list[dict] = []
    try:
        async def read() -> None:
            while not until(records):
                line = await proc.stdout.readline()
                if not line:
                    return
                lines.append(line.decode())
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass
        await asyncio.wait_for(read(), 60)
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines += out.decode().splitlines(keepends=True)
    return lines, err.decode(), proc.returncode


def _issues(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r.get("event") == "issue" and r.get("kind") == kind]


@pytest.mark.slow
async def test_headless_live_issues_are_json_lines_with_ids_and_amounts(tmp_path):
    """Third-party code in the process logs the credentials (tests/engine/leaky_child.py) while
    the broker adopts an order and corrects a balance: all of it comes out as redacted JSON."""
    sim = SimExchange(port=0, seed=19, autoplay=False,
                      accounts={SIM_DEMO_API_KEY: (SIM_DEMO_SECRET, {"USDT": Decimal("100000"), "BTC": Decimal("1")})})
    await sim.start()
    import ccxt.pro as ccxtpro

    hand = point_ccxt(ccxtpro.cryptocom({"apiKey": SIM_DEMO_API_KEY, "secret": SIM_DEMO_SECRET,
                                         "enableRateLimit": False}), sim.base_url)
    try:
        await hand.load_markets()
        # first run: books the venue's balances as its own
        lines1, err1, code1 = await _run_live(tmp_path, sim.base_url,
                                              lambda rs: any(r.get("event") == "started" for r in rs))
        assert code1 == 0, err1
        # while it is down: an order placed by hand on the account, and BTC arrives unexplained
        ob = await hand.fetch_order_book("BTC/USDT", 5)
        price = round(ob["bids"][0][0] * 0.8, 2)
        manual = await hand.create_order("BTC/USDT", "limit", "buy", 0.02, price, {"client_oid": "manual-1"})
        sim.accounts[SIM_DEMO_API_KEY].balances["BTC"] += Decimal("0.5")

        def both(rs: list[dict]) -> bool:
            return bool(_issues(rs, "adopted_order") and _issues(rs, "balance_difference")
                        and any(r.get("event") == "started" for r in rs))
        lines2, err2, code2 = await _run_live(tmp_path, sim.base_url, both)
        assert code2 == 0, err2
    finally:
        await hand.close()
        await sim.stop()

    records = [json.loads(l) for l in lines1 + lines2 if l.strip()]  # every stdout line is JSON
    [adopted] = _issues(records, "adopted_order")
    assert adopted["client_order_id"] == "manual-1" and adopted["venue_order_id"] == manual["id"]
    assert (adopted["symbol"], adopted["side"]) == ("BTC/USDT", "buy")
    assert Decimal(adopted["amount"]) == Decimal("0.02") and Decimal(adopted["price"]) == Decimal(str(price))
    [diff] = _issues(records, "balance_difference")
    # the venue's figure is "venue_amount": "venue" names the venue on every line of the run
    assert diff["currency"] == "BTC" and Decimal(diff["booked"]) == 1 and Decimal(diff["venue_amount"]) == Decimal("1.5")
    assert diff["venue"] == "sim"
    assert Decimal(diff["difference"]) == Decimal("0.5")
    # stderr has the LIVE banner and nothing else: no bare warnings, no tracebacks
    for err in (err1, err2):
        assert [l for l in err.splitlines() if l.strip() and "TPS19 LIVE" not in l] == [], err
    everything = "".join(lines1 + lines2) + err1 + err2
    assert_no_secret(everything, (PASSWORD, SIM_DEMO_API_KEY, SIM_DEMO_SECRET))
    # what the leaky code logged is there, redacted, with no traceback
    leaked = [r for r in records if r.get("event") == "log" and r.get("logger") in ("ccxt.base.exchange", "asyncio", "py.warnings")]
    assert {r["logger"] for r in leaked} == {"ccxt.base.exchange", "asyncio", "py.warnings"}
    assert all("***" in r["message"] + r.get("exc_message", "") for r in leaked)
    assert [r["exc_type"] for r in leaked if r["logger"] == "asyncio"] == ["RuntimeError", "RuntimeError"]
    assert "Traceback" not in everything


def test_order_and_fill_lines_carry_ids_price_amount_fee_at_market_precision(tmp_path):
    from tests.trading.conftest import cryptocom_markets
    from tps19.engine.headless import _write_event
    from tps19.engine.trade_log import TradeFormatter
    from tps19.engine.trading.events import FillEvent, OrderUpdate

    path = tmp_path / "log.jsonl"
    out = JsonLines(path)
    fmt = TradeFormatter(cryptocom_markets())
    new = OrderUpdate("t19-1", None, "live", "BTC/USDT", "buy", "limit", Decimal("0.1"), Decimal("50000.5"),
                      Decimal(0), None, Decimal(0), "new", None)
    again = OrderUpdate("t19-1", "v-9", "live", "BTC/USDT", "buy", "limit", Decimal("0.1"), Decimal("50000.5"),
                        Decimal(0), None, Decimal(0), "new", "new")  # the venue id learnt: no status change
    fill = FillEvent("f-1", "t19-1", "v-9", "live", "BTC/USDT", "buy", Decimal("50000.5"), Decimal("0.1"),
                     Decimal("3.000030000000000001"), "USDT", "maker")
    for e in (new, again, fill):
        _write_event(out, e, 20, fmt)
    out.close()
    recs = [json.loads(l) for l in path.read_text().splitlines()]
    assert [r["event"] for r in recs] == ["order", "fill"]  # each new order once
    order, f = recs
    assert (order["client_order_id"], order["status"], order["side"]) == ("t19-1", "new", "buy")
    assert (order["amount"], order["price"]) == ("0.10000 BTC", "50000.50 USDT")  # BTC/USDT: 0.00001, 0.01
    assert (f["fill_id"], f["client_order_id"], f["venue_order_id"]) == ("f-1", "t19-1", "v-9")
    assert (f["price"], f["amount"], f["fee"]) == ("50000.50 USDT", "0.10000 BTC", "3.00003000 USDT")
