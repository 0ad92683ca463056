"""Presenting and storing backtest results: rich tables, a plotext chart, JSON, the database."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from decimal import Decimal
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..protection import EXIT_REASONS
from .engine import BacktestResult


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(ms: int) -> str:
    s = ms // 1000
    d, s = divmod(s, 86_400)
    h, s = divmod(s, 3_600)
    m = s // 60
    return f"{d}d {h}h {m}m" if d else f"{h}h {m}m"


def _pct(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    text = f"{x * 100:.2f}%"
    return "0.00%" if text == "-0.00%" else text  # a tiny negative is no sign worth showing


def _num(x: Any, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:,.{nd}f}"


def _interval(m: dict[str, Any]) -> str:
    ci = m.get("sharpe_ci95")
    if not ci:
        return ""
    return f" (95%: {ci[0]:,.2f} .. {ci[1]:,.2f}, SE {m['sharpe_se']:,.2f} from {m.get('sharpe_basis')})"


def metric_rows(m: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("Period", f"{iso(m.get('start_ms'))} -> {iso(m.get('end_ms'))} ({m.get('bars')} bars)"),
        ("Initial cash", _num(m.get("initial_cash"))),
        ("Final equity", _num(m.get("final_equity"))),
        ("Total return", _pct(m.get("total_return"))),
        ("CAGR", _pct(m.get("cagr"))),
        ("Sharpe", _num(m.get("sharpe")) + _interval(m)),
        ("Sortino", _num(m.get("sortino"))),
        ("Max drawdown", _pct(m.get("max_drawdown"))),
        ("Max drawdown duration", f"{duration(m.get('max_drawdown_duration_ms') or 0)} ({m.get('max_drawdown_bars')} bars)"),
        ("Calmar", _num(m.get("calmar"))),
        ("Win rate", _pct(m.get("win_rate"))),
        ("Profit factor", _num(m.get("profit_factor"))),
        ("Trades (closed / open)", f"{m.get('trades')} / {m.get('open_trades')}"),
        ("Average trade", f"{_num(m.get('avg_trade'))} ({_pct(m.get('avg_trade_return'))})"),
        ("Exposure time", _pct(m.get("exposure"))),
        ("Fees paid", _num(m.get("fees"))),
    ] + ([  # the risk figures `tps19 backtest` adds (engine/risk/metrics.py, docs/risk.md)
        ("Volatility (annual)", _pct(m.get("volatility_annual"))),
        (f"VaR / CVaR 95% per {m.get('var_horizon', '')} bar", f"{_pct(m.get('var_95'))} / {_pct(m.get('cvar_95'))}"),
        (f"VaR / CVaR 99% per {m.get('var_horizon', '')} bar", f"{_pct(m.get('var_99'))} / {_pct(m.get('cvar_99'))}"),
        (f"VaR / CVaR 95% 1 day ({m.get('var_1d_method')})", f"{_pct(m.get('var_1d_95'))} / {_pct(m.get('cvar_1d_95'))}"),
        (f"VaR / CVaR 99% 1 day ({m.get('var_1d_method')})", f"{_pct(m.get('var_1d_99'))} / {_pct(m.get('cvar_1d_99'))}"),
    ] if "var_95" in m else []) + ([  # portfolio backtests: spot cash never goes below zero
        ("Lowest cash", _num(m.get("min_cash"))),
    ] if "min_cash" in m else []) + ([
        ("Exits", _exit_counts(m.get("exit_reasons") or {})),
    ] if m.get("exit_reasons") else []) + ([
        ("Protection", _protection_line(m["protection"])),
        ("Intrabar rule", "a bar reaching both stop and take-profit: the stop (pessimistic)"),
    ] if m.get("protection") else [])


def _exit_counts(counts: dict[str, int]) -> str:
    shown = [f"{k.replace('_', ' ')} {v}" for k, v in counts.items() if v]
    return ", ".join(shown) or "none"


def _protection_line(p: dict[str, Any]) -> str:
    names = (("stop_loss_pct", "stop-loss {}%"), ("take_profit_pct", "take-profit {}%"), ("trailing_pct", "trailing {}%"),
             ("stop_loss_price", "stop-loss at {}"), ("take_profit_price", "take-profit at {}"))
    parts = [fmt.format(f"{p[k]:g}") for k, fmt in names if p.get(k) is not None]
    if p.get("strategy_levels"):
        parts.append("the strategy's own levels")
    return ", ".join(parts) or "none"


def metrics_table(m: dict[str, Any], title: str = "Backtest") -> Any:
    from rich.table import Table

    t = Table(title=title, show_header=False)
    t.add_column("metric", style="bold")
    t.add_column("value", justify="right")
    for k, v in metric_rows(m):
        t.add_row(k, v)
    return t


_TRADE_KEYS = ("side", "entry_bar", "entry_ts", "entry_price", "units", "exit_bar", "exit_ts", "exit_price",
               "pnl", "return_pct", "fees", "open", "exit_reason")


def iso_array(ms: np.ndarray) -> list[str]:
    """``iso`` for a whole column at once."""
    return [t + "Z" for t in np.datetime_as_string(np.asarray(ms, dtype=np.int64).astype("datetime64[ms]"), unit="s").tolist()]


def trade_dicts(res: BacktestResult, lo: int = 0, hi: int | None = None) -> list[dict[str, Any]]:
    """Trades ``lo:hi`` as JSON-ready dicts, built from the table's columns (an open trade has
    no exit; its ``mark_price`` is the last close)."""
    t = res.trades
    hi = len(t) if hi is None else min(hi, len(t))
    if hi <= lo:
        return []
    cols = {k: getattr(t, k)[lo:hi].tolist() for k in _TRADE_KEYS}
    cols["side"] = ["long" if x > 0 else "short" for x in cols["side"]]
    cols["exit_reason"] = [EXIT_REASONS[x] for x in cols["exit_reason"]]
    entry_time = iso_array(t.entry_ts[lo:hi])
    exit_time = iso_array(t.exit_ts[lo:hi])
    out = []
    for i, values in enumerate(zip(*cols.values(), strict=True)):
        d = dict(zip(_TRADE_KEYS, values, strict=True))
        d["entry_time"] = entry_time[i]
        if d["open"]:
            d["exit_bar"] = d["exit_ts"] = d["exit_time"] = d["exit_price"] = None
            d["mark_price"] = cols["exit_price"][i]
        else:
            d["exit_time"] = exit_time[i]
        out.append(d)
    return out


# the trades table's narrow column (--json and the database carry the full names)
SHORT_REASON = {"signal": "signal", "stop_loss": "stop", "take_profit": "profit", "trailing_stop": "trail",
                 "breaker": "breaker", "end": "end"}


def trades_table(res: BacktestResult, limit: int = 50) -> Any:
    from rich.table import Table

    t = Table(title=f"Trades ({len(res.trades)}{', last ' + str(limit) if len(res.trades) > limit else ''})")
    for c in ("#", "side", "entry", "entry px", "exit", "exit px", "why", "units", "P&L", "return"):
        t.add_column(c, justify="right" if c not in ("side", "entry", "exit", "why") else "left")
    start = max(0, len(res.trades) - limit)
    for i, tr in enumerate(res.trades[start:], start=start + 1):
        t.add_row(
            str(i), tr.side, iso(tr.entry_ts) or "", f"{tr.entry_price:.8g}",
            "open" if tr.open else (iso(tr.exit_ts) or ""), f"{tr.exit_price:.8g}" if tr.exit_price else "",
            SHORT_REASON[tr.exit_reason], f"{tr.units:.8g}", f"{tr.pnl:,.2f}", _pct(tr.return_pct),
        )
    return t


def chart(ts: np.ndarray, equity: np.ndarray, width: int = 100, height: int = 24) -> str:
    """Equity curve and drawdown as text (plotext), downsampled for the terminal."""
    import plotext as plt

    n = len(equity)
    if n == 0:
        return ""
    step = max(1, n // (width * 4))
    x = (np.asarray(ts[::step]) - ts[0]) / 86_400_000.0
    eq = np.asarray(equity, dtype=float)
    dd = (eq / np.maximum.accumulate(eq) - 1.0)[::step] * 100.0
    plt.clear_figure()
    plt.theme("clear")
    plt.plotsize(width, height)
    plt.subplots(2, 1)
    plt.subplot(1, 1)
    plt.plot(x.tolist(), eq[::step].tolist(), marker="braille")
    plt.title("Equity")
    plt.subplot(2, 1)
    plt.plot(x.tolist(), dd.tolist(), marker="braille", color="red")
    plt.title("Drawdown %")
    plt.xlabel("days")
    out = plt.build()
    plt.clear_figure()
    return out


def json_chunks(res: BacktestResult, extra: dict[str, Any] | None = None, batch: int = 20_000) -> Iterator[str]:
    """One JSON object (strategy, params, config, ``extra``, metrics, trades) in pieces: the trades
    are written ``batch`` at a time, so a run with 400k trades never holds its whole text."""
    head = {
        "strategy": res.strategy,
        "params": res.params,
        "config": {"cash": res.config.cash, "fee": res.config.fee, "slippage_bps": res.config.slippage_bps, "size": res.config.size,
                   "protection": res.config.protection.as_dict() if res.config.protection is not None else None},
        **(extra or {}),
        "metrics": res.metrics,
    }
    text = json.dumps(head, default=_json_default, allow_nan=False)
    yield text[:-1] + ', "trades": ['
    for lo in range(0, len(res.trades), batch):
        part = json.dumps(trade_dicts(res, lo, lo + batch), default=_json_default, allow_nan=False)
        yield ("" if lo == 0 else ", ") + part[1:-1]
    yield "]}"


def to_json(res: BacktestResult, extra: dict[str, Any] | None = None) -> str:
    return "".join(json_chunks(res, extra))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, Decimal):
        return str(o)
    raise TypeError(type(o).__name__)


def money(x: float) -> Decimal:
    return Decimal(repr(float(x))).quantize(Decimal("0.00000001"))


_SAVE_BATCH = 10_000


async def save_result(db: Any, res: BacktestResult, *, exchange: str | None = None, symbol: str | None = None,
                      timeframe: str | None = None, data_source: str | None = None) -> int:
    """One ``backtest_results`` row and its trades in ``backtest_trades`` (one row each, written in
    batches), in one transaction."""
    from sqlalchemy import insert

    from ..storage import BacktestResult as Row
    from ..storage import BacktestTrade

    row = Row(
        created_ms=int(time.time() * 1000),
        strategy=res.strategy,
        params=res.params,
        exchange=exchange,
        symbol=symbol,
        timeframe=timeframe,
        data_source=data_source,
        start_ms=int(res.ts[0]) if len(res.ts) else None,
        end_ms=int(res.ts[-1]) if len(res.ts) else None,
        cash=money(res.config.cash),
        final_equity=money(res.final_equity),
        metrics=json.loads(json.dumps(res.metrics, default=_json_default)),
        trades=[],
    )
    table = BacktestTrade.__table__  # type: ignore[attr-defined]
    async with db.session() as s:
        s.add(row)
        await s.flush()
        result_id = int(row.id or 0)
        for lo in range(0, len(res.trades), _SAVE_BATCH):
            await s.execute(insert(table), trade_rows(res, result_id, lo, lo + _SAVE_BATCH))
        await s.commit()
    return result_id


def trade_rows(res: BacktestResult, result_id: int, lo: int, hi: int) -> list[dict[str, Any]]:
    """``backtest_trades`` rows for trades lo:hi."""
    rows = trade_dicts(res, lo, hi)
    for i, d in enumerate(rows, start=lo):
        d.pop("entry_time")
        d.pop("exit_time")
        if d["open"]:
            d["exit_price"] = d.pop("mark_price")
        d["result_id"], d["seq"] = result_id, i
    return rows
