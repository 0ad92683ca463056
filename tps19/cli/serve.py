"""`tps19 serve`: the desk in a browser, through textual-serve.

Every browser session runs its own `tps19 paper|live` desk process (textual-serve starts the
command per connection and streams its screen over a websocket). There is no authentication
yet: whoever reaches the port drives the desk, so it listens on loopback unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import shlex
import socket
import sys
from pathlib import Path

import typer

from .common import fail

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def desk_command(live: bool, exchange: str | None, symbols: list[str] | None, db: str | Path | None,
                 strategy: str | None, params: list[str] | None) -> list[str]:
    """The `tps19 paper|live ...` each browser session runs (this interpreter, this install)."""
    argv = [sys.executable, "-m", "tps19.cli", "live" if live else "paper"]
    if exchange:
        argv += ["--exchange", exchange]
    for s in symbols or []:
        argv += ["--symbol", s]
    if db is not None:
        argv += ["--db", str(db)]
    if strategy:
        argv += ["--strategy", strategy]
    for p in params or []:
        argv += ["--param", p]
    return argv


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless --allow-remote)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    allow_remote: bool = typer.Option(False, "--allow-remote",
                                      help="Listen on a non-loopback address: anyone reaching it drives the desk."),
    live: bool = typer.Option(False, "--live", help="Serve the LIVE desk (real orders) instead of paper."),
    exchange: str = typer.Option(None, "--exchange", help="'sim' (default) or a ccxt id."),
    symbol: list[str] = typer.Option(None, "--symbol", help="ccxt unified symbol, repeatable."),
    db: str = typer.Option(None, "--db", help="SQLite file or postgresql+asyncpg:// URL (default: TPS19_DATABASE__URL, else __PATH)."),
    strategy: str = typer.Option(None, "--strategy", help="Run a strategy (see `tps19 strategies`)."),
    param: list[str] = typer.Option(None, "--param", help="Strategy parameter key=value, repeatable."),
) -> None:
    """The desk in a browser (textual-serve): one desk process per browser session."""
    if not is_loopback(host):
        if not allow_remote:
            fail(f"--host {host} is not a loopback address and the desk has no login yet: "
                 "add --allow-remote to serve it there anyway")
        typer.echo(f"tps19: WARNING: serving the desk on {host}:{port} with NO authentication: anyone who can "
                   "reach this port can trade on it. Prefer 127.0.0.1 and an SSH tunnel.", err=True)
    from ..run import make_strategy, settings_from_flags

    # what each session's desk would refuse, refused once here (a browser would only see it exit)
    settings = settings_from_flags(exchange, symbol, db)
    make_strategy(strategy, param)
    if live:
        from ..engine.trading import check_live_allowed

        reason = check_live_allowed(settings)
        if reason:
            fail(f"refusing to serve LIVE: {reason}")
    _check_port_free(host, port)
    from textual_serve.server import Server

    command = shlex.join(desk_command(live, exchange, symbol, db, strategy, param))
    Server(command, host=host, port=port, title="TPS19 LIVE" if live else "TPS19 paper").serve()


def _check_port_free(host: str, port: int) -> None:
    """A taken port is one line here, not a traceback from inside aiohttp."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        fail(f"cannot listen on {host}:{port}: {err.strerror or err}")
    family, kind, proto, _, addr = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as err:
            fail(f"cannot listen on {host}:{port}: {err.strerror or err}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
