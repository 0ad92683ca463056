"""How `tps19 backtest` and `tps19 optimize` show a result: one JSON object, or tables and a chart.

Imported inside the commands only (it is the rich/engine side of the CLI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .common import db_path


class LazyConsole:
    """A rich Console made on first use: `backtest --json` never needs rich (nor its import time)."""

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr
        self._console: Any = None

    def _get(self) -> Any:
        if self._console is None:
            from .common import console

            self._console = console(stderr=self.stderr)
        return self._console

    def print(self, *args: Any, **kwargs: Any) -> None:
        self._get().print(*args, **kwargs)

    @property
    def width(self) -> int:
        return int(self._get().width)


def fmt(x: Any, pct: bool = False) -> str:
    if x is None:
        return "n/a"
    return f"{x * 100:.2f}%" if pct else f"{x:.4g}"


def report(res: Any, meta: dict[str, Any], json_out: bool, no_plot: bool, console: Any, db: str | Path | None, no_save: bool) -> None:
    """A backtest's result: stored (unless --no-save), then printed as JSON or as tables and a chart."""
    from ..engine.backtest.report import chart, json_chunks, metrics_table, trades_table

    saved = None
    if not no_save:
        try:
            saved = _save(res, meta, db)
        except Exception as err:  # a read-only disk must not hide the result
            console.print(f"[yellow]result not stored: {type(err).__name__}: {err}[/]")
    if json_out:
        import sys

        for chunk in json_chunks(res, {"data": meta, "result_id": saved}):
            sys.stdout.write(chunk)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return
    from rich.text import Text

    console.print(metrics_table(res.metrics, title=f"{res.strategy} " + " ".join(f"{k}={v}" for k, v in res.params.items())))
    if not no_plot:
        width = max(40, min(console.width, 160))
        console.print(Text.from_ansi(chart(res.ts, res.equity, width=width, height=24)))
    console.print(trades_table(res))
    if saved is not None:
        console.print(f"stored as backtest result #{saved}")


def _save(res: Any, meta: dict[str, Any], db: str | Path | None) -> int:
    import asyncio

    from ..engine.backtest.report import save_result
    from ..engine.storage import Database

    async def go() -> int:
        d = Database(db_path(db))
        await d.open()
        try:
            return await save_result(d, res, exchange=meta.get("exchange"), symbol=meta.get("symbol"),
                                     timeframe=meta.get("timeframe"), data_source=meta.get("data_source"))
        finally:
            await d.close()

    return asyncio.run(go())


def print_walk_forward(wf: Any, strategy: str, metric: str, n_cands: int, ts: Any, json_out: bool, console: Any) -> None:
    from rich.table import Table

    from ..engine.backtest.report import iso, metrics_table

    folds = [
        {"fold": f.index, "train": [iso(int(ts[f.train[0]])), iso(int(ts[f.train[1] - 1]))],
         "test": [iso(int(ts[f.test[0]])), iso(int(ts[f.test[1] - 1]))],
         "params": f.best_params, "in_sample": f.in_sample.get(metric), "out_of_sample": f.out_of_sample.get(metric),
         "oos_return": f.out_of_sample.get("total_return")}
        for f in wf.folds
    ]
    if json_out:
        typer.echo(json.dumps({"strategy": strategy, "metric": metric, "candidates": n_cands, "folds": folds,
                               "out_of_sample": wf.metrics, **overfitting_fields(wf.overfitting)}, default=str))
        return
    t = Table(title=f"Walk-forward {strategy}: {n_cands} candidates x {len(folds)} folds, by {metric}")
    for c in ("fold", "train", "test", "chosen params", f"IS {metric}", f"OOS {metric}", "OOS return"):
        t.add_column(c)
    for f in folds:
        t.add_row(str(f["fold"]), " -> ".join(f["train"]), " -> ".join(f["test"]),
                  ", ".join(f"{k}={v}" for k, v in f["params"].items()),
                  fmt(f["in_sample"]), fmt(f["out_of_sample"]), fmt(f["oos_return"], pct=True))
    console.print(t)
    console.print(metrics_table(wf.metrics, title="Out-of-sample (chained test windows)"))
    console.print(f"[bold]Out-of-sample {metric}: {fmt(wf.metrics.get(metric))}, "
                  f"return {fmt(wf.metrics.get('total_return'), pct=True)}[/]")
    print_overfitting(wf.overfitting, console)


def overfitting_fields(o: Any) -> dict[str, Any]:
    """``trials``, ``deflated_sharpe``, ``pbo`` at the top of the JSON, and the rest under ``overfitting``."""
    d = o.as_dict()
    return {"trials": d["trials"], "deflated_sharpe": d["deflated_sharpe"], "pbo": d["pbo"],
            "warning": None if o.trusted else d["verdict"], "overfitting": d}


def print_overfitting(o: Any, console: Any, pruned: int | None = None) -> None:
    from rich.table import Table

    t = Table(title="Can the winner be trusted? (docs/backtesting.md, 'Overfitting')", show_header=False)
    t.add_column("figure", style="bold")
    t.add_column("value", justify="right")
    t.add_row("Trials", str(o.trials) + (f" ({pruned} pruned)" if pruned is not None else ""))
    t.add_row("Deflated Sharpe (P(true Sharpe > 0))", o.deflated_sharpe_text)
    t.add_row("Per-bar Sharpe: winner / best luck expects", f"{o.sharpe_per_bar:.4g} / {o.expected_max_sharpe:.4g}")
    t.add_row("PBO (CSCV)", fmt(o.pbo) + (f" over {o.splits} splits" if o.splits else "")
              + (f", {o.pbo_trials} completed trials" if o.pbo_trials is not None else ""))
    console.print(t)
    if o.trusted:
        console.print(f"[green]{o.verdict}[/]")
    else:
        console.print(f"[bold red]WARNING: {o.verdict}[/]")


