"""`tps19 paper` and `tps19 live`: the desk, or the same engine headless."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from .common import DB_HELP, protection_flags, stop_loss_option, take_profit_option, trailing_stop_option

HELP = {
    "paper": "The desk on live market data with simulated (paper) fills.",
    "live": "The desk placing REAL orders; every order is confirmed at the keyboard.",
}
EXCHANGE_HELP = {
    "paper": "'sim' (default: embedded simulated exchange, Crypto.com dialect), 'sim-binance' (its Binance "
             "dialect) or a ccxt id. Repeatable: several venues at once (the desk's v screen, or --no-ui).",
    "live": "A ccxt id, or 'sim' / 'sim-binance' with the simulated venue's keys. Repeatable.",
}


def _desk_command(mode: str) -> Callable[..., None]:
    # paper and live take the same flags; only the mode (and so the broker) differs.
    def command(
        exchange: list[str] = typer.Option(None, "--exchange", help=EXCHANGE_HELP[mode]),
        symbol: list[str] = typer.Option(None, "--symbol", help="ccxt unified symbol, repeatable (e.g. BTC/USDT); "
                                         "with several venues VENUE:SYMBOL is that venue's only."),
        no_ui: bool = typer.Option(False, "--no-ui", help="Run headless, logging JSON lines."),
        db: str = typer.Option(None, "--db", help=DB_HELP),
        log_file: Path = typer.Option(None, "--log-file", help="With --no-ui: write JSON lines here, not stdout."),
        strategy: str = typer.Option(None, "--strategy", help="Run a strategy (see `tps19 strategies`); with several "
                                      "venues VENUE:NAME, the venue it trades (every symbol watched there)."),
        param: list[str] = typer.Option(None, "--param", help="Strategy parameter key=value, repeatable."),
        metrics_port: int = typer.Option(None, "--metrics-port", min=0, max=65535,
                                         help="With --no-ui: Prometheus /metrics and /healthz on this port "
                                              "(127.0.0.1 unless TPS19_METRICS__HOST)."),
        adopt_holdings: bool = typer.Option(
            False, "--adopt-holdings",
            help="Let the strategy manage holdings it did not buy (default: it starts flat and trades only its own)."),
        shadow: str = typer.Option(None, "--shadow", help="A model id to run in shadow: it predicts on the same bars "
                                   "and its decisions are stored, but it sends no orders."),
        sizing: str = typer.Option(None, "--sizing", help="Position sizing of the strategy's targets: fixed, "
                                                          "fixed_fractional, vol_target, kelly (docs/risk.md)."),
        sizing_param: list[str] = typer.Option(None, "--sizing-param", help="Sizing parameter key=value, repeatable."),
        record: Path = typer.Option(None, "--record", help="Record the venue's frames and this session's orders, "
                                    "fills and decisions to this directory (Parquet; docs/replay.md); with several "
                                    "venues each to DIR/VENUE (`tps19 replay` reads sim's, not yet sim-binance's)."),
        retrain_every: str = typer.Option(None, "--retrain-every", help="With --strategy ml: retrain on this schedule "
                                          "(1d, 6h, ...) in a worker process; the new model runs in shadow (docs/ml.md)."),
        retrain_on_drift: bool = typer.Option(False, "--retrain-on-drift", help="With --strategy ml: retrain when a "
                                              "feature's PSI passes TPS19_ML__PSI_WARN."),
        auto_promote: bool = typer.Option(False, "--auto-promote", help="A challenger that passes the promotion test "
                                          "replaces the champion in the running engine (otherwise it is proposed)."),
        cluster: str = typer.Option(None, "--cluster", help="With --retrain-every/--retrain-on-drift: retrain on this "
                                    "Dask cluster, tcp://HOST:PORT (its scheduler; TPS19_ML__CLUSTER). Unreachable: the "
                                    "local worker process, with a warning (docs/ml.md)."),
        stop_loss: float = stop_loss_option(),
        take_profit: float = take_profit_option(),
        trailing_stop: float = trailing_stop_option(),
        api_port: int = typer.Option(None, "--api-port", min=0, max=65535,
                                     help="Serve the control API on this port (127.0.0.1 unless TPS19_API__HOST; "
                                          "needs TPS19_API__TOKEN; read-only in live unless TPS19_API__LIVE_ORDERS)."),
        allow_remote: bool = typer.Option(False, "--allow-remote",
                                          help="Let the control API listen on a non-loopback TPS19_API__HOST."),
        cost_basis: list[str] = typer.Option(None, "--cost-basis",
                                             help="CCY=PRICE, repeatable: holdings the account already had enter "
                                                  "their position at this price, so their P&L shows."),
    ) -> None:
        from ..run import run_desk, run_venues

        protection = protection_flags(stop_loss, take_profit, trailing_stop)
        if protection is not None and strategy is None:
            from .common import fail

            fail("--stop-loss/--take-profit/--trailing-stop apply to a strategy's entries: add --strategy "
                 "(the ticket places stops on manual orders)")

        lifecycle = {"retrain_every": retrain_every, "retrain_on_drift": retrain_on_drift, "auto_promote": auto_promote,
                     "cluster": cluster}
        if exchange and len(exchange) > 1:
            run_venues(mode, exchanges=exchange, symbols=symbol, no_ui=no_ui, db=db, log_file=log_file,
                       strategy=strategy, params=param, metrics_port=metrics_port, adopt_holdings=adopt_holdings,
                       shadow=shadow, sizing=sizing, sizing_params=sizing_param, record_dir=record,
                       lifecycle=lifecycle, protection=protection, api_port=api_port, allow_remote=allow_remote,
                       refused={"--cost-basis": cost_basis or None})
            return
        run_desk(mode, exchange=_single_venue(exchange), symbols=_own_symbols(exchange, symbol), no_ui=no_ui, db=db,
                 log_file=log_file, strategy=_own_strategy(exchange, strategy), params=param,
                 metrics_port=metrics_port, adopt_holdings=adopt_holdings, shadow=shadow, sizing=sizing,
                 sizing_params=sizing_param, record_dir=record, lifecycle=lifecycle, protection=protection,
                 api_port=api_port, allow_remote=allow_remote, cost_basis=cost_basis)

    command.__doc__ = HELP[mode]
    return command


def _single_venue(exchange: list[str] | None) -> str | None:
    return exchange[0] if exchange else None


def _own_symbols(exchange: list[str] | None, symbols: list[str] | None) -> list[str] | None:
    """With one venue, VENUE:SYMBOL names that venue (or is an error naming the venues given)."""
    if not symbols:
        return symbols
    from ..engine.multivenue import VenuePlanError, split_symbol
    from ..run import fail

    venue = (exchange[0] if exchange else "sim").strip().lower()
    try:
        return [split_symbol(s, [venue])[1] for s in symbols]
    except VenuePlanError as err:
        fail(str(err))
        raise  # unreachable


def _own_strategy(exchange: list[str] | None, strategy: str | None) -> str | None:
    """With one venue, --strategy VENUE:NAME may name it (or is an error naming the venue given)."""
    if not strategy:
        return strategy
    from ..engine.multivenue import VenuePlanError, strategy_venue
    from ..run import fail

    try:
        return strategy_venue(strategy, [(exchange[0] if exchange else "sim").strip().lower()])[1]
    except VenuePlanError as err:
        fail(str(err))
        raise  # unreachable


def register(app: typer.Typer) -> None:
    for mode in ("paper", "live"):
        app.command(name=mode, help=HELP[mode])(_desk_command(mode))
