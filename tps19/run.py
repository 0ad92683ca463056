"""Glue between the CLI and the engine: settings from flags, live-mode checks, UI or headless."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import typer

from .config import ConfigError, Settings, load_settings
from .launch import build_engine, needs_embedded_sim, start_embedded_sim


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"tps19: {message}", err=True)
    raise typer.Exit(code)


def settings_from_flags(exchange: str | None, symbols: list[str] | None, db: str | Path | None,
                        adopt_holdings: bool = False) -> Settings:
    overrides: dict[str, object] = {}
    try:
        base = load_settings()
        if exchange:
            overrides["exchange"] = base.exchange.model_dump() | {"id": exchange}
        if symbols:
            overrides["symbols"] = base.symbols.model_dump() | {"watch": symbols}
        if db:
            from .dburl import is_db_url

            overrides["database"] = {"url": db, "path": base.database.path} if is_db_url(db) else {"path": db, "url": None}
        if adopt_holdings:
            overrides["strategy"] = base.strategy.model_dump() | {"adopt_holdings": True}
        return load_settings(**overrides) if overrides else base
    except ConfigError as err:
        fail(str(err))
        raise  # unreachable


def with_cost_basis(settings: Settings, items: list[str]) -> Settings:
    """``--cost-basis CCY=PRICE ...`` over the configured ones; a bad pair is one line."""
    from pydantic import ValidationError

    from .config import HoldingsSettings

    basis = dict(settings.holdings.cost_basis)
    for item in items:
        ccy, sep, price = item.partition("=")
        if not sep or not ccy.strip() or not price.strip():
            fail(f"--cost-basis {item[:40]!r} is not CCY=PRICE (e.g. BTC=60000)")
        basis[ccy.strip().upper()] = price.strip()  # type: ignore[assignment]
    try:
        holdings = HoldingsSettings(cost_basis=basis)
    except ValidationError as err:
        fail(f"--cost-basis: {str(err.errors()[0].get('msg', 'invalid')).removeprefix('Value error, ')}")
    return settings.model_copy(update={"holdings": holdings})


def make_strategy(name: str | None, params: list[str] | None, db: Path | None = None) -> object:
    if not name:
        if params:
            fail("--param needs --strategy")
        return None
    from .engine.strategies.registry import create

    try:
        return create(name, params or [], db=db)
    except Exception as err:  # unknown name, unknown or invalid parameter
        fail(f"strategy {name}: {str(err).splitlines()[0]}")
        raise  # unreachable


def with_sizing(settings: Settings, name: str | None, params: list[str] | None) -> Settings:
    """--sizing/--sizing-param for this run: the same rule the backtest's flags build."""
    from .engine.risk.sizing import SizingError, parse_sizing

    try:
        rule = parse_sizing(name or settings.risk.sizing, params)
    except SizingError as err:
        fail(str(err))
        raise  # unreachable
    risk = settings.risk.model_copy(update={"sizing": rule.name, "sizing_params": rule.params})
    return settings.model_copy(update={"risk": risk})


def run_desk(mode: str, *, exchange: str | None, symbols: list[str] | None, no_ui: bool, db: str | Path | None,
             log_file: Path | None, strategy: str | None = None, params: list[str] | None = None,
             metrics_port: int | None = None, adopt_holdings: bool = False, shadow: str | None = None,
             sizing: str | None = None, sizing_params: list[str] | None = None,
             record_dir: Path | None = None, lifecycle: dict[str, Any] | None = None,
             protection: Any = None, api_port: int | None = None, allow_remote: bool = False,
             cost_basis: list[str] | None = None) -> None:
    settings = settings_from_flags(exchange, symbols, db, adopt_holdings)
    if cost_basis:
        settings = with_cost_basis(settings, cost_basis)
    settings = _with_api_port(settings, api_port, allow_remote)
    settings = _strategy_settings(settings, protection, lifecycle, strategy, params, sizing, sizing_params)
    if metrics_port is not None:
        if not no_ui:
            fail("--metrics-port needs --no-ui (metrics are served by the headless engine)")
        settings = settings.model_copy(update={"metrics": settings.metrics.model_copy(update={"port": metrics_port})})
    # a strategy that reads the database (the `ml` registry) gets the file; a server's URL may
    # carry a password, so it is read from the settings instead of a parameter
    db_file = None if settings.database.url is not None else settings.database.path
    strat = make_strategy(strategy, params, db_file)
    shadow_strat = make_shadow(shadow, strat, db_file)
    if mode == "live":
        from .engine.assembly import check_live_allowed

        reason = check_live_allowed(settings)
        if reason:
            fail(f"refusing to start LIVE: {reason}")
    check_schema(settings)
    if no_ui:
        code = asyncio.run(_headless(settings, mode, log_file or settings.log.file, strat, shadow_strat, record_dir))
        # Everything is stopped, flushed and closed. The interpreter's last GC passes over
        # ccxt's and the simulator's heap took 1.3-1.6 s of the signal-to-exit time on a busy
        # machine; frozen objects are skipped (benchmarks/stop_cycles.py).
        gc.freeze()
        raise typer.Exit(code)
    raise typer.Exit(asyncio.run(_desk(settings, mode, strat, shadow_strat, record_dir)))


