"""`tps19 train` and `tps19 models [show ID | compare A B]` (docs/ml.md).

Only typer at module level: sklearn, pandas and the engine load inside the commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .common import DB_HELP, bad_input_errors, check_numbers, db_path, fail, parse_time

models_app = typer.Typer(help="The model registry: list, show and compare trained models.", no_args_is_help=False)


def train(
    model: str = typer.Option("auto", "--model", help="auto (logreg, lasso and hgb on the same folds, the best CV AUC kept) | logreg | lasso | hgb | rf."),
    horizon: int = typer.Option(5, "--horizon", help="Label: sign of the forward return over N bars."),
    threshold_bps: float = typer.Option(0.0, "--threshold-bps", help="Returns within +-B bps are 'no trade': not trained on nor scored (the report counts them)."),
    folds: int = typer.Option(5, "--folds", help="Walk-forward test folds."),
    embargo: int = typer.Option(0, "--embargo", help="Bars after each test fold never trained on."),
    jobs: int = typer.Option(1, "--jobs", min=1, max=64, help="CV folds fitted in parallel (processes)."),
    cluster: str = typer.Option(None, "--cluster", help="Fit the CV folds on a Dask cluster: tcp://HOST:PORT (its scheduler)."),
    fee: float = typer.Option(None, "--fee", help="Fee per position change when trading the out-of-fold predictions "
                              "(default: the taker rate of the venue the bars come from, else 0.001)."),
    seed: int = typer.Option(19, "--seed", help="Seed of the model, the random-entries baseline and the AUC bootstrap."),
    data: Path = typer.Option(None, "--data", help="CSV/Parquet OHLCV file."),
    exchange: str = typer.Option(None, "--exchange", help="Stored bars of this exchange (default sim)."),
    symbol: str = typer.Option(None, "--symbol", help="Symbol of the stored bars."),
    timeframe: str = typer.Option("1m", "--timeframe", help="Timeframe of the stored bars."),
    since: str = typer.Option(None, "--since", help="Start (UTC)."),
    until: str = typer.Option(None, "--until", help="End (UTC, exclusive)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Train a model with purged walk-forward CV and register it."""
    from rich.console import Console

    from .backtest import load_data

    console = Console(stderr=json_out)
    from .backtest import fee_for

    fee, _source = fee_for(fee, data, exchange, symbol)
    check_numbers(threshold_bps=threshold_bps, fee=fee)
    try:
        from ..engine.ml.train import TrainConfig

        if cluster:
            from ..engine.distributed import check_address

            cluster = check_address(cluster)
            jobs = -1  # every worker thread of the cluster (joblib runs n_jobs=1 in-process, backend or not)
        from ..config import ConfigError, load_settings

        try:
            threads = load_settings().ml.threads
        except ConfigError as err:
            fail(str(err))
        cfg = TrainConfig(model=model, horizon=horizon, threshold_bps=threshold_bps, folds=folds, embargo=embargo,
                          seed=seed, fee=fee, jobs=jobs, threads=threads)
        df, meta = load_data(data, exchange, symbol, timeframe, parse_time(since, "--since"),
                             parse_time(until, "--until"), db, json_out, console)
        import asyncio

        from ..engine.storage import StorageError

        try:
            row = asyncio.run(_train_and_register(df, cfg, meta, db_path(db), cluster))
        except StorageError as err:  # the registry's database (older schema, locked, unwritable): one line
            fail(str(err))
    except bad_input_errors() as err:
        fail(str(err).splitlines()[0])
    report = train_report(row)
    if json_out:
        typer.echo(json.dumps(report))
    else:
        print_report(report, console)


async def _train_and_register(df: Any, cfg: Any, meta: dict[str, Any], path: str | Path, cluster: str | None = None) -> Any:
    """Training in a worker thread (the loop stays free), a progress bar on stderr, then the registry."""
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..engine.ml import registry
    from ..engine.ml.train import train as fit
    from ..engine.storage import Database

    # 2 refreshes a second, not rich's 10: the bar moves once per fold anyway, and the refresh
    # thread's wake-ups cost CPU for the whole (wall) run time (~1 % of a core in a terminal)
    with Progress(TextColumn(f"training {cfg.model}: folds + final fit"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True), refresh_per_second=2) as prog:
        task = prog.add_task("train", total=None)

        def cb(done: int, total: int) -> None:
            prog.update(task, completed=done, total=total)

        if cluster:
            from ..engine.distributed import on_cluster

            result = await asyncio.to_thread(on_cluster, cluster, fit, df, cfg, cb)
        else:
            result = await asyncio.to_thread(fit, df, cfg, cb)
    d = Database(path)
    await d.open()
    try:
        return await registry.save(d, result, meta)
    finally:
        await d.close()


