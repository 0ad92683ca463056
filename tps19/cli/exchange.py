"""`tps19 exchange`: run the embedded simulated Crypto.com Exchange v1 as a standalone server.

Only typer is imported at module level (``tps19 --help`` must stay fast).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import typer

from .common import fail

DIALECTS = ("cryptocom", "binance")

_HELP = """Run the simulated exchange: REST + websockets on one port, speaking Crypto.com Exchange v1
(default) or Binance spot (--dialect binance). Both dialects share one venue core: matching engine,
accounts, demo keys, synthetic market and fault switchboard.

Point any ccxt `cryptocom` client at it by swapping scheme and host of its urls:

\b
  ex.urls['api']['v1']            = 'http://HOST:PORT/exchange/v1'
  ex.urls['api']['ws']['public']  = 'ws://HOST:PORT/exchange/v1/market'
  ex.urls['api']['ws']['private'] = 'ws://HOST:PORT/exchange/v1/user'

or, in Python: `from tps19.simex import point_ccxt; point_ccxt(ex, 'http://HOST:PORT')`.
Trade with the demo key/secret (tps19.config SIM_DEMO_API_KEY / SIM_DEMO_SECRET) or
your own --api-key/--secret (never printed). Point TPS19 itself at it with
TPS19_EXCHANGE__REST_URL=http://HOST:PORT (and the same key in TPS19_EXCHANGE__API_KEY /
TPS19_EXCHANGE__SECRET if not the demo one). Stops on Ctrl-C / SIGTERM.

With --dialect binance, point any ccxt `binance` client at it (spot only:
options={'fetchMarkets': {'types': ['spot']}, 'fetchCurrencies': False}):

\b
  every ex.urls['api'][...] on api.binance.com  -> 'http://HOST:PORT' + its path (/api/v3, /sapi/v1)
  ex.urls['api']['ws']['spot']                  = 'ws://HOST:PORT/ws'
  ex.urls['api']['ws']['ws-api']['spot']        = 'ws://HOST:PORT/ws-api/v3'

or `from tps19.engine.venue import point_ccxt_binance; point_ccxt_binance(ex, 'http://HOST:PORT')`.
Signed calls need timestamp within recvWindow (default 5000 ms) and the HMAC signature; request
weights are counted per IP (6000 per minute: 429 + Retry-After beyond, 418 for a client that does
not wait). Point TPS19 at it with TPS19_EXCHANGE__ID=sim-binance TPS19_EXCHANGE__REST_URL=http://HOST:PORT.

A signed request is accepted once: the same body again within the 60 s nonce window is
refused with 40006 DUPLICATE_REQUEST, a nonce more than 60 s off with 40102 INVALID_NONCE.

--control-port C serves a fault switchboard on 127.0.0.1:C (JSON; a bad parameter is a 400
naming it), to chaos-test a bot, e.g. `curl -X POST 'http://127.0.0.1:C/faults/gap?symbol=BTC/USDT'`:

\b
  POST /faults/drop                                 close every websocket (code 1013)
  POST /faults/gap?symbol=S                         next book delta of S skips a sequence number
  POST /faults/silence?seconds=N[&symbol=S]         no market data for N s (heartbeats go on)
  POST /faults/garbage?count=N                      N malformed frames on every market websocket
  POST /faults/http?status=503&count=N              fail the next N REST calls with that status
  POST /faults/accept-then-fail?status=504&count=N  process the next N create-orders, then fail
  POST /faults/lag?ms=N                             market data arrives N ms late (0: off)
  POST /faults/delay?ms=N                           every reply N ms late (0: off)
  POST /faults/shock?symbol=S&pct=P                 S jumps P % in one step (book, prints, candles)
  POST /faults/clear                                every switch off
  GET  /faults                                      the switches as JSON
