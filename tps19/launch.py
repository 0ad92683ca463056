"""What the entry points start around the engine: the embedded simulated exchange, and the engine.

The engine only knows "a ccxt venue at these URLs". With ``exchange.id == "sim"`` and no
``exchange.rest_url``, the entry point (the CLI, the desk, a test) starts a SimExchange on
127.0.0.1 first, hands the engine settings pointing at it, and stops it after the engine, also
when the engine fails or a signal ends the run.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from .config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET, Settings, is_sim

if TYPE_CHECKING:
    from .engine.engine import Engine
    from .simex import SimExchange


class SimStartError(OSError):
    """A simulated venue could not start (its message names the venue)."""


def needs_embedded_sim(settings: Settings) -> bool:
    return is_sim(settings.exchange.id) and not settings.exchange.rest_url


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


async def start_embedded_sim(settings: Settings, **options: Any) -> tuple[Settings, SimExchange]:
    """Start a SimExchange for ``settings`` (its host, port, seed and balances, for the configured
    or the demo keys; ``options`` override SimExchange's arguments) and return settings pointing
    the engine at it, with the running exchange. The caller stops it."""
    from .simex import SimExchange

    ex = settings.exchange
    cls: type[SimExchange] = SimExchange
    if ex.id == "sim-binance":
        from .simex.binance import BinanceSimExchange

        cls = BinanceSimExchange
    api_key = _secret(ex.api_key) or SIM_DEMO_API_KEY
    secret = _secret(ex.secret) or SIM_DEMO_SECRET
    sim_settings = settings.sim
    kwargs: dict[str, Any] = {
        "host": sim_settings.host,
        "port": sim_settings.port,
        "seed": sim_settings.seed,
        "accounts": {api_key: (secret, dict(sim_settings.starting_balances))},
    }
    sim = cls(**(kwargs | options))
    await sim.start()
    exchange = ex.model_copy(update={"id": ex.id, "rest_url": sim.base_url, "ws_url": None})
    return settings.model_copy(update={"exchange": exchange}), sim


@contextlib.asynccontextmanager
async def embedded_venue_sims(plans: list[Any], **options: Any) -> AsyncIterator[tuple[list[Any], dict[str, SimExchange]]]:
    """The simulated venues of a run with several (``plans``: multivenue.VenuePlan), started and
    stopped together; yields the plans pointed at them (real venues unchanged) and the exchanges.

    One market, several venues: every simulated venue has the same history and opening prices
    (``settings.sim.seed``), its own order flow (its own seed), and follows the first simulated
    venue's fair value the way arbitrage ties real venues together, so one instrument quotes
    around one price with a spread of a few bp between venues (two independent markets showed a
    1,256 bp "edge" that no real pair of venues has). ``options``: SimExchange arguments."""
    from .engine.multivenue import VenuePlan

    sims: dict[str, SimExchange] = {}
    pointed = []
    leader: SimExchange | None = None
    try:
        for i, p in enumerate(plans):
            if not needs_embedded_sim(p.settings):
                pointed.append(p)
                continue
            follow = {} if leader is None else {"anchor": leader.flow.fair}
            try:
                s, sim = await start_embedded_sim(p.settings, flow_seed=p.settings.sim.seed + 1000 * i, **follow,
                                                  **options)
            except OSError as err:  # e.g. the configured port is taken
                raise SimStartError(f"cannot start the simulated exchange for {p.venue}: {err}") from err
            leader = leader or sim
            sims[p.venue] = sim
            pointed.append(VenuePlan(p.venue, s))
        yield pointed, sims
    finally:
        for sim in sims.values():
            await sim.stop()


def build_engine(settings: Settings, mode: str = "paper", strategy: Any = None, shadow: Any = None,
                 record_dir: Any = None) -> Engine:
    """The one place an entry point builds the Engine (settings already point at a venue)."""
    from .engine.engine import Engine

    return Engine(settings, mode, strategy=strategy, shadow=shadow, record_dir=record_dir)


@contextlib.asynccontextmanager
async def history_client(exchange_id: str, *, seed: int = 19) -> AsyncIterator[Any]:
    """A rate-limited ccxt async client for history downloads; ``sim`` starts a simulated exchange
    for the duration (a fresh seeded market, no accounts needed)."""
    from .engine.history import open_client

    if not is_sim(exchange_id):
        async with open_client(exchange_id) as client:
            yield client
        return
    from .simex import SimExchange

    cls: type[SimExchange] = SimExchange
    if exchange_id == "sim-binance":
        from .simex.binance import BinanceSimExchange

        cls = BinanceSimExchange
    sim = cls(port=0, seed=seed)
    await sim.start()
    try:
        async with open_client(exchange_id, rest_url=sim.base_url) as client:
            yield client
    finally:
        await sim.stop()
