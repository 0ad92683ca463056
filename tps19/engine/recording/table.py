"""The divergence ledger as a rich Table: `tps19 divergence` and the desk's screen draw this one."""

from __future__ import annotations

from typing import Any


def ledger_table(report: Any) -> Any:
    from rich.table import Table

    led = report.ledger
    t = Table(title=f"divergence: {report.mode} session ({report.session_orders} orders) vs its strategy at bar close",
              caption=("a replay at the recorded points reproduces every fill" if report.replay_matches
                       else "a replay at the recorded points does NOT reproduce the session's fills"))
    t.add_column("cause")
    t.add_column("amount", justify="right")
    t.add_column("bp of notional", justify="right")
    for cause, amount in led.causes.items():
        t.add_row(cause.replace("_", " "), f"{amount:.4f}", f"{led.bp(amount):+.2f}")
    t.add_row("[b]gap[/b] (session - reference)", f"[b]{led.gap:.4f}[/b]", f"[b]{led.bp(led.gap):+.2f}[/b]")
    t.add_row("reference P&L", f"{led.reference_pnl:.4f}", "")
    t.add_row("session P&L", f"{led.subject_pnl:.4f}", "")
    bars = getattr(report, "bar_backtest", None)
    if bars is not None:
        t.add_row(f"bar backtest P&L ({bars.bars} bars, {bars.trades} fills)", f"{bars.pnl:.4f}", "")
        t.add_row("[b]gap[/b] (session - bar backtest)", f"[b]{bars.gap:.4f}[/b]", f"[b]{led.bp(bars.gap):+.2f}[/b]")
    return t
