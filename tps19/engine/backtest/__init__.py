"""Backtesting: vectorised engine, metrics, optimisation (see docs/backtesting.md)."""

from .engine import BacktestConfig, BacktestResult, Fill, Trade, check_no_lookahead, run_backtest, simulate
from .metrics import compute_metrics, max_drawdown

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "Fill",
    "Trade",
    "check_no_lookahead",
    "compute_metrics",
    "max_drawdown",
    "run_backtest",
    "simulate",
]
