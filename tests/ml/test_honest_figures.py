"""The ML report's figures a user can rely on, each checked against a case built by hand: trades
filled at the next bar's open, the turnover-matched random baseline, the AUC's block-bootstrap
interval under overlapping labels, and the rows --threshold-bps leaves out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.ml.conftest import make_bars
from tps19.engine.ml.baselines import Segment, log_growth, oos_figures, random_log_growth, trades_of
from tps19.engine.ml.intervals import auc_interval
from tps19.engine.ml.train import TrainConfig, train

FEE = 0.001


def seg(position, open_, close=None):
    open_ = np.asarray(open_, dtype=float)
    return Segment(np.asarray(position, dtype=float), open_, open_ if close is None else np.asarray(close, dtype=float))


def test_positions_fill_at_the_next_open_and_the_end_closes_at_the_last_close():
    o = [10.0, 11.0, 12.0, 13.0, 14.0]
    c = [10.5, 11.5, 12.5, 13.5, 14.5]
    # decided long on row 1's close -> bought at row 2's open (12); flat on row 3 -> sold at row 4's open (14)
    g, holds = log_growth(seg([0, 1, 1, 0, 0], o, c), FEE)
    assert g == pytest.approx(math.log(14 / 12) + 2 * math.log(1 - FEE))
    assert holds.tolist() == [2]
    # still long after the last row: sold at its close (14.5)
    g, _ = log_growth(seg([0, 0, 0, 1, 1], o, c), FEE)
    assert g == pytest.approx(math.log(14.5 / 14) + 2 * math.log(1 - FEE))
    # decided on the last row: never filled, no trade, no fee
    assert log_growth(seg([0, 0, 0, 0, 1], o, c), FEE) == (0.0, pytest.approx(np.array([])))
    entry, exit_ = trades_of(np.array([1, 0, 1, 1, 0, 1]))
    assert entry.tolist() == [1, 3, 6] and exit_.tolist() == [2, 5, 6]


def test_on_flat_prices_every_random_draw_pays_the_models_fees_and_nothing_else():
    s = seg([0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0], [100.0] * 12)
    figures = oos_figures([s], FEE, 0.55, 0.5, draws=200)
    three_trades = (1 - FEE) ** 6 - 1
    assert figures["trades"] == 3 and figures["total_return"] == pytest.approx(three_trades)
    rnd = figures["random_entries"]
    assert rnd["p05"] == pytest.approx(three_trades) and rnd["p95"] == pytest.approx(three_trades)
    assert rnd["p_value"] == 1.0  # it beats no draw: as good as chance


def test_random_draws_keep_the_holding_times():
    """log open = bar index (each close = the next open): a trade's log return is its holding
    time, wherever it is placed."""
    def rising(n):
        t = np.arange(n, dtype=float)
        return seg(np.zeros(n), np.exp(t), np.exp(t + 1))

    n = 60
    s = rising(n)
    holds = np.array([3, 7, 1, 12])
    g = random_log_growth(s, holds, 0.0, np.random.default_rng(1), 500)
    assert np.allclose(g, holds.sum())
    # no room to spare (three bars flat between trades, none elsewhere): still exact
    tight = rising(int(holds.sum()) + 3 + 1)
    assert np.allclose(random_log_growth(tight, holds, 0.0, np.random.default_rng(2), 50), holds.sum())


def test_the_share_of_random_trades_that_catch_one_jump_is_what_counting_says():
    """One trade of L bars placed at random among n: it catches a price jump in L of its n-L
    possible places. The model that held across the jump has p-value near L/(n-L)."""
    n, hold, jump = 200, 10, 120
    o = np.where(np.arange(n) >= jump, 200.0, 100.0)
    pos = np.zeros(n)
    pos[jump - 5: jump + 5] = 1  # bought at open jump-4, sold at open jump+6: holds across the jump
    draws = 4000
    fig = oos_figures([seg(pos, o)], 0.0, 0.55, 0.5, draws=draws)
    assert fig["total_return"] == pytest.approx(1.0)
    share = hold / (n - hold)
    se = math.sqrt(share * (1 - share) / draws)
    assert abs(fig["random_entries"]["p_value"] - share) < 4 * se + 1 / draws


def test_auc_interval_perfect_separation_is_a_point():
    y = np.array([0, 1] * 50)
    ci = auc_interval(y, y * 0.5 + 0.25, horizon=3)
    assert ci["auc"] == 1.0 and ci["low"] == 1.0 and ci["high"] == 1.0


def _exact_block_bootstrap(y, p, block, draws, rng):
    """Each resample re-ranked from scratch (Mann-Whitney U from scipy's ranks)."""
    from scipy.stats import rankdata

    n = len(y)
    out = []
    for _ in range(draws):
        idx = (rng.integers(0, n, -(-n // block))[:, None] + np.arange(block)).ravel() % n
        yy, ranks = y[idx], rankdata(p[idx])
        n1 = yy.sum()
        out.append((ranks[yy].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(yy) - n1)))
    return np.quantile(out, [0.025, 0.975])


def test_auc_interval_counts_overlapping_labels_once():
    """Every outcome repeated h = 5 times (what overlapping 5-bar labels do to the rows): the
    interval is as wide as that of the distinct outcomes, about sqrt(5) times wider than a
    bootstrap that takes the rows as independent, and matches a full re-ranking block bootstrap."""
    rng = np.random.default_rng(4)
    h, m = 5, 400
    y0 = rng.random(m) < 0.5
    p0 = rng.random(m) + 0.3 * y0
    y, p = np.repeat(y0, h), np.repeat(p0, h)
    overlap = auc_interval(y, p, horizon=h)
    distinct = auc_interval(y0, p0, horizon=1)
    naive = auc_interval(y, p, horizon=1, block=1)
    width = overlap["high"] - overlap["low"]
    assert overlap["effective_rows"] == m and overlap["block"] == 2 * h
    assert 0.8 < width / (distinct["high"] - distinct["low"]) < 1.25
    assert width / (naive["high"] - naive["low"]) > 1.7
    lo, hi = _exact_block_bootstrap(y, p, 2 * h, 600, rng)
    assert abs(overlap["low"] - lo) < 0.15 * (hi - lo) and abs(overlap["high"] - hi) < 0.15 * (hi - lo)


def test_the_report_counts_what_threshold_bps_dropped():
    df = make_bars(2400, ar=-0.3, seed=2)
    res = train(df, TrainConfig(model="logreg", horizon=3, folds=3, threshold_bps=4, fee=0.0))
    close = df["close"].to_numpy()
    fwd = np.full(len(close), np.nan)
    fwd[:-3] = close[3:] / close[:-3] - 1
    ts = df["ts"].to_numpy()
    dropped = scored = 0
    for f in res.cv["folds"]:
        rows = (ts >= f["test_start_ms"]) & (ts <= f["test_end_ms"]) & ~np.isnan(fwd)
        dropped += int((np.abs(fwd[rows]) <= 4e-4).sum())
        scored += int((np.abs(fwd[rows]) > 4e-4).sum())
    thr = res.cv["threshold"]
    assert thr["test_rows_dropped"] == dropped > 0 and thr["test_rows_scored"] == scored == res.cv["rows"]
    assert thr["share_dropped"] == pytest.approx(dropped / (dropped + scored))
    lo, hi = res.cv["roc_auc_ci95"]
    assert lo < res.cv["roc_auc"] < hi and res.cv["auc_interval"]["effective_rows"] == pytest.approx(scored / 3)


def test_classification_scores_equal_scikit_learns():
    from sklearn.metrics import accuracy_score, log_loss, precision_score, recall_score, roc_auc_score

    from tps19.engine.ml.scoring import classification_scores

    rng = np.random.default_rng(8)
    y = (rng.random(3000) < 0.45).astype(int)
    p = np.round(np.clip(0.5 + 0.1 * rng.normal(size=3000) + 0.05 * y, 0, 1), 2)  # ties, and 0 / 1 exactly
    got = classification_scores(y, p)
    pc = np.clip(p, 1e-12, 1 - 1e-12)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert got["accuracy"] == pytest.approx(accuracy_score(y, pc > 0.5))
    assert got["precision"] == pytest.approx(precision_score(y, pc > 0.5, zero_division=0))
    assert got["recall"] == pytest.approx(recall_score(y, pc > 0.5, zero_division=0))
    assert got["log_loss"] == pytest.approx(log_loss(y, pc, labels=[0, 1]), rel=1e-9)
    assert classification_scores(np.ones(5, dtype=int), np.full(5, 0.7))["roc_auc"] is None
