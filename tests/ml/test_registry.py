"""The registry: `tps19 train --json` registers a model; a mismatched model is refused in one line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.ml.conftest import make_bars, register_model

from tps19.cli import app
from tps19.engine.ml.registry import ModelRefused, load_model, models_dir


def test_train_json_report_names_the_model_its_data_and_its_scores(tmp_path):
    csv = tmp_path / "bars.csv"
    make_bars(1500, ar=-0.4).to_csv(csv, index=False)
    db = tmp_path / "t.db"
    res = CliRunner().invoke(app, ["train", "--data", str(csv), "--model", "logreg", "--horizon", "1", "--folds", "3",
                                   "--embargo", "2", "--json", "--db", str(db)])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["model"] == "logreg" and rep["model_id"].startswith("logreg-")
    assert rep["features"]["version"] == "bars-1" and "rsi_14" in rep["features"]["names"]
    assert rep["data"]["bars"] == 1500 and rep["data"]["start_ms"] < rep["data"]["end_ms"]
    for k in ("roc_auc", "accuracy", "precision", "recall", "log_loss"):
        assert isinstance(rep["cv"][k], float)
    assert len(rep["cv"]["folds"]) == 3 and rep["cv"]["roc_auc"] > 0.6
    assert set(rep["oos"]) >= {"total_return", "buy_and_hold", "random_entries", "trades"}
    lo, hi = rep["cv"]["roc_auc_ci95"]
    assert lo <= rep["cv"]["roc_auc"] <= hi
    assert (models_dir(db) / rep["artifact"]).is_file() and rep["libraries"]["scikit-learn"]
    listed = json.loads(CliRunner().invoke(app, ["models", "--json", "--db", str(db)]).stdout)
    assert [m["model_id"] for m in listed] == [rep["model_id"]]
    shown = CliRunner().invoke(app, ["models", "show", rep["model_id"], "--db", str(db)])
    assert shown.exit_code == 0 and rep["model_id"] in shown.stdout


def test_a_model_whose_file_was_changed_is_refused_in_one_line(tmp_path):
    db = tmp_path / "t.db"
    model_id = register_model(db, make_bars(1200))
    assert load_model(db, model_id).pipeline is not None
    artifact = next(models_dir(db).glob(f"{model_id}.joblib"))
    artifact.write_bytes(artifact.read_bytes() + b"\0")
    with pytest.raises(ModelRefused, match="does not match its registered content hash") as err:
        load_model(db, model_id)
    assert "\n" not in str(err.value)


def test_a_model_of_another_feature_version_is_refused_by_the_cli_without_a_traceback(tmp_path):
    import sqlite3

    db = tmp_path / "t.db"
    model_id = register_model(db, make_bars(1200))
    with sqlite3.connect(db) as con:
        con.execute("UPDATE ml_models SET feature_version = 'bars-0' WHERE id = ?", (model_id,))
    with pytest.raises(ModelRefused, match="trained on features bars-0"):
        load_model(db, model_id)
    csv = tmp_path / "later.csv"
    make_bars(300, t0=1_700_000_000_000).to_csv(csv, index=False)
    res = CliRunner().invoke(app, ["backtest", "--strategy", "ml", "--param", f"model={model_id}", "--data", str(csv),
                                   "--db", str(db), "--no-save", "--no-plot"])
    assert res.exit_code == 2
    assert "trained on features bars-0" in res.stderr and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1
