"""A model finds a planted pattern and finds nothing in a random walk (out of fold, purged)."""

from __future__ import annotations

import pytest

from tests.ml.conftest import make_bars

from tps19.engine.ml.train import TrainConfig, train


@pytest.mark.parametrize("model", ["logreg", "hgb"])
def test_a_planted_predictable_pattern_is_found(model):
    res = train(make_bars(3000, ar=-0.4), TrainConfig(model=model, horizon=1, folds=3, embargo=2))
    assert res.cv["roc_auc"] > 0.6, res.cv["roc_auc"]
    assert all(f["roc_auc"] > 0.55 for f in res.cv["folds"])
    assert len(res.cv["folds"]) == 3 and res.bars == 3000


@pytest.mark.parametrize("seed", [3, 11])
def test_a_pure_random_walk_gives_no_edge(seed):
    res = train(make_bars(3000, ar=0.0, seed=seed), TrainConfig(model="logreg", horizon=1, folds=3))
    assert abs(res.cv["roc_auc"] - 0.5) < 0.04, res.cv["roc_auc"]


def test_out_of_fold_trading_is_reported_beside_buy_and_hold_and_random_entries():
    res = train(make_bars(2000, ar=-0.4), TrainConfig(model="logreg", horizon=1, folds=2, fee=0.0))
    oos = res.oos
    assert set(oos) >= {"total_return", "buy_and_hold", "random_entries"}
    # with no fees the reversal pays; the same trades at random places do not
    assert oos["total_return"] > oos["random_entries"]["p95"] and oos["random_entries"]["p_value"] < 0.01


def test_too_few_bars_is_one_clear_error():
    with pytest.raises(ValueError, match="not enough bars to train"):
        train(make_bars(150), TrainConfig(model="logreg", horizon=1, folds=3))
