"""`tps19 paper` and `tps19 live`: the desk, or the same engine headless."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def paper(
        exchange: str = typer.Option(None, "--exchange", help="'sim' (default: embedded simulated exchange) or a ccxt id."),
        symbol: list[str] = typer.Option(None, "--symbol", help="ccxt unified symbol, repeatable (e.g. BTC/USDT)."),
        no_ui: bool = typer.Option(False, "--no-ui", help="Run headless, logging JSON lines."),
        db: Path = typer.Option(None, "--db", help="SQLite file (default from TPS19_DATABASE__PATH)."),
        log_file: Path = typer.Option(None, "--log-file", help="With --no-ui: write JSON lines here, not stdout."),
        strategy: str = typer.Option(None, "--strategy", help="Run a strategy (see `tps19 strategies`)."),
        param: list[str] = typer.Option(None, "--param", help="Strategy parameter key=value, repeatable."),
    ) -> None:
        """The desk on live market data with simulated (paper) fills."""
        from .run import run_desk

        run_desk("paper", exchange=exchange, symbols=symbol, no_ui=no_ui, db=db, log_file=log_file,
                 strategy=strategy, params=param)

    @app.command()
    def live(
        exchange: str = typer.Option(None, "--exchange", help="A ccxt id, or 'sim' with the simulated venue's keys."),
        symbol: list[str] = typer.Option(None, "--symbol", help="ccxt unified symbol, repeatable."),
        no_ui: bool = typer.Option(False, "--no-ui", help="Run headless, logging JSON lines."),
        db: Path = typer.Option(None, "--db", help="SQLite file."),
        log_file: Path = typer.Option(None, "--log-file", help="With --no-ui: write JSON lines here, not stdout."),
        strategy: str = typer.Option(None, "--strategy", help="Run a strategy (see `tps19 strategies`)."),
        param: list[str] = typer.Option(None, "--param", help="Strategy parameter key=value, repeatable."),
    ) -> None:
        """The desk placing REAL orders; every order is confirmed at the keyboard."""
        from .run import run_desk

        run_desk("live", exchange=exchange, symbols=symbol, no_ui=no_ui, db=db, log_file=log_file,
                 strategy=strategy, params=param)
