"""Headless `tps19 paper --no-ui --metrics-port`: Prometheus metrics and /healthz scraped over real
HTTP from a real process on the simulated exchange, which the test silences through its switchboard."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from .conftest import clean_env, db_env, read_until, samples, stop, tps19, wait_for

pytestmark = pytest.mark.slow


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def post(url: str) -> None:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as r:
        assert r.status == 200


def value(scrape: dict, name: str, **labels: str) -> float | None:
    return scrape.get((name, tuple(sorted(labels.items()))))


@pytest.fixture(scope="module")
def headless(exchange_process, tmp_path_factory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("headless")
    env = clean_env(TPS19_EXCHANGE__REST_URL=exchange_process.base_url, TPS19_FEED__STALE_AFTER_S="2",
                    TPS19_FEED__RECONNECT_MAX_S="1", **db_env(tmp))
    proc = subprocess.Popen(tps19("paper", "--no-ui", "--metrics-port", "0", "--symbol", "BTC/USDT",
                                  "--symbol", "ETH/USDT"),
                            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = json.loads(read_until(proc, r'^\{.*"event":"metrics".*').group(0))
        yield {"metrics": line["url"], "health": line["health"], "control": exchange_process.control_url}
        assert stop(proc) == 0
    finally:
        stop(proc)


def test_metrics_are_served_on_loopback_with_the_tps19_prefix(headless):
    assert headless["metrics"].startswith("http://127.0.0.1:")
    wait_for("healthy", lambda: get(headless["health"])[0] == 200)
    def scrape_with_books() -> str | None:
        text = get(headless["metrics"])[1]
        return text if "tps19_book_messages_total" in text else None
    first = samples(wait_for("a scrape with book messages", scrape_with_books))
    names = {name for name, _ in first}
    assert names and all(n.startswith("tps19_") for n in names), names
    assert {"tps19_feed_latency_seconds_count", "tps19_stale_streams_count", "tps19_equity", "tps19_kill_switch",
            "tps19_bus_dropped", "tps19_pnl_today"} <= names
    assert value(first, "tps19_kill_switch", mode="paper") == 0
    assert value(first, "tps19_equity", mode="paper") > 0
    assert value(first, "tps19_stale_streams_count") == 0

    # the book counter and the latency histogram move while the market does
    def moved() -> bool:
        now = samples(get(headless["metrics"])[1])
        return all(value(now, "tps19_book_messages_total", symbol=s) > value(first, "tps19_book_messages_total", symbol=s)
                   and value(now, "tps19_feed_latency_seconds_count", symbol=s) > 0 for s in ("BTC/USDT", "ETH/USDT"))
    wait_for("book messages counted for both symbols", moved)


def test_a_silenced_stream_turns_healthz_503_naming_it_then_200_again(headless):
    wait_for("healthy", lambda: get(headless["health"])[0] == 200)
    status, body = get(headless["health"])
    assert json.loads(body) == {"status": "ok", "reasons": []}

    post(headless["control"] + "/faults/silence?seconds=30&symbol=BTC/USDT")
    try:
        status, body = wait_for("503", lambda: (r := get(headless["health"]))[0] == 503 and r)
        reasons = json.loads(body)["reasons"]
        assert any("book BTC/USDT" in r for r in reasons), reasons
        assert not any("ETH/USDT" in r for r in reasons), reasons  # only the silenced symbol is named
        scrape = samples(get(headless["metrics"])[1])
        assert value(scrape, "tps19_stale_streams", stream="book", symbol="BTC/USDT") == 1
    finally:
        post(headless["control"] + "/faults/clear")
    wait_for("healthy again after the silence ends", lambda: get(headless["health"])[0] == 200)