def print_ranking(found: Any, strategy: str, metric: str, n_cands: int,
                  fixed: dict[str, Any], top: int, json_out: bool, console: Any) -> None:
    from rich.table import Table

    ranked = found.ranked
    if json_out:
        typer.echo(json.dumps({"strategy": strategy, "metric": metric, "candidates": n_cands,
                               **overfitting_fields(found.overfitting),
                               "ranking": [{"params": p, "metrics": m} for p, m in ranked[:top]]}, default=str))
        return
    t = Table(title=f"{strategy}: {n_cands} candidates ranked by {metric} (in-sample)")
    for c in ("#", "params", metric, "return", "max DD", "trades"):
        t.add_column(c)
    for i, (p, m) in enumerate(ranked[:top], 1):
        t.add_row(str(i), ", ".join(f"{k}={v}" for k, v in p.items() if k not in fixed), fmt(m.get(metric)),
                  fmt(m.get("total_return"), pct=True), fmt(m.get("max_drawdown"), pct=True), str(m.get("trades")))
    console.print(t)
    print_overfitting(found.overfitting, console)


def study_fields(res: Any, ts: Any) -> dict[str, Any]:
    """What ``optimize --search tpe --json`` says beyond the grid's keys: the study's counts, its
    winner, the walk-forward out-of-sample result and every proposal (``trial_log``)."""
    from ..engine.backtest.report import iso

    out: dict[str, Any] = {
        "search": "tpe", "seed": res.seed, "repeatable": not res.parallel, "trials_wanted": res.wanted,
        "pruned": res.count("pruned"), "completed": res.count("complete"), "invalid": res.count("invalid"),
        "repeats": res.count("repeat"), "proposals": len(res.log), "shortfall": res.shortfall,
        "winner": res.winner.as_dict(),
    }
    if res.holdout is not None:
        lo, hi = res.holdout_window
        out["walk_forward"] = {
            "folds": [{"fold": k, "window": [iso(int(ts[a])), iso(int(ts[b - 1]))], "winner_score": res.winner.as_dict()["folds"][k]}
                      for k, (a, b) in enumerate(res.windows)],
            "test": [iso(int(ts[lo])), iso(int(ts[hi - 1]))],
            "out_of_sample": res.holdout.metrics,
        }
    out["trial_log"] = [r.as_dict() for r in res.log]
    return out


def print_study(res: Any, strategy: str, metric: str, fixed: dict[str, Any], top: int, ts: Any,
                json_out: bool, console: Any) -> None:
    """``optimize --search tpe``: the completed trials ranked, the out-of-sample block (walk-forward)
    and the trust figures counting every trial, pruned ones included."""
    from rich.table import Table

    from ..engine.backtest.report import metrics_table

    folds = len(res.windows)
    if json_out:
        ranking = [{"number": r.number, "params": r.params, "value": r.as_dict()["value"],
                    "folds": r.as_dict()["folds"], **({"metrics": r.metrics[0]} if folds == 1 else {})}
                   for r in res.ranked[:top]]
        typer.echo(json.dumps({"strategy": strategy, "metric": metric, **overfitting_fields(res.overfitting),
                               **study_fields(res, ts), "ranking": ranking}, default=str))
        return
    scored = f"mean {metric} over {folds} folds" if folds > 1 else metric
    t = Table(title=f"{strategy}: TPE study, {res.trials} trials ({res.count('pruned')} pruned) ranked by {scored}"
                    + (" (in-sample)" if folds == 1 else ""))
    # Optuna numbers every proposal (repeats and rejected ones too): "trial 25" in a 20-trial study read
    # as a count, so the column says what the number is (trial_log in --json carries the same numbers)
    cols = ["#", "proposal", "params", scored] + (["folds"] if folds > 1 else ["return", "max DD", "trades"])
    for c in cols:
        t.add_column(c)
    for i, r in enumerate(res.ranked[:top], 1):
        row = [str(i), str(r.number), ", ".join(f"{k}={v}" for k, v in r.params.items() if k not in fixed), fmt(r.value)]
        if folds > 1:
            row.append(" ".join(fmt(v) for v in r.folds))
        else:
            m = r.metrics[0]
            row += [fmt(m.get("total_return"), pct=True), fmt(m.get("max_drawdown"), pct=True), str(m.get("trades"))]
        t.add_row(*row)
    console.print(t)
    console.print(f"{len(res.log)} proposals: {res.count('complete')} completed, {res.count('pruned')} pruned, "
                  f"{res.count('invalid')} rejected by the strategy, {res.count('repeat')} repeats (run once)")
    if res.shortfall:
        console.print(f"[yellow]{res.shortfall}[/]")
    if res.holdout is not None:
        lo, hi = res.holdout_window
        from ..engine.backtest.report import iso

        console.print(metrics_table(res.holdout.metrics, title=f"Out-of-sample: the winner on the last block "
                                    f"{iso(int(ts[lo]))} -> {iso(int(ts[hi - 1]))} (no trial saw it)"))
    print_overfitting(res.overfitting, console, pruned=res.count("pruned"))
    if res.parallel:
        console.print("[dim]trials ran in parallel: the same --seed is not promised to repeat this run "
                      "(run with --jobs 1 and no --cluster for that)[/]")
