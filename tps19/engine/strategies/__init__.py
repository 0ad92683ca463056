"""Strategies: one API from history to live (see docs/backtesting.md)."""

from .base import ParamError, PortfolioView, SignalFrame, SimplePortfolio, Strategy, StrategyParams
from .registry import create, describe, get, names, parse_kv, register
from .signals import Signal, SignalEvent

__all__ = [
    "ParamError",
    "PortfolioView",
    "Signal",
    "SignalEvent",
    "SignalFrame",
    "SimplePortfolio",
    "Strategy",
    "StrategyParams",
    "create",
    "describe",
    "get",
    "names",
    "parse_kv",
    "register",
]