# Flags refused with several venues, and why (the refusal and docs/venues.md say the same).
NOT_WITH_SEVERAL_VENUES = {
    "--cost-basis": "a cost basis belongs to one account's holdings and there is no VENUE:CCY=PRICE form yet: "
                    "set it in a one-venue run (it is stored with that venue's positions)",
}


def run_venues(mode: str, *, exchanges: list[str], symbols: list[str] | None, no_ui: bool, db: str | Path | None,
               log_file: Path | None, strategy: str | None = None, params: list[str] | None = None,
               metrics_port: int | None = None, adopt_holdings: bool = False, shadow: str | None = None,
               sizing: str | None = None, sizing_params: list[str] | None = None, record_dir: Path | None = None,
               lifecycle: dict[str, Any] | None = None, protection: Any = None, api_port: int | None = None,
               allow_remote: bool = False, refused: dict[str, object] | None = None) -> None:
    """Several venues at once (tps19.engine.multivenue): one engine per venue. A strategy names
    the venue it trades (``--strategy VENUE:NAME``); its flags (--param, --shadow, --sizing,
    --adopt-holdings, stops, retraining) apply to that venue. --record records every venue (one
    directory each), --metrics-port labels every series with its venue, --api-port serves one API
    over every venue."""
    from .engine.multivenue import VenuePlanError, check_live_allowed_all, plan_venues, strategy_venue

    given = [name for name, value in (refused or {}).items() if value]
    if given:
        fail(f"{given[0]} is refused with several venues: {NOT_WITH_SEVERAL_VENUES[given[0]]} (docs/venues.md)")
    settings = settings_from_flags(None, None, db)
    settings = _with_api_port(settings, api_port, allow_remote)
    if metrics_port is not None:
        if not no_ui:
            fail("--metrics-port needs --no-ui (metrics are served by the headless engine)")
        settings = settings.model_copy(update={"metrics": settings.metrics.model_copy(update={"port": metrics_port})})
    try:
        plans = plan_venues(settings, exchanges, symbols)
        where, name = strategy_venue(strategy, [p.venue for p in plans]) if strategy else (None, None)
    except VenuePlanError as err:
        fail(str(err))
        raise  # unreachable
    if where is None and (params or shadow or sizing or sizing_params or adopt_holdings or protection is not None
                          or any((lifecycle or {}).values())):
        make_strategy(None, params)  # "--param needs --strategy"
        fail("--shadow / --sizing / --adopt-holdings / stops / retraining apply to a strategy: add "
             "--strategy VENUE:NAME")
    db_file = None if settings.database.url is not None else settings.database.path
    strat = shadow_strat = None
    for i, p in enumerate(plans):
        if p.venue != where:
            continue
        s = p.settings
        if adopt_holdings:
            s = s.model_copy(update={"strategy": s.strategy.model_copy(update={"adopt_holdings": True})})
        s = _strategy_settings(s, protection, lifecycle, name, params, sizing, sizing_params)
        plans[i] = type(p)(p.venue, s)
        strat = make_strategy(name, params, db_file)
        shadow_strat = make_shadow(shadow, strat, db_file)
    if mode == "live":
        reason = check_live_allowed_all(plans)
        if reason:
            fail(f"refusing to start LIVE: {reason}")
    check_schema(settings)
    run = _RunParts(strategy_venue=where, strategy=strat, shadow=shadow_strat, record_dir=record_dir)
    if no_ui:
        code = asyncio.run(_headless_venues(plans, mode, log_file or settings.log.file, settings.report.currency, run))
        gc.freeze()
        raise typer.Exit(code)
    raise typer.Exit(asyncio.run(_desk_venues(plans, mode, settings.report.currency, run)))


