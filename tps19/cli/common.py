"""What every command of the CLI shares: the one-line failure, flag checks, the database path.

Only typer at module level (``tps19 --help`` must stay fast)."""

from __future__ import annotations

from pathlib import Path

from ..dburl import is_db_url
from typing import Any, NoReturn

import typer


def fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr and a non-zero exit: never a traceback."""
    typer.echo(f"tps19: {message}", err=True)
    raise typer.Exit(code)


def parse_time(value: str | None, name: str) -> int | None:
    """The flag ``name``'s time in epoch ms, or a one-line failure naming the flag."""
    from ..engine.history import parse_time_value

    try:
        return parse_time_value(value)
    except ValueError:
        fail(f"bad {name} {value!r}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM or epoch milliseconds")


def check_numbers(**flags: float) -> None:
    """Typer reads '1e999' as inf and 'nan' as NaN: refuse them (and absurd sizes) naming the flag."""
    from ..numbers import NumberError, to_float

    for name, value in flags.items():
        try:
            to_float(value, "--" + name.replace("_", "-"))
        except NumberError as err:
            fail(str(err))


# Piped to a file or a program, a table is not cut to the 80 columns rich assumes there: no width limit.
UNCUT_WIDTH = 10_000


def console(stderr: bool = False) -> Any:
    """The CLI's rich Console: on a terminal its width; otherwise wide enough never to cut a table."""
    import sys

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    tty = bool(getattr(stream, "isatty", lambda: False)())
    return Console(stderr=stderr, width=None if tty else UNCUT_WIDTH)


def stop_loss_option() -> Any:
    return typer.Option(None, "--stop-loss", help="Stop-loss on every entry, % of the entry price (2 = 2 %); "
                        "wins over a sizing rule's stop (docs/orders.md).")


def take_profit_option() -> Any:
    return typer.Option(None, "--take-profit", help="Take-profit on every entry, % of the entry price.")


def trailing_stop_option() -> Any:
    return typer.Option(None, "--trailing-stop", help="Trailing stop on every entry, % below the highest price "
                        "since entry (above the lowest for a short).")


def protection_flags(stop_loss: float | None, take_profit: float | None, trailing_stop: float | None) -> Any:
    """``--stop-loss/--take-profit/--trailing-stop`` as an engine ``Protection`` (None when none
    is given); a bad value ends with one line naming the flag."""
    check_numbers(**{k: v for k, v in (("stop_loss", stop_loss), ("take_profit", take_profit),
                                        ("trailing_stop", trailing_stop)) if v is not None})
    from ..engine.protection import ProtectionError, parse_protection

    try:
        return parse_protection(stop_loss, take_profit, trailing_stop)
    except ProtectionError as err:
        fail(str(err))


DB_HELP = "SQLite file or postgresql+asyncpg:// URL (default: TPS19_DATABASE__URL, else TPS19_DATABASE__PATH)."


def db_path(db: str | Path | None) -> str | Path:
    """``--db`` as given (a SQLite path or a PostgreSQL URL), else the configured database."""
    if db:
        return db if is_db_url(db) else Path(db)
    from ..config import ConfigError, load_settings

    try:
        return load_settings().database.target
    except ConfigError as err:
        fail(str(err))


def db_label(db: str | Path) -> str:
    """The database as messages show it: a URL without its password."""
    if not is_db_url(db):
        return str(db)
    from sqlalchemy.engine import make_url

    try:
        return make_url(str(db)).render_as_string(hide_password=True)
    except Exception:
        return str(db).split("@")[-1]


def bad_input_errors() -> tuple[type[BaseException], ...]:
    from ..engine.history.quality import DataError
    from ..engine.strategies import ParamError

    return (ParamError, DataError, ValueError)


def one_line(err: BaseException) -> str:
    """A network or exchange error as ``Type: first line`` (ccxt messages can run to pages)."""
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