def train_report(row: Any) -> dict[str, Any]:
    return {
        "model_id": row.id, "model": row.kind,
        "features": {"version": row.feature_version, "names": list(row.features)},
        "data": {"start_ms": row.start_ms, "end_ms": row.end_ms, "bars": row.bars, "exchange": row.exchange,
                 "symbol": row.symbol, "timeframe": row.timeframe, "source": row.data_source},
        "params": row.params, "cv": row.cv, "oos": row.oos, "libraries": row.libraries,
        "content_hash": row.content_hash, "artifact": row.artifact, "created_ms": row.created_ms,
        "lineage": getattr(row, "lineage", None),
    }


def _f(x: Any, pct: bool = False, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    return f"{x * 100:.2f}%" if pct else f"{x:.{digits}f}"


def _short(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%m-%d %H:%M")


def _when(ms: int | None) -> str:
    from ..engine.ml.strategy import format_ms

    return format_ms(ms) if ms is not None else "n/a"


def print_report(rep: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    cv, oos, data = rep["cv"], rep["oos"], rep["data"]
    console.print(f"[bold]{rep['model_id']}[/] ({rep['model']}, features {rep['features']['version']}) on "
                  f"{data['bars']} bars {_when(data['start_ms'])} .. {_when(data['end_ms'])}")
    from rich import box

    t = Table(title="purged walk-forward CV (out-of-fold)", box=box.SIMPLE_HEAD, padding=(0, 0))
    for c in ("fold", "test bars (UTC)", "train", "test", "auc", "acc", "prec", "recall", "logloss"):
        t.add_column(c, justify="right", no_wrap=True)
    scores = ("roc_auc", "accuracy", "precision", "recall", "log_loss")
    for f in cv["folds"]:
        t.add_row(str(f["fold"]), f"{_short(f['test_start_ms'])}..{_short(f['test_end_ms'])}", str(f["train_rows"]),
                  str(f["test_rows"]), *(_f(f[k], digits=3) for k in scores))
    t.add_row("all", "", "", str(cv["rows"]), *(_f(cv[k], digits=3) for k in scores), style="bold")
    console.print(t)
    sel = cv.get("selection")
    if sel and len(sel.get("candidates", {})) > 1:
        s = Table(title="--model auto: candidates on the same folds (kept: the higher pooled AUC)", box=box.SIMPLE_HEAD)
        for c in ("model", "auc", "95% interval", "logloss", "acc", ""):
            s.add_column(c, justify="right")
        for kind, f in sel["candidates"].items():
            ci = f.get("roc_auc_ci95") or [None, None]
            s.add_row(kind, _f(f["roc_auc"], digits=3), f"{_f(ci[0], digits=3)}..{_f(ci[1], digits=3)}",
                      _f(f["log_loss"], digits=3), _f(f["accuracy"], digits=3), "kept" if kind == sel["chosen"] else "")
        console.print(s)
    for line in honesty_lines(rep):
        console.print(line, markup=False, highlight=False)
    o = Table(title=f"trading the out-of-fold predictions (fee {oos['fee']}, enter > {oos['enter']}, exit < {oos['exit']}, "
                    "fills at the next bar's open)")
    rnd = oos.get("random_entries")
    cols = ["model", "trades", "buy and hold"] + (["random entries (median, 5..95%)", "p-value"] if rnd else ["coin flip"])
    for c in cols:
        o.add_column(c, justify="right")
    if rnd:
        o.add_row(_f(oos["total_return"], True), str(oos["trades"]), _f(oos["buy_and_hold"], True),
                  f"{_f(rnd['median'], True)} ({_f(rnd['p05'], True)}..{_f(rnd['p95'], True)})", _f(rnd["p_value"], digits=3))
    else:  # a model registered before the turnover-matched baseline
        o.add_row(_f(oos["total_return"], True), "n/a", _f(oos["buy_and_hold"], True), _f(oos.get("coin_flip"), True))
    console.print(o)
    if rnd:
        console.print(f"random entries: {rnd['draws']} draws with the model's {oos['trades']} trades and holding times "
                      f"(mean {_f(oos.get('mean_hold_bars'), digits=1)} bars) at random places, same fees; p-value = "
                      "share of draws doing at least as well", markup=False, highlight=False)
    console.print(f"registered as [bold]{rep['model_id']}[/]: backtest it with "
                  f"`tps19 backtest --strategy ml --param model={rep['model_id']}` on bars after {_when(data['end_ms'])}")


def honesty_lines(rep: dict[str, Any]) -> list[str]:
    """The AUC's interval and what --threshold-bps left out, in words."""
    cv = rep["cv"]
    out = []
    ci = cv.get("roc_auc_ci95")
    if ci and ci[0] is not None:
        info = cv.get("auc_interval", {})
        out.append(f"AUC {_f(cv['roc_auc'], digits=3)}, 95% interval {_f(ci[0], digits=3)}..{_f(ci[1], digits=3)} "
                   f"(block bootstrap, blocks of {info.get('block')} rows: labels overlap, so the {cv['rows']} rows "
                   f"are worth about {info.get('effective_rows', 0):.0f} independent outcomes)")
        if ci[0] <= 0.5:
            out.append("the interval includes 0.5: no evidence of skill")
    thr = cv.get("threshold")
    if thr and thr.get("bps"):
        out.append(f"--threshold-bps {thr['bps']:g} dropped {thr['test_rows_dropped']} of "
                   f"{thr['test_rows_dropped'] + thr['test_rows_scored']} test rows ({_f(thr['share_dropped'], True)}) "
                   "whose outcome moved less than the threshold: the scores above leave them out, trading does not")
    return out


def _with_db(path: str | Path, fn: Any) -> Any:
    import asyncio

    from ..engine.storage import Database, StorageError

    async def go() -> Any:
        d = Database(path)
        await d.open(create=False)  # list, show, compare: they only read
        try:
            return await fn(d)
        finally:
            await d.close()

    try:
        return asyncio.run(go())
    except StorageError as err:
        fail(str(err))


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON array."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """List the registered models (or `show ID`, `compare A B`)."""
    if ctx.invoked_subcommand is not None:
        return
    from ..engine.ml import registry

    rows = _with_db(db_path(db), registry.list_models)
    if json_out:
        typer.echo(json.dumps([train_report(r) for r in rows]))
        return
    from rich.table import Table

    if not rows:
        typer.echo("no models yet: train one with `tps19 train --data FILE` (docs/ml.md)")
        return
    from rich import box

    t = Table(title="models", box=box.SIMPLE_HEAD, padding=(0, 0))
    for c in ("id", "data (UTC)", "bars", "h", "auc", "logloss", "OOS", "B&H"):
        t.add_column(c, no_wrap=True, justify="left" if c in ("id", "data (UTC)") else "right")
    for r in rows:
        t.add_row(r.id, f"{_when(r.start_ms)[:10]}..{_when(r.end_ms)[:10]}", str(r.bars), str(r.params.get("horizon")),
                  _f(r.cv.get("roc_auc"), digits=3), _f(r.cv.get("log_loss"), digits=3),
                  _f(r.oos.get("total_return"), True), _f(r.oos.get("buy_and_hold"), True))
    _cli_console().print(t)


@models_app.command("show")
def show(
    model_id: str = typer.Argument(..., help="Model id (see `tps19 models`)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """One model: its report, and how its live/paper decisions turned out."""
    from ..engine.ml import evaluation, registry

    async def go(d: Any) -> Any:
        row = await registry.get_record(d, model_id)
        if row is None:
            return None
        return row, evaluation.live_summary(await evaluation.outcomes(d, model_id)), await evaluation.drift(d, row)

    got = _with_db(db_path(db), go)
    if got is None:
        fail(f"no model {model_id!r} (see `tps19 models`)")
    row, live, psi = got
    rep = train_report(row) | {"live": live, "drift_psi": psi}
    if json_out:
        typer.echo(json.dumps(rep))
        return

    console = _cli_console()
    print_report(rep, console)
    lin = rep.get("lineage") or {}
    if lin:
        console.print(f"lineage: trigger {lin.get('trigger')}, parent {lin.get('parent') or 'none'}, "
                      f"data {_when(lin.get('start_ms'))} .. {_when(lin.get('end_ms'))} ({lin.get('bars')} bars)",
                      markup=False, highlight=False)
        from ..engine.ml.retrain_jobs import trained_where

        where = trained_where(lin)
        if where:
            console.print(f"trained {where}", markup=False, highlight=False)
    console.print(f"live/paper: {live['resolved']} resolved decisions, hit rate {_f(live['hit_rate'], True)}, "
                  f"log loss {_f(live['log_loss'])} (validation: accuracy {_f(row.cv.get('accuracy'), True)}, "
                  f"log loss {_f(row.cv.get('log_loss'))})")


@models_app.command("compare")
def compare(
    a: str = typer.Argument(..., help="Model A (e.g. the champion)."),
    b: str = typer.Argument(..., help="Model B (e.g. the challenger in shadow)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Two models on the decisions both made: hit rate, log loss, signal P&L, paired tests."""
    from ..engine.ml import evaluation, registry

    async def go(d: Any) -> Any:
        for m in (a, b):
            if await registry.get_record(d, m) is None:
                return m
        out = evaluation.compare(await evaluation.outcomes(d, a), await evaluation.outcomes(d, b))
        # decisions both made whose horizon has not passed yet: the sample still to come
        both = ({(x.symbol, x.ts) for x in await evaluation.decisions(d, a, 1_000_000)}
                & {(x.symbol, x.ts) for x in await evaluation.decisions(d, b, 1_000_000)})
        return out | {"pending_pairs": len(both) - int(out["paired_decisions"])}

    res = _with_db(db_path(db), go)
    if isinstance(res, str):
        fail(f"no model {res!r} (see `tps19 models`)")
    res = {"a": a, "b": b} | {k: v for k, v in res.items() if k not in ("a", "b")} | {"a_figures": res.get("a"),
                                                                                    "b_figures": res.get("b")}
    if json_out:
        typer.echo(json.dumps(res))
        return
    _print_compare(res)


def _print_compare(res: dict[str, Any]) -> None:
    from rich.table import Table

    n = res["paired_decisions"]
    if not n:
        typer.echo(f"{res['a']} and {res['b']} have no resolved decisions on the same bars yet "
                   f"({res.get('pending_pairs', 0)} paired pending their horizon) "
                   "(run one in shadow beside the other: `tps19 paper --strategy ml --param model=A --shadow B`)")
        return
    pending = res.get("pending_pairs", 0)
    t = Table(title=f"{n} decisions both made (resolved)")
    for c in ("model", "hit rate", "log loss", "signal P&L"):
        t.add_column(c)
    for key in ("a", "b"):
        f = res[f"{key}_figures"]
        t.add_row(res[key], _f(f["hit_rate"], True), _f(f["log_loss"]), _f(f["signal_pnl"], True))
    _cli_console().print(t)
    typer.echo(f"{pending} more paired decision{'' if pending == 1 else 's'} pending "
               f"{'its' if pending == 1 else 'their'} horizon")
    typer.echo(f"only {res['a']} right: {res['only_a_right']}, only {res['b']} right: {res['only_b_right']}; "
               f"McNemar p = {_f(res['mcnemar_p'])}; paired t-test on log loss p = {_f(res['log_loss_t_p'])} "
               "(promote a challenger when it is better and p is small, e.g. < 0.05)")
    if n < 30:
        typer.echo(f"only {n} paired decisions: too few to promote on, whatever the p-values say (wait for >= 30)")


@models_app.command("promotions")
def promotions(
    json_out: bool = typer.Option(False, "--json", help="Print one JSON array."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Every champion/challenger verdict of the promotion rule, with its evidence (docs/ml.md)."""
    from sqlmodel import col, select

    from ..engine.storage.models_ml import MLPromotion

    async def go(d: Any) -> list[Any]:
        async with d.session() as s:
            return list((await s.execute(select(MLPromotion).order_by(col(MLPromotion.created_ms)))).scalars().all())

    rows = _with_db(db_path(db), go)
    out = [{"created_ms": r.created_ms, "champion": r.champion, "challenger": r.challenger, "decision": r.decision,
            "applied": r.applied, "p_value": r.p_value, "pairs": r.pairs, "evidence": r.evidence} for r in rows]
    if json_out:
        typer.echo(json.dumps(out))
        return
    if not out:
        typer.echo("no promotion decisions yet (paper/live with --strategy ml --retrain-every ...: docs/ml.md)")
        return
    from rich.table import Table

    t = Table(title="promotion decisions (one test per challenger)")
    for c in ("when (UTC)", "champion", "challenger", "decision", "applied", "pairs", "p-value", "log loss A -> B"):
        t.add_column(c)
    for r in out:
        ev = r["evidence"]
        t.add_row(_when(r["created_ms"]), r["champion"], r["challenger"], r["decision"], "yes" if r["applied"] else "no",
                  str(r["pairs"]), _f(r["p_value"]),
                  f"{_f(ev.get('champion_log_loss'))} -> {_f(ev.get('challenger_log_loss'))}")
    _cli_console().print(t)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.add_typer(models_app, name="models")


def _cli_console() -> Any:
    from .common import console

    return console()