"""


def exchange(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8765, "--port", min=0, max=65535, help="TCP port (0 picks a free one)."),
    seed: int = typer.Option(19, "--seed", help="Seed of the synthetic order flow and candle history."),
    api_key: str = typer.Option(None, "--api-key", help="API key of the trading account (default: the demo key)."),
    secret: str = typer.Option(None, "--secret", help="Secret of that key (default: the demo secret)."),
    balance: list[str] = typer.Option(None, "--balance", help="Starting balance CCY=AMOUNT, repeatable "
                                      "(default USDT=100000 BTC=1 ETH=10 SOL=100)."),
    updates_per_second: float = typer.Option(60.0, "--rate", min=0.0, help="Synthetic book events per second (all symbols)."),
    control_port: int = typer.Option(None, "--control-port", min=0, max=65535,
                                     help="Serve the fault switchboard on 127.0.0.1 at this port (0 picks a free one)."),
    dialect: str = typer.Option("cryptocom", "--dialect", help="Wire protocol: 'cryptocom' (Exchange v1) or 'binance' (spot)."),
) -> None:
    import asyncio

    from ..config import SIM_DEMO_API_KEY, SIM_DEMO_SECRET
    from ..numbers import NumberError, to_float

    try:
        to_float(updates_per_second, "--rate")  # typer reads "inf" and "1e999" as infinity
    except NumberError as err:
        fail(str(err))
    balances = _balances(balance)
    key = api_key or SIM_DEMO_API_KEY
    sec = secret or (SIM_DEMO_SECRET if key == SIM_DEMO_API_KEY else None)
    if not sec:
        fail("--secret is required with --api-key")
    dialect = dialect.strip().lower()
    if dialect not in DIALECTS:
        fail(f"--dialect must be one of {', '.join(DIALECTS)}, not {dialect[:20]!r}")
    asyncio.run(_serve(host, port, seed, key, sec, balances, updates_per_second, control_port, dialect))


def _balances(items: list[str] | None) -> dict[str, Decimal]:
    """--balance CCY=AMOUNT flags as starting balances (the default ones if none is given)."""
    from ..numbers import NumberError, to_decimal
    from ..simex.server import DEFAULT_BALANCES

    if not items:
        return dict(DEFAULT_BALANCES)
    balances = {}
    for item in items:
        ccy, sep, amount = item.partition("=")
        if not sep or not ccy.strip():
            fail(f"--balance {item!r} is not CCY=AMOUNT")
        try:
            balances[ccy.strip().upper()] = to_decimal(amount, f"--balance {ccy.strip().upper()}", non_negative=True)
        except NumberError as err:
            fail(str(err))
    return balances


async def _serve(host: str, port: int, seed: int, key: str, secret: str, balances: dict[str, Decimal],
                 updates_per_second: float, control_port: int | None, dialect: str = "cryptocom") -> None:
    """Serve until SIGINT/SIGTERM; a port that cannot be bound is one line and exit 1."""
    import asyncio
    import signal

    from ..simex import SimExchange

    cls: type[SimExchange] = SimExchange
    if dialect == "binance":
        from ..simex.binance import BinanceSimExchange

        cls = BinanceSimExchange
    sim = cls(host=host, port=port, seed=seed, accounts={key: (secret, balances)},
                      updates_per_second=updates_per_second)
    try:
        await sim.start()
    except OSError as err:
        fail(f"cannot listen on {host}:{port}: {err.strerror or err}", code=1)
    control = None
    if control_port is not None:
        from ..simex.control import CONTROL_HOST, ControlServer

        try:
            control = await ControlServer(sim, control_port).start()
        except OSError as err:
            await sim.stop()
            fail(f"cannot listen on {CONTROL_HOST}:{control_port}: {err.strerror or err}", code=1)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover
            pass
    _announce(sim, key, control)
    try:
        await stop.wait()
    finally:
        if control is not None:
            await control.stop()
        await sim.stop()
    typer.echo("simulated exchange stopped")


def _announce(sim: Any, key: str, control: Any) -> None:
    from ..config import SIM_DEMO_API_KEY

    # The key is never printed (a terminal scrollback or a captured log is not a secret store).
    which = ("the demo key (tps19.config SIM_DEMO_API_KEY)" if key == SIM_DEMO_API_KEY
             else "the one given with --api-key")
    ws = sim.base_url.replace('http', 'ws', 1)
    if getattr(sim, "dialect", "") == "binance":
        typer.echo(f"simulated exchange (Binance spot) on {sim.base_url}/api/v3  (streams {ws}/ws and {ws}/stream, "
                   f"WebSocket API {ws}/ws-api/v3)  symbols {', '.join(i.symbol for i in sim.instruments)}  "
                   f"api key: {which}")
        exchange_id = "TPS19_EXCHANGE__ID=sim-binance "
    else:
        typer.echo(f"simulated exchange on {sim.base_url}/exchange/v1  "
                   f"(ws {ws}/exchange/v1/market|user)  "
                   f"symbols {', '.join(i.symbol for i in sim.instruments)}  api key: {which}")
        exchange_id = ""
    typer.echo(f"point tps19 at it: {exchange_id}TPS19_EXCHANGE__REST_URL={sim.base_url}"
               + ("" if key == SIM_DEMO_API_KEY else
                  " with that key and secret in TPS19_EXCHANGE__API_KEY / TPS19_EXCHANGE__SECRET"))
    if control is not None:
        typer.echo(f"fault switchboard on {control.base_url}/faults  (see tps19 exchange --help)")


def register(app: typer.Typer) -> None:
    app.command("exchange", help=_HELP)(exchange)
