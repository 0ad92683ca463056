"""What one run did, for the desk's closing lines and the headless `summary` line: fills, fees,
realised P&L booked this run, unrealised P&L now, equity at the start (the first figure that
valued every holding) and at the end. Figures as ``tps19/figures.py`` writes them."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..events import BookEvent
from .events import FillEvent, PortfolioUpdate

if TYPE_CHECKING:
    from .portfolio import Portfolio


class Session:
    def __init__(self, portfolio: Portfolio, bus: Any) -> None:
        self.portfolio = portfolio
        self.fills = 0
        self.start_totals = portfolio.totals()
        self.equity_start: Decimal | None = None
        if bus is not None:
            bus.on(FillEvent, self._fill)
            bus.on(PortfolioUpdate, self._update)
            # and at the book that completed the marks (after the portfolio took it: registered
            # later), not only at the mark publisher's next pass: a replay at max speed can be over
            # before that pass, and its start then read as its end
            bus.on(BookEvent, self._book)

    def _fill(self, _: Any) -> None:
        self.fills += 1

    def _book(self, _: Any) -> None:
        if self.equity_start is None:
            eq, unpriced = self.portfolio.equity()
            if not unpriced:
                self.equity_start = eq

    def _update(self, e: Any) -> None:
        if self.equity_start is None and not e.unpriced:
            self.equity_start = e.equity

    def figures(self) -> dict[str, Any]:
        """This run's figures, exact (Decimal; None where not known), in the valuation currency:
        what ``summary`` writes, and what a total over several venues adds up before rounding."""
        pf = self.portfolio
        t = pf.totals()
        eq, unpriced = pf.equity()
        return {"fills": self.fills, "fees": t["fees"] - self.start_totals["fees"],
                "realized_pnl": t["realized_pnl"] - self.start_totals["realized_pnl"],
                "unrealized_pnl": t["unrealized_pnl"], "equity_start": self.equity_start,
                "equity_end": None if unpriced else eq}

    def summary(self) -> dict[str, Any]:
        from ...figures import fee, money

        pf = self.portfolio
        val = pf.valuation
        f = self.figures()
        out: dict[str, Any] = {
            "mode": pf.mode, "fills": f["fills"], "fees": fee(f["fees"]),
            "realized_pnl": money(f["realized_pnl"], val), "unrealized_pnl": money(f["unrealized_pnl"], val),
            "equity_start": None if f["equity_start"] is None else money(f["equity_start"], val),
            "equity_end": None if f["equity_end"] is None else money(f["equity_end"], val), "currency": val}
        # held, but no market of this venue values them (a replay lists only the recorded symbols):
        # both equity figures leave them out, so they are not the recorded session's equity
        if excluded := pf.excluded():
            out["excluded"] = excluded
        return out

    def lines(self) -> list[str]:
        """The summary for a person, as printed when the desk closes."""
        s = self.summary()
        return summary_lines(f"session ({s['mode']})", s)


def summary_lines(title: str, s: dict[str, Any]) -> list[str]:
    """A ``summary`` (one venue's, or the total over several: ``fills``, ``fees``, ``realized_pnl``,
    ``unrealized_pnl``, ``equity_start``, ``equity_end``, ``currency``; ``excluded`` when equity leaves
    currencies out) as the terminal shows it when
    the desk closes: the same strings, only grouped."""
    cur = s["currency"]

    def grouped(x: str | None) -> str:
        return "n/a" if x is None else f"{Decimal(x):,f}"

    lines = [f"{title}: {s['fills']} fill(s), fees {s['fees']} {cur} (quote value)",
             f"  realised P&L {grouped(s['realized_pnl'])} {cur}, unrealised P&L {grouped(s['unrealized_pnl'])} {cur}",
             f"  equity {grouped(s['equity_start'])} -> {grouped(s['equity_end'])} {cur}"]
    if s.get("excluded"):
        lines[-1] += f" leaving out {', '.join(s['excluded'])} (held; no market on the venue values them)"
    return lines
