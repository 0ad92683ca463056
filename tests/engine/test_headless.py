"""`tps19 paper --no-ui` as a trader runs it on a VPS: a real process, signals, JSON lines."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPS19_")}
    env.update(TPS19_DATABASE__PATH=str(tmp_path / "desk.db"), TPS19_LOG__SUMMARY_INTERVAL_S="0.5", **extra)
    return env


def _run_until(proc: subprocess.Popen, needle: str, timeout: float = 30.0) -> list[str]:
    lines: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not seen; got:\n{''.join(lines)}")


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    """The rest of stdout and all of stderr, once the process has exited.

    Read through the same buffered files as `_run_until`'s readline(): communicate() reads the
    raw pipes and drops what readline() had already buffered, i.e. the lines written in the same
    instant as the last one it returned (a run's only `portfolio` line was lost that way)."""
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(timeout=30)
    return out, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_headless_paper_logs_json_and_exits_zero_on_signal(tmp_path, sig):
    secret = "very-secret-value-123"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tps19.cli", "paper", "--no-ui"],
        cwd=tmp_path, env=_env(tmp_path, TPS19_EXCHANGE__SECRET=secret, TPS19_EXCHANGE__API_KEY="tps19-demo-key"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = _run_until(proc, '"event":"market"')
        # let a few summaries for every symbol arrive
        lines += _run_until(proc, '"event":"market"')
        proc.send_signal(sig)
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines += out.splitlines()
    assert proc.returncode == 0, err
    records = [json.loads(l) for l in lines if l.strip()]  # every line is JSON
    events = [r["event"] for r in records]
    assert events[0] == "starting" and "started" in events and events[-1] == "stopped"
    # every line of the venue names it, as with several venues (only the signal's line is the process's)
    assert {r["venue"] for r in records if r["event"] != "shutdown"} == {"sim"}
    [started] = [r for r in records if r["event"] == "started"]
    assert started["venue_name"].startswith("sim@127.0.0.1:")
    # the OS signal is a `shutdown` line; `signal` lines are a strategy's
    assert [r["signal"] for r in records if r["event"] == "shutdown"] == [sig.name] and "signal" not in events
    # the counters an operator reads after a night's run: faults survived are counted, not hidden
    assert {"resyncs", "reconnects", "restarts", "bad_frames", "book_msgs"} <= set(records[-1])
    assert records[-1]["book_msgs"] > 0 and records[-1]["bad_frames"] == 0
    markets = [r for r in records if r["event"] == "market"]
    assert markets and all(Decimal(r["bid"]) < Decimal(r["ask"]) for r in markets if r["bid"] and r["ask"])
    # figures a human reads: prices as strings at the market's precision, money at 2 decimals in USDT
    # (the line said "unrealized_pnl":"-4.901713599999999999999999900" and bid/ask as floats)
    assert all(re.fullmatch(r"\d+\.\d{2,3}", r["bid"]) for r in markets if r["bid"])
    folios = [r for r in records if r["event"] == "portfolio"]
    assert folios and all(re.fullmatch(r"-?\d+\.\d{2}", r[k]) for r in folios
                          for k in ("equity", "realized_pnl", "unrealized_pnl", "net_pnl"))
    assert all(re.fullmatch(r"\d+\.\d{8}", r["fees"]) for r in folios)  # fees at 8 decimals
    # the run ends with what it did: a `summary` line before `stopped`
    [summary] = [r for r in records if r["event"] == "summary"]
    assert records.index(summary) < len(records) - 1 and summary["fills"] == 0 and summary["fees"] == "0.00000000"
    assert summary["equity_end"] == folios[-1]["equity"] or re.fullmatch(r"\d+\.\d{2}", summary["equity_end"])
    # every stream of a symbol is in its summary, with a state and a count an operator can watch move
    assert any(set(r.get("streams", {})) == {"book", "trades", "ticker", "bars"} for r in markets)
    assert all(st in ("connecting", "connected", "stale", "resync", "reconnecting") and n >= 0
               for r in markets for st, n in r.get("streams", {}).values())
    assert any(r["event"] == "connection" and r["state"] == "connected" for r in records)
    assert "Traceback" not in err
    assert secret not in out + err + "".join(lines)
    assert (tmp_path / "desk.db").exists()


def test_headless_log_file_option(tmp_path):
    log = tmp_path / "desk.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tps19.cli", "paper", "--no-ui", "--log-file", str(log), "--symbol", "ETH/USDT"],
        cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        end = time.monotonic() + 30
        while time.monotonic() < end and not (log.exists() and '"event":"market"' in log.read_text()):
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    records = [json.loads(l) for l in log.read_text().splitlines()]
    assert {r["symbol"] for r in records if r["event"] == "market"} == {"ETH/USDT"}
    assert records[-1]["event"] == "stopped"


def test_live_refuses_to_start_without_keys(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tps19.cli", "live", "--no-ui", "--exchange", "cryptocom"],
                       cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "LIVE" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [["--strategy", "nope"], ["--strategy", "sma_cross", "--param", "fast=abc"],
                                  ["--param", "fast=3"]])
def test_bad_strategy_flags_are_one_line_errors(tmp_path, monkeypatch, args):
    # in this process (typer's runner: the command's stderr and exit code); refused before the
    # settings, the database or the venue are touched
    from typer.testing import CliRunner

    from tps19.cli import app

    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["paper", "--no-ui", *args], env=_env(tmp_path))
    assert r.exit_code == 2, r.output
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("tps19: ") and "Traceback" not in r.stderr


@pytest.mark.parametrize("keys", [{"TPS19_EXCHANGE__API_KEY": "tps19-demo-key",
                                   "TPS19_EXCHANGE__SECRET": "tps19-demo-secret"},
                                  {}], ids=["demo-keys-given", "no-keys-uses-demo-keys"])
def test_headless_live_on_the_sim_with_its_keys_says_live_and_stops_cleanly(tmp_path, keys):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tps19.cli", "live", "--no-ui", "--symbol", "BTC/USDT"],
        cwd=tmp_path, env=_env(tmp_path, **keys),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = _run_until(proc, '"event":"market"')
        proc.send_signal(signal.SIGINT)
        out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "LIVE" in err and "tps19-demo-secret" not in err + out + "".join(lines)
    assert json.loads(lines[0])["mode"] == "live"
