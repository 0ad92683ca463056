"""History: quality report, import, resumable paginated fetch (interrupted and resumed)."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from tps19.engine.history import (
    DataError,
    check,
    existing_ts,
    fetch_history,
    import_file,
    load_bars,
    missing_ranges,
    read_ohlcv,
)
from tps19.engine.storage import Bar, Database

from .conftest import DATA

MIN = 60_000


def test_real_gaps_are_reported():
    df, rep = check(read_ohlcv(DATA / "freqtrade_UNITTEST_BTC_1m.csv"))
    assert rep.rows_in == rep.rows_out == 13_681
    assert len(rep.gaps) == 538 and rep.missing_bars == 717  # as documented in PROVENANCE.md
    assert rep.interval_ms == MIN
    assert any("538 gaps, 717 missing bars" in line for line in rep.lines())


def test_bad_rows_are_counted_listed_and_dropped(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(
        "timestamp,open,high,low,close,volume\n"
        "1000000000000,1,2,0.5,1.5,10\n"    # 0 ok
        "1000000060000,1,2,0.5,,10\n"       # 1 NaN
        "1000000120000,1,0.5,2,1,10\n"      # 2 high < low
        "1000000180000,1,2,0.5,1.5,10\n"    # 3 ok
        "1000000180000,1,2,0.5,1.6,10\n"    # 4 duplicate
        "1000000060000,1,2,0.5,1.5,10\n"    # 5 out of time order: sorted in (row 1, same time, is NaN)
        "1000000240000,1,2,0.5,3,10\n"      # 6 close above high
        "1000000420000,1,2,0.5,1.5,10\n"    # 7 ok, after a gap
    )
    df, rep = check(read_ohlcv(p), interval_ms=MIN)
    assert rep.nan_rows == [1]
    assert rep.high_below_low == [2]
    assert rep.duplicates == [4]
    assert rep.unsorted == 1 and rep.non_monotonic == []
    assert rep.bad_prices == [6]
    assert rep.bad_rows == 4 and rep.rows_out == 4
    assert df.ts.tolist() == [1000000000000, 1000000060000, 1000000180000, 1000000420000]
    assert rep.gaps == [(1000000060000, 1000000180000, 1), (1000000180000, 1000000420000, 3)]
    text = "\n".join(rep.lines())
    assert "high < low: rows 2" in text and "duplicate timestamps: rows 4" in text
    assert "not in time order: 1 rows came after a later one; sorted by time" in text


def test_unreadable_files_raise_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_ohlcv(tmp_path / "missing.csv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="unsupported"):
        read_ohlcv(tmp_path / "x.json")
    (tmp_path / "nots.csv").write_text("open,high,low,close\n1,1,1,1\n")
    with pytest.raises(DataError, match="no timestamp column"):
        read_ohlcv(tmp_path / "nots.csv")


def test_date_strings_and_seconds_are_understood(tmp_path):
    (tmp_path / "d.csv").write_text("Date,Open,High,Low,Close,Volume\n2020-01-01,1,2,0.5,1,3\n2020-01-02,1,2,0.5,1,3\n")
    df = read_ohlcv(tmp_path / "d.csv")
    assert df.ts.tolist() == [1577836800000, 1577923200000]
    (tmp_path / "s.csv").write_text("time,open,high,low,close,volume\n1577836800,1,2,0.5,1,3\n")
    assert read_ohlcv(tmp_path / "s.csv").ts.tolist() == [1577836800000]


async def test_import_is_idempotent(tmp_path):
    db = Database(tmp_path / "h.db")
    await db.open()
    try:
        n, rep, sym, tf = await import_file(db, DATA / "freqtrade_ETH_BTC_5m.csv", symbol="ETH/BTC")
        assert (n, sym, tf) == (5760, "ETH/BTC", "5m") and rep.clean
        await import_file(db, DATA / "freqtrade_ETH_BTC_5m.csv", symbol="ETH/BTC")  # again: upsert, no duplicates
        async with db.session() as s:
            assert (await s.execute(select(func.count()).select_from(Bar))).scalar_one() == 5760
        df = await load_bars(db, "file", "ETH/BTC", "5m")
        src = pd.read_csv(DATA / "freqtrade_ETH_BTC_5m.csv")
        np.testing.assert_array_equal(df.ts.to_numpy(), src.timestamp_ms.to_numpy())
        np.testing.assert_array_equal(df.close.to_numpy(), src.close.to_numpy())
    finally:
        await db.close()


def test_missing_ranges():
    assert missing_ranges([], 0, 5 * MIN, MIN) == [(0, 4 * MIN)]
    assert missing_ranges([0, MIN, 3 * MIN], 0, 6 * MIN, MIN) == [(2 * MIN, 2 * MIN), (4 * MIN, 5 * MIN)]
    assert missing_ranges([0, MIN], 0, 2 * MIN, MIN) == []


class FakeExchange:
    """A ccxt-shaped client: fetch_ohlcv(symbol, timeframe, since, limit) like ccxt's unified call.

    Deterministic candles on a 1-minute grid, with a few minutes the "exchange" never had
    (real gaps). ``fail_after`` raises a ccxt NetworkError on that request (an interruption).
    """

    def __init__(self, fail_after: int | None = None, holes: tuple[int, ...] = ()):
        self.calls: list[tuple[int, int]] = []
        self.fail_after = fail_after
        self.holes = {h * MIN for h in holes}
        self.max_limit = 100

    def candle(self, t: int) -> list[float]:
        x = t // MIN
        o = 100 + (x % 17) * 0.5
        return [t, o, o + 1, o - 1, o + 0.25, float(x % 5 + 1)]

    async def fetch_ohlcv(self, symbol, timeframe="1m", since=None, limit=None, params=None):
        import ccxt

        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise ccxt.NetworkError("connection reset (simulated)")
        self.calls.append((since, limit))
        await asyncio.sleep(0)
        limit = min(limit or self.max_limit, self.max_limit)
        # like many exchanges: may start one candle *before* since
        t = since - MIN
        out = []
        while len(out) < limit and t < 200 * MIN:
            if t not in self.holes:
                out.append(self.candle(t))
            t += MIN
        return out


async def test_fetch_paginates_and_resumes_after_interruption(tmp_path):
    db = Database(tmp_path / "f.db")
    await db.open()
    try:
        kw = dict(exchange="fake", symbol="BTC/USDT", timeframe="1m", since=0, until=180 * MIN, limit=50)
        broken = FakeExchange(fail_after=2, holes=(7, 130))
        import ccxt

        with pytest.raises(ccxt.NetworkError):
            await fetch_history(broken, db, **kw)
        have = await existing_ts(db, "fake", "BTC/USDT", "1m", 0, 180 * MIN)
        assert 0 < len(have) < 178  # the pages before the interruption were kept
        progress = []
        good = FakeExchange(holes=(7, 130))
        rep = await fetch_history(good, db, **kw, progress=lambda d, t: progress.append((d, t)))
        assert rep.already == len(have)
        # only the gaps were asked for: the exchange's real hole at minute 7 and everything after the interruption
        assert all(since >= 7 * MIN for since, _ in good.calls)
        assert rep.ranges[0][0] == 7 * MIN
        have2 = await existing_ts(db, "fake", "BTC/USDT", "1m", 0, 180 * MIN)
        assert have2 == [t for t in range(0, 180 * MIN, MIN) if t not in (7 * MIN, 130 * MIN)]
        assert progress[-1][0] == progress[-1][1] == rep.planned
        # a third run has nothing left but the exchange's own holes, and writes nothing new
        third = FakeExchange(holes=(7, 130))
        rep3 = await fetch_history(third, db, **kw)
        assert rep3.planned == 2 and rep3.written == 0
        # stored candles are exactly the exchange's, once each
        df = await load_bars(db, "fake", "BTC/USDT", "1m")
        assert df.ts.is_unique and len(df) == 178
        assert df.iloc[10].tolist() == good.candle(int(df.iloc[10].ts))
    finally:
        await db.close()


async def test_fetch_resumes_against_the_simulated_exchange(tmp_path):
    import ccxt
    import ccxt.async_support as ccxt_async

    from tps19.simex import SimExchange, point_ccxt

    sim = SimExchange(port=0, seed=19)
    await sim.start()
    client = ccxt_async.cryptocom({"enableRateLimit": True})
    point_ccxt(client, sim.base_url)
    db1, db2 = Database(tmp_path / "a.db"), Database(tmp_path / "b.db")
    await db1.open()
    await db2.open()
    try:
        since = 1_700_000_000_000 // MIN * MIN
        kw = dict(exchange="sim", symbol="BTC/USDT", timeframe="1m", since=since, until=since + 900 * MIN, limit=300)

        class Interrupting:
            def __init__(self, inner, n):
                self.inner, self.n, self.calls = inner, n, 0

            async def fetch_ohlcv(self, *a, **k):
                if self.calls >= self.n:
                    raise ccxt.NetworkError("interrupted (test)")
                self.calls += 1
                return await self.inner.fetch_ohlcv(*a, **k)

        with pytest.raises(ccxt.NetworkError):
            await fetch_history(Interrupting(client, 1), db1, **kw)
        first = await existing_ts(db1, "sim", "BTC/USDT", "1m", kw["since"], kw["until"])
        assert 0 < len(first) < 900
        rep = await fetch_history(client, db1, **kw)
        assert rep.already == len(first)
        await fetch_history(client, db2, **kw)  # uninterrupted reference
        a = await load_bars(db1, "sim", "BTC/USDT", "1m")
        b = await load_bars(db2, "sim", "BTC/USDT", "1m")
        assert len(a) == 900
        pd.testing.assert_frame_equal(a, b)
    finally:
        await client.close()
        await sim.stop()
        await db1.close()
        await db2.close()


def test_large_csv_is_streamed_into_the_same_columns(tmp_path, monkeypatch):
    """A CSV above the size where pyarrow reads it, in many small blocks: the same bars as numpy's
    reader gives for the small file, through a quoted header, integer times that turn fractional
    half-way (the inferred type fails: read again as floats) and an empty field (NaN, dropped by
    the check)."""
    from tps19.engine.history import bars as bars_mod

    rng = np.random.default_rng(3)
    n = 3000
    ts = 1_704_067_200 + 60 * np.arange(n)
    close = (100 + np.cumsum(rng.normal(0, 0.1, n))).tolist()
    lines = ['"Timestamp","Open","High","Low","Close","Volume"']
    for i in range(n):
        t = f"{ts[i]}.5" if i == 2500 else str(ts[i])
        vol = "" if i == 1200 else f"{rng.uniform(0, 5):.6f}"
        lines.append(f"{t},{close[i]!r},{close[i] + 0.5!r},{close[i] - 0.5!r},{close[i]!r},{vol}")
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    small = read_ohlcv(path)  # numpy's reader (pandas for the empty field)
    monkeypatch.setattr(bars_mod, "_BIG_CSV", 0)
    monkeypatch.setattr(bars_mod, "_BLOCK", 4096)  # ~50 rows a block
    big = read_ohlcv(path)
    assert len(big) == len(small) == n
    for k in ("ts", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(np.asarray(big[k], dtype=float), np.asarray(small[k], dtype=float), err_msg=k)
    assert big.ts[2500] == (ts[2500] + 0.5) * 1000 and np.isnan(big.volume[1200])
    clean, rep = check(big)
    assert len(clean) == n - 1, rep.lines()