@dataclasses.dataclass(frozen=True)
class _RunParts:
    """What one run adds to its venues' engines: the strategy (and its shadow) on one venue, the recording."""

    strategy_venue: str | None = None
    strategy: Any = None
    shadow: Any = None
    record_dir: Path | None = None

    def engines(self, pointed: list, mode: str) -> dict[str, Any]:
        out = {}
        for p in pointed:
            mine = p.venue == self.strategy_venue
            # each venue records to its own directory: a recording is one venue's session
            record = self.record_dir / p.venue if self.record_dir is not None else None
            out[p.venue] = build_engine(p.settings, mode, self.strategy if mine else None,
                                        self.shadow if mine else None, record)
        return out


def _with_api_port(settings: Settings, api_port: int | None, allow_remote: bool) -> Settings:
    if api_port is not None:
        settings = settings.model_copy(update={"api": settings.api.model_copy(update={"port": api_port})})
    if settings.api.port is not None:
        from .engine.api.server import api_problem

        problem = api_problem(settings.api, allow_remote)
        if problem:
            fail(f"refusing to start the API: {problem}")
    return settings


def _strategy_settings(settings: Settings, protection: Any, lifecycle: dict[str, Any] | None, strategy: str | None,
                       params: list[str] | None, sizing: str | None, sizing_params: list[str] | None) -> Settings:
    """The strategy's flags over the settings of the venue it trades: stops, retraining, sizing."""
    if protection is not None:
        # --stop-loss/--take-profit/--trailing-stop: this run's exits on every strategy entry
        stops = settings.stops.model_copy(update={"stop_loss_pct": protection.stop_loss_pct,
                                                  "take_profit_pct": protection.take_profit_pct,
                                                  "trailing_pct": protection.trailing_pct})
        settings = settings.model_copy(update={"stops": stops})
    settings = with_lifecycle(settings, lifecycle or {}, strategy, params)
    if sizing or sizing_params:
        settings = with_sizing(settings, sizing, sizing_params)
    return settings


async def _headless_venues(plans: list, mode: str, log_file: Path | None, currency: str, run: _RunParts) -> int:
    from .engine.headless_venues import run_headless_venues
    from .engine.multivenue import VenueSet

    async with _venues(plans) as pointed:
        return await run_headless_venues(VenueSet(run.engines(pointed, mode), report_currency=currency), log_file)


async def _desk_venues(plans: list, mode: str, currency: str, run: _RunParts) -> int:
    from .desk.app import DeskApp
    from .desk.signals import DeskSignals
    from .engine.multivenue import VenueSet

    async with _venues(plans) as pointed:
        venues = VenueSet(run.engines(pointed, mode), report_currency=currency)
        app = DeskApp(settings=pointed[0].settings, mode=mode, venues=venues)
        DeskSignals(app).install()
        async with _desk_api(venues):
            await app.run_async()
        try:  # the desk is gone: what this run did, per venue and in total, on the terminal it ran in
            summary = venues.session_lines(mode)
        except Exception as err:  # never a traceback after the desk closed cleanly
            summary = [f"session summary unavailable: {type(err).__name__}: {err}"]
        for line in summary:
            print(line, flush=True)
        return app.return_code or 0


@contextlib.asynccontextmanager
async def _venues(plans: list) -> AsyncIterator[list]:
    """The simulated venues started (one market, one port and order flow each: launch.py), stopped
    after the engines, however the run ends."""
    from .launch import SimStartError, embedded_venue_sims

    try:
        async with embedded_venue_sims(plans) as (pointed, _sims):
            yield pointed
    except SimStartError as err:
        fail(str(err))


