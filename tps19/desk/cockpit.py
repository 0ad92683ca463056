"""The desk's look-back screens, opened from the desk: log (`l`), history (`h`), P&L (`p`).

A mixin of ``DeskApp`` (kept apart so that app.py stays about the engine, the pump and orders).
The screens read the engine only through its query functions (``TradingHistory``) and the
events the desk already folded into its state.
"""

from __future__ import annotations

from typing import Any

from .screens.logview import LogScreen


class CockpitScreens:
    """Actions for the look-back screens; needs DeskApp's ``engine``, ``state``, ``settings``."""

    engine: Any
    state: Any
    settings: Any
    mode: str
    symbols: list[str]

    def _trading_history(self) -> Any:
        """The engine's history queries for this mode, or None when there is no trading layer."""
        engine = self.engine
        if engine is None or getattr(engine, "trading", None) is None or getattr(engine, "db", None) is None:
            return None
        from ..engine.trading.history import TradingHistory

        # this venue's rows only: one database may hold several venues' orders for the same mode
        return TradingHistory(engine.db, mode=self.mode, exchange=engine.trading.store.exchange,
                              markets=getattr(engine, "markets", None))

    def log_facts(self) -> list[tuple[str, str]]:
        venue = getattr(self.state, "venue", None)
        name = venue.name if venue is not None else self.settings.exchange.id
        facts = [("mode", self.mode), ("venue", str(name)), ("database", str(self.settings.database.path))]
        log_file = getattr(self.settings.log, "file", None)
        if log_file:
            facts.append(("log file", str(log_file)))
        facts.append(("symbols", ", ".join(self.symbols)))
        return facts

    def action_log_screen(self) -> None:
        if isinstance(self.screen, LogScreen):  # type: ignore[attr-defined]
            return
        self.push_screen(LogScreen(self.log_facts(), self.log_events()))  # type: ignore[attr-defined]

    def action_history(self) -> None:
        from .screens.history import HistoryScreen

        if isinstance(self.screen, HistoryScreen):  # type: ignore[attr-defined]
            return
        places = self._places()  # type: ignore[attr-defined]
        venue = self.focus if self.venues is not None else ""  # type: ignore[attr-defined]
        self.push_screen(HistoryScreen(self._trading_history(), self.symbols, places, venue))  # type: ignore[attr-defined]

    def action_performance(self) -> None:
        from .screens.performance import PerformanceScreen

        if isinstance(self.screen, PerformanceScreen):  # type: ignore[attr-defined]
            return
        strategy = getattr(self.engine, "strategy", None)
        name = getattr(strategy, "name", "") if strategy is not None else ""
        running = [name] if name else []
        venue = self.focus if self.venues is not None else ""  # type: ignore[attr-defined]
        self.push_screen(PerformanceScreen(self._trading_history(), self.state, running, venue))  # type: ignore[attr-defined]
