"""Labels and purged walk-forward CV with an embargo."""

from __future__ import annotations

import numpy as np
import pytest

from tps19.engine.ml.cv import purged_splits
from tps19.engine.ml.labels import make_labels


def test_labels_are_the_sign_of_the_forward_return_beyond_the_threshold():
    close = np.array([100.0, 101.0, 100.95, 100.0, 100.0])
    y = make_labels(close, 1, threshold_bps=10)
    assert y[0] == 1.0  # +1 %
    assert np.isnan(y[1])  # -0.05 %: inside 10 bps, no trade
    assert y[2] == 0.0  # -0.94 %
    assert np.isnan(y[3])  # flat
    assert np.isnan(y[4])  # no future yet
    assert np.isnan(make_labels(close, 2)[-2:]).all()


@pytest.mark.parametrize("walk_forward", [True, False])
@pytest.mark.parametrize(("n", "horizon", "folds", "embargo"), [(1000, 5, 4, 10), (503, 1, 3, 0), (2000, 30, 6, 45)])
def test_no_training_label_window_reaches_a_test_fold_and_the_embargo_follows_it(n, horizon, folds, embargo,
                                                                                 walk_forward):
    splits = purged_splits(n, horizon, folds, embargo, walk_forward=walk_forward)
    assert len(splits) == folds
    tested = np.concatenate([f.test for f in splits])
    assert len(np.unique(tested)) == len(tested)  # test folds are disjoint
    for f in splits:
        lo, hi = f.test_start, f.test_end
        assert f.test.min() == lo and f.test.max() == hi - 1
        assert len(np.intersect1d(f.train, f.test)) == 0
        # a training row's label window is bars i+1 .. i+horizon: it never touches [lo, hi)
        window_end = f.train + horizon
        overlaps = (f.train + 1 < hi) & (window_end >= lo)
        assert not overlaps.any(), f.train[overlaps][:5]
        assert not ((f.train >= hi) & (f.train < hi + embargo)).any()  # embargo after the test fold
        if walk_forward:
            assert (f.train < lo).all()
        elif hi + embargo < n:
            assert (f.train >= hi + embargo).any()  # the two-sided scheme trains after the embargo
        # nothing usable is dropped beyond what purging asks: the row just outside the purge is kept
        assert lo - horizon - 1 in f.train or lo - horizon - 1 < 0


def test_unusable_rows_are_neither_trained_nor_tested():
    usable = np.ones(600, dtype=bool)
    usable[:100] = False
    for f in purged_splits(600, 3, 3, 5, usable=usable):
        assert (f.train >= 100).all() and (f.test >= 100).all()
