"""What every command of the CLI shares: the one-line failure, flag checks, the database path.

Only typer at module level (``tps19 --help`` must stay fast)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

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


def db_path(db: Path | None) -> Path:
    if db is not None:
        return db
    from ..config import ConfigError, load_settings

    try:
        return load_settings().database.path
    except ConfigError as err:
        fail(str(err))


def bad_input_errors() -> tuple[type[BaseException], ...]:
    from ..engine.history.quality import DataError
    from ..engine.strategies import ParamError

    return (ParamError, DataError, ValueError)


def one_line(err: BaseException) -> str:
    """A network or exchange error as ``Type: first line`` (ccxt messages can run to pages)."""
    return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
