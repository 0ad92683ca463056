"""The `tps19` command line.

Only typer is imported at module level: `tps19 --help` must answer fast, so every command
imports the engine, ccxt, pandas or Textual inside its own body. Commands of a larger area
live in `cli_<area>.py` modules that register themselves on `app`.
"""

from __future__ import annotations

import sys

import typer

from . import __version__

app = typer.Typer(
    name="tps19",
    help="TPS19: a terminal trading desk for crypto markets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> None:
    """One clear line on stderr and a non-zero exit: never a traceback."""
    typer.echo(f"tps19: {message}", err=True)
    raise typer.Exit(code)


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
    from . import cli_desk

    cli_desk.register(app)
    for name in ("cli_exchange", "cli_backtest", "cli_trading"):
        try:
            module = __import__(f"{__package__}.{name}", fromlist=["register"])
        except ModuleNotFoundError as err:
            if err.name != f"{__package__}.{name}":
                raise
            continue
        module.register(app)


_register_areas()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
