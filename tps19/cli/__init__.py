"""The `tps19` command line.

Only typer is imported at module level: `tps19 --help` must answer fast, so every command
imports the engine, ccxt, pandas or Textual inside its own body. Commands of a larger area
live in a module of this package that registers them on `app`.
"""

from __future__ import annotations

import importlib
import os
import sys

# pydantic looks for plugins in every installed distribution's entry points on the first model
# it builds (~25 ms of importlib.metadata per command); TPS19 uses none. An explicit setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402

from .. import __version__

AREAS = ("desk", "exchange", "history", "backtest", "db", "serve", "ml", "risk", "replay", "notify")
# the module of this package that registers each command (tests/test_cli_areas.py checks it against
# what the modules register): a command run from a shell builds only its own area, since typer
# converts every registered command's options to click's on each start (~20 ms of CPU for all)
AREA_OF = {
    "paper": "desk", "live": "desk", "exchange": "exchange", "strategies": "history", "fetch": "history",
    "import": "history", "backtest": "backtest", "optimize": "backtest", "db": "db", "serve": "serve",
    "train": "ml", "models": "ml", "risk": "risk", "rebalance": "risk", "backtest-portfolio": "risk",
    "record": "replay", "replay": "replay", "divergence": "replay", "notify": "notify",
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tps19 {__version__}")
        raise typer.Exit()


def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """TPS19: a terminal trading desk for crypto markets."""


def build_app(areas: tuple[str, ...] = AREAS) -> typer.Typer:
    """The command line with the commands of ``areas`` (modules of this package)."""
    cli = typer.Typer(
        name="tps19",
        help="TPS19: a terminal trading desk for crypto markets.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    cli.callback()(_root)
    for area in areas:
        importlib.import_module(f"{__name__}.{area}").register(cli)
    return cli


def __getattr__(name: str) -> typer.Typer:
    # `app`, every command (tests, `tps19.cli.app`), is built on first use, not at import
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    # `tps19 COMMAND ...` builds COMMAND's area only; anything else (--help, --version, a typo
    # that deserves "No such command" with suggestions) the whole command line
    first = sys.argv[1] if len(sys.argv) > 1 else ""
    cli = build_app((AREA_OF[first],)) if first in AREA_OF else build_app()
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
