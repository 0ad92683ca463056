"""`tps19 serve`: the desk in a browser, through textual-serve.

Every browser session runs its own `tps19 paper|live` desk process (textual-serve starts the
command per connection and streams its screen over a websocket). Beyond loopback, and always
with --live, a password (TPS19_SERVE__PASSWORD) guards every page and websocket; the server
(tps19/serve/) throttles failed logins and hands each desk its settings through the
environment, never its command line.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import typer

from ..dburl import is_db_url
from ..loopback import is_loopback
from .common import db_label, fail

def desk_command(live: bool, exchange: str | None, symbols: list[str] | None,
                 strategy: str | None, params: list[str] | None) -> list[str]:
    """The `tps19 paper|live ...` each browser session runs (this interpreter, this install).
    No database here: a URL may carry a password and a command line is public (``ps``); the
    desk gets it as TPS19_DATABASE__URL/PATH in its environment (server.child_env)."""
    argv = [sys.executable, "-m", "tps19.cli", "live" if live else "paper"]
    if exchange:
        argv += ["--exchange", exchange]
    for s in symbols or []:
        argv += ["--symbol", s]
    if strategy:
        argv += ["--strategy", strategy]
    for p in params or []:
        argv += ["--param", p]
    return argv


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (loopback unless --allow-remote)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    allow_remote: bool = typer.Option(False, "--allow-remote",
                                      help="Listen on a non-loopback address (needs TPS19_SERVE__PASSWORD)."),
    live: bool = typer.Option(False, "--live", help="Serve the LIVE desk (real orders; needs TPS19_SERVE__PASSWORD)."),
    public_url: str = typer.Option(None, "--public-url",
                                   help="The URL browsers use when a TLS proxy is in front, e.g. https://desk.example.org."),
    exchange: str = typer.Option(None, "--exchange", help="'sim' (default) or a ccxt id."),
    symbol: list[str] = typer.Option(None, "--symbol", help="ccxt unified symbol, repeatable."),
    db: str = typer.Option(None, "--db", help="SQLite file or postgresql+asyncpg:// URL (default: TPS19_DATABASE__URL, else __PATH)."),
    strategy: str = typer.Option(None, "--strategy", help="Run a strategy (see `tps19 strategies`)."),
    param: list[str] = typer.Option(None, "--param", help="Strategy parameter key=value, repeatable."),
) -> None:
    """The desk in a browser (textual-serve): one desk process per browser session, behind a login."""
    remote = not is_loopback(host)
    if remote and not allow_remote:
        fail(f"--host {host} is not a loopback address: add --allow-remote (and set TPS19_SERVE__PASSWORD) "
             "to serve the desk there")
    if public_url is not None and not public_url.lower().startswith(("http://", "https://")):
        fail(f"--public-url {public_url[:80]!r} must start with http:// or https://")
    from ..run import make_strategy, settings_from_flags
    from ..serve.login import password_problem

    # what each session's desk would refuse, refused once here (a browser would only see it exit)
    settings = settings_from_flags(exchange, symbol, db)
    password = settings.serve.password
    problem = password_problem(password)
    if problem and (remote or live or password is not None):
        why = "beyond loopback" if remote else "with --live (other users of this machine reach its loopback)" \
            if live else "when a password is set"
        fail(f"refusing to serve the desk {why}: {problem}; every page and websocket needs a login there")
    make_strategy(strategy, param)
    if live:
        from ..engine.assembly import check_live_allowed

        reason = check_live_allowed(settings)
        if reason:
            fail(f"refusing to serve LIVE: {reason}")
    _check_port_free(host, port)
    from ..serve.login import Guard
    from ..serve.server import DeskServer, child_env

    title = "TPS19 LIVE" if live else "TPS19 paper"
    url = public_url or f"http://{host}:{port}"
    guard = Guard(password, title=title, public_url=url)
    target = settings.database.target
    banner = [f"tps19 serve: the {'LIVE' if live else 'paper'} desk on {url}/ "
              f"({'login required' if guard.required else 'no login: loopback only'}), "
              f"one desk process per browser session, database {db_label(target)}",
              "tps19 serve: Ctrl+C or SIGTERM stops it and every desk it started"]
    argv = desk_command(live, exchange, symbol, strategy, param)
    env = child_env(str(db) if db else None, bool(db) and is_db_url(db))
    DeskServer(argv, env, guard, host=host, port=port, title=title, public_url=public_url,
               banner=banner).serve()


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
