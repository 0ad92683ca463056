"""Glue between the CLI and the engine: settings from flags, live-mode checks, UI or headless."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import typer

from .config import SIM_DEMO_API_KEY, ConfigError, Settings, load_settings


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"tps19: {message}", err=True)
    raise typer.Exit(code)


def settings_from_flags(exchange: str | None, symbols: list[str] | None, db: Path | None) -> Settings:
    overrides: dict[str, object] = {}
    try:
        base = load_settings()
        if exchange:
            overrides["exchange"] = base.exchange.model_dump() | {"id": exchange}
        if symbols:
            overrides["symbols"] = base.symbols.model_dump() | {"watch": symbols}
        if db:
            overrides["database"] = {"path": db}
        return load_settings(**overrides) if overrides else base
    except ConfigError as err:
        fail(str(err))
        raise  # unreachable


def live_refusal(settings: Settings) -> str | None:
    """Why `tps19 live` must not start with these settings, or None."""
    try:
        from .engine.trading import check_live_allowed
    except ImportError:
        check_live_allowed = None
    if check_live_allowed is not None:
        return check_live_allowed(settings)
    ex = settings.exchange
    if ex.api_key is None or ex.secret is None:
        return "live trading needs TPS19_EXCHANGE__API_KEY and TPS19_EXCHANGE__SECRET"
    if ex.id == "sim" and ex.api_key.get_secret_value() != SIM_DEMO_API_KEY:
        return "--exchange sim in live mode only with the simulated venue's own keys"
    return None


def make_strategy(name: str | None, params: list[str] | None) -> object:
    if not name:
        if params:
            fail("--param needs --strategy")
        return None
    from .engine.strategies.registry import create

    try:
        return create(name, params or [])
    except Exception as err:  # unknown name, unknown or invalid parameter
        fail(f"strategy {name}: {str(err).splitlines()[0]}")
        raise  # unreachable


def run_desk(mode: str, *, exchange: str | None, symbols: list[str] | None, no_ui: bool, db: Path | None,
             log_file: Path | None, strategy: str | None = None, params: list[str] | None = None) -> None:
    settings = settings_from_flags(exchange, symbols, db)
    strat = make_strategy(strategy, params)
    if mode == "live":
        reason = live_refusal(settings)
        if reason:
            fail(f"refusing to start LIVE: {reason}")
    if no_ui:
        from .engine.headless import run_headless

        code = asyncio.run(run_headless(settings, mode, log_file or settings.log.file, strategy=strat))
        # Everything is stopped, flushed and closed. The interpreter's last GC passes over
        # ccxt's and the simulator's heap took 1.3-1.6 s of the signal-to-exit time on a busy
        # machine; frozen objects are skipped (benchmarks/stop_cycles.py).
        gc.freeze()
        raise typer.Exit(code)
    try:
        from .app import DeskApp
    except ImportError:
        fail("the desk UI is not built yet: run with --no-ui")
        return
    from .engine.engine import Engine

    # The app starts an engine it is handed but has not seen started, and stops it on quit.
    app = DeskApp(settings=settings, mode=mode, engine=Engine(settings, mode, strategy=strat))
    from .desk_signals import DeskSignals

    DeskSignals(app).install()
    app.run()
    raise typer.Exit(app.return_code or 0)
