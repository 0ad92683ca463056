"""The `tps19` command line.

Only typer is imported at module level: `tps19 --help` must answer fast, so every command
imports the engine, ccxt, pandas or Textual inside its own body. Commands of a larger area
live in a module of this package that registers them on `app`.
"""

from __future__ import annotations

import os
import sys

# pydantic looks for plugins in every installed distribution's entry points on the first model
# it builds (~25 ms of importlib.metadata per command); TPS19 uses none. An explicit setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402

from .. import __version__

app = typer.Typer(
    name="tps19",
    help="TPS19: a terminal trading desk for crypto markets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tps19 {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """TPS19: a terminal trading desk for crypto markets."""


def _register_areas() -> None:
    from . import backtest, db, desk, exchange, history, ml, notify, replay, risk, serve

    for area in (desk, exchange, history, backtest, db, serve, ml, risk, replay, notify):
        area.register(app)


_register_areas()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
