"""Candles: deterministic history from (seed, symbol, time) plus live candles from sim trades."""

from __future__ import annotations

import bisect
import math
from datetime import datetime, timezone
from decimal import Decimal

from .instruments import Instrument

MINUTE = 60_000
# exchange interval id -> milliseconds (1M is a calendar month, handled apart)
INTERVALS: dict[str, int] = {
    "1m": MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE, "30m": 30 * MINUTE,
    "1h": 60 * MINUTE, "2h": 120 * MINUTE, "4h": 240 * MINUTE, "6h": 360 * MINUTE,
    "12h": 720 * MINUTE, "1D": 1440 * MINUTE, "7D": 7 * 1440 * MINUTE, "14D": 14 * 1440 * MINUTE,
    "1M": 30 * 1440 * MINUTE,
}
ALIASES = {"M1": "1m", "M5": "5m", "M15": "15m", "M30": "30m", "H1": "1h", "H2": "2h", "H4": "4h",
           "H12": "12h", "D1": "1D", "1d": "1D", "7D": "7D", "1w": "7D", "14D": "14D", "1M": "1M"}

_M64 = (1 << 64) - 1


def _mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _unit(seed: int, k: int, i: int) -> float:
    """Deterministic value in [-1, 1)."""
    return _mix(_mix(_mix(seed) ^ (k * 0x632BE59BD9B4E019 & _M64)) ^ (i & _M64)) / 2**63 - 1.0


_OCTAVES = [(p, 0.0009 * p ** 0.42) for p in (1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000)]


def bucket_start(interval: str, t: int) -> int:
    if interval == "1M":
        d = datetime.fromtimestamp(t / 1000, tz=timezone.utc)
        return int(datetime(d.year, d.month, 1, tzinfo=timezone.utc).timestamp() * 1000)
    step = INTERVALS[interval]
    return t - t % step


def next_bucket(interval: str, start: int) -> int:
    if interval == "1M":
        d = datetime.fromtimestamp(start / 1000, tz=timezone.utc)
        y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return int(datetime(y, m, 1, tzinfo=timezone.utc).timestamp() * 1000)
    return start + INTERVALS[interval]


class HistoryModel:
    """A smooth multi-scale price path P(t), a pure function of (seed, symbol, t)."""

    def __init__(self, seed: int, inst: Instrument) -> None:
        self.inst = inst
        self.seed = _mix(seed * 1_000_003 + sum(ord(c) * 31 ** i for i, c in enumerate(inst.id)))
        self.p0 = float(inst.start_price)

    def log_offset(self, t_ms: float) -> float:
        m = t_ms / MINUTE
        total = 0.0
        for k, (period, amp) in enumerate(_OCTAVES):
            x = m / period
            i = math.floor(x)
            f = x - i
            f = f * f * (3 - 2 * f)
            a = _unit(self.seed, k, i)
            b = _unit(self.seed, k, i + 1)
            total += amp * (a + (b - a) * f)
        return total

    def price(self, t_ms: float) -> float:
        return self.p0 * math.exp(self.log_offset(t_ms))

    def candle(self, interval: str, start: int) -> tuple[float, float, float, float, float]:
        end = next_bucket(interval, start)
        n = max(2, min(16, (end - start) // MINUTE + 1))
        pts = [self.price(start + (end - start) * j / n) for j in range(n + 1)]
        o, c = pts[0], pts[-1]
        span_min = (end - start) / MINUTE
        w1 = abs(_unit(self.seed, 101, start // MINUTE)) * 0.0004 * math.sqrt(span_min)
        w2 = abs(_unit(self.seed, 102, start // MINUTE)) * 0.0004 * math.sqrt(span_min)
        h = max(pts) * (1 + w1)
        lo = min(pts) * (1 - w2)
        move = abs(math.log(c / o))
        v = float(self.inst.typical_qty) * 20 * span_min * (0.5 + abs(_unit(self.seed, 103, start // MINUTE))) * (1 + 30 * move)
        return o, h, lo, c, v


class CandleStore:
    """Live candles (integer ticks / lots) per symbol and interval, fed by sim trades."""

    def __init__(self, inst: Instrument, model: HistoryModel, start_ms: int, start_ticks: int) -> None:
        self.inst = inst
        self.model = model
        self.start_ms = start_ms
        self.start_ticks = start_ticks
        # interval -> (sorted bucket starts, {start: [o, h, l, c, v_lots]})
        self.live: dict[str, tuple[list[int], dict[int, list[int]]]] = {iv: ([], {}) for iv in INTERVALS}

    def on_trade(self, t: int, price: int, qty: int) -> None:
        for iv, (keys, rows) in self.live.items():
            b = max(bucket_start(iv, t), bucket_start(iv, self.start_ms))
            row = rows.get(b)
            if row is None:
                rows[b] = [price, price, price, price, qty]
                if not keys or keys[-1] < b:
                    keys.append(b)
                else:
                    bisect.insort(keys, b)
            else:
                if price > row[1]:
                    row[1] = price
                if price < row[2]:
                    row[2] = price
                row[3] = price
                row[4] += qty

    def _close_before(self, iv: str, b: int) -> int:
        keys, rows = self.live[iv]
        i = bisect.bisect_left(keys, b)
        return rows[keys[i - 1]][3] if i > 0 else self.start_ticks

    def rows(self, iv: str, start_ts: int | None, end_ts: int, count: int, now: int) -> list[dict]:
        """Up to `count` most recent candles with start_ts <= t < end_ts (and t <= now), oldest first."""
        end_ts = min(end_ts, now + 1)
        last = bucket_start(iv, end_ts - 1)
        first_live = bucket_start(iv, self.start_ms)
        lo = None
        if start_ts is not None:
            lo = bucket_start(iv, start_ts)
            if lo < start_ts:
                lo = next_bucket(iv, lo)
        starts: list[int] = []
        b = last
        while len(starts) < count and (lo is None or b >= lo):
            starts.append(b)
            if iv == "1M":
                prev = bucket_start(iv, b - 1)
            else:
                prev = b - INTERVALS[iv]
            b = prev
        starts.reverse()
        out = []
        inst = self.inst
        keys, live = self.live[iv]
        carry = None
        for s in starts:
            if s >= first_live:
                row = live.get(s)
                if row is None:
                    if carry is None:
                        carry = self._close_before(iv, s)
                    row = [carry, carry, carry, carry, 0]
                carry = row[3]
                out.append({"o": inst.price_str(row[0]), "h": inst.price_str(row[1]), "l": inst.price_str(row[2]),
                            "c": inst.price_str(row[3]), "v": inst.qty_str(row[4]), "t": s})
            else:
                o, h, lo_, c, v = self.model.candle(iv, s)
                q = inst.tick
                out.append({"o": str(Decimal(o).quantize(q)), "h": str(Decimal(h).quantize(q)),
                            "l": str(Decimal(lo_).quantize(q)), "c": str(Decimal(c).quantize(q)),
                            "v": str(Decimal(v).quantize(inst.lot)), "t": s})
        return out

    def current(self, iv: str, now: int) -> dict:
        return self.rows(iv, None, now + 1, 1, now)[0]