def with_lifecycle(settings: Settings, flags: dict[str, Any], strategy: str | None,
                   params: list[str] | None) -> Settings:
    """--retrain-every / --retrain-on-drift / --auto-promote / --cluster over TPS19_ML__* (one-line errors)."""
    update = {k: v for k, v in flags.items() if v}
    if not update:
        return settings
    try:
        ml = settings.ml.model_validate(settings.ml.model_dump() | update)
    except ValueError as err:
        fail(one_line_error(err))
    if (ml.retrain_every or ml.retrain_on_drift) and strategy != "ml":
        fail("--retrain-every / --retrain-on-drift need --strategy ml --param model=ID (the champion to retrain)")
    if flags.get("cluster") and not (ml.retrain_every or ml.retrain_on_drift):
        fail("--cluster in paper/live runs the model's retrains: add --retrain-every or --retrain-on-drift")
    return settings.model_copy(update={"ml": ml})


def one_line_error(err: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        first = err.errors()[0]
        return str(first.get("msg", err)).removeprefix("Value error, ")
    return str(err).splitlines()[0]


def check_schema(settings: Settings) -> None:
    """An older (or newer) schema is refused here in one line, before any screen or engine."""
    from .engine.storage import Database, SchemaOutdated, SchemaTooNew

    try:
        asyncio.run(Database(settings.database.target).check_schema())
    except (SchemaOutdated, SchemaTooNew) as err:
        fail(str(err))
    except Exception:  # noqa: S110  (cannot connect, unreadable: the engine's start reports it)
        pass


def make_shadow(model_id: str | None, strategy: object, db: Path | None) -> object:
    """The `ml` strategy of ``model_id``, to run in shadow beside ``strategy`` (no orders)."""
    if not model_id:
        return None
    if strategy is None:
        fail("--shadow needs --strategy (the champion whose orders the shadow model does not send)")
    return make_strategy("ml", [f"model={model_id}"], db)


async def _headless(settings: Settings, mode: str, log_file: Path | None, strategy: object,
                    shadow: object = None, record_dir: Path | None = None) -> int:
    from .engine.headless import run_headless

    async with _venue(settings) as pointed:
        return await run_headless(build_engine(pointed, mode, strategy, shadow, record_dir), log_file)


async def _desk(settings: Settings, mode: str, strategy: object, shadow: object = None,
                record_dir: Path | None = None) -> int:
    from .desk.app import DeskApp
    from .desk.signals import DeskSignals

    async with _venue(settings) as pointed:
        # The app starts the engine it is handed (not started yet) and stops it on quit; the
        # simulated exchange, if any, is stopped after that, on leaving this block.
        engine = build_engine(pointed, mode, strategy, shadow, record_dir)
        app = DeskApp(settings=pointed, mode=mode, engine=engine)
        DeskSignals(app).install()
        async with _desk_api(engine):
            await app.run_async()
        trading = app.engine.trading if app.engine is not None else None
        session = getattr(trading, "session", None)
        if session is not None:  # the desk is gone: what this run did, on the terminal it ran in
            for line in session.lines():
                print(line, flush=True)
        return app.return_code or 0


@contextlib.asynccontextmanager
async def _desk_api(engine: Any) -> AsyncIterator[None]:
    """The control API beside the desk (--api-port), named in the desk's log once it runs;
    ``engine`` is one engine or the VenueSet of a run with several venues (one API over them)."""
    engines = list(engine.engines.values()) if getattr(engine, "engines", None) is not None else [engine]
    cfg = engines[0].settings.api
    if cfg.port is None:
        yield
        return
    from .engine.api.server import ApiServer

    api = ApiServer(engine, cfg)
    try:
        url = await api.start()
    except OSError as err:
        fail(f"cannot serve the API on {cfg.host}:{cfg.port}: {err.strerror or err}")

    async def announce() -> None:
        while all(e.started_at is None for e in engines):
            await asyncio.sleep(0.2)
        for e in engines:
            e.log("info", "control API listening", url=f"{url}/api/v1", docs=f"{url}/api/v1/docs")

    told = asyncio.create_task(announce())
    try:
        yield
    finally:
        told.cancel()
        await api.stop()


@contextlib.asynccontextmanager
async def _venue(settings: Settings) -> AsyncIterator[Settings]:
    """Settings pointing at the venue: the embedded simulated exchange is started here, before the
    engine, and stopped after it, however the run ends."""
    sim = None
    if needs_embedded_sim(settings):
        try:
            settings, sim = await start_embedded_sim(settings)
        except OSError as err:  # e.g. the configured sim port is taken
            fail(f"cannot start the simulated exchange: {err}")
    try:
        yield settings
    finally:
        if sim is not None:
            await sim.stop()
