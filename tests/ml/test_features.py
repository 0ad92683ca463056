"""One feature function: no look-ahead, and the live (bar by bar) path gives the same floats."""

from __future__ import annotations

import numpy as np

from tests.ml.conftest import make_bars

from tps19.engine.ml.features import (
    FEATURE_NAMES, LOOKBACK, BookSnapshot, FeatureWindow, book_features, feature_frame,
)


def test_every_feature_is_there_after_the_warm_up_and_absent_before():
    f = feature_frame(make_bars(400))
    assert f.shape == (400, len(FEATURE_NAMES))
    assert np.isnan(f[: LOOKBACK - 1]).all()
    assert not np.isnan(f[LOOKBACK - 1 :]).any()


def test_removing_or_changing_future_bars_changes_no_past_feature():
    df = make_bars(600)
    full = feature_frame(df)
    for cut in (LOOKBACK, 250, 599):
        part = feature_frame(df.iloc[: cut + 1])
        assert np.array_equal(part, full[: cut + 1], equal_nan=True), cut
    changed = df.copy()
    changed.loc[400:, ["open", "high", "low", "close", "volume"]] *= 3.0  # a crash of the future
    after = feature_frame(changed)
    assert np.array_equal(after[:400], full[:400], equal_nan=True)
    assert not np.array_equal(after[400:], full[400:])  # the change is seen from its bar on


def test_shifting_the_input_by_one_bar_moves_every_feature_by_one_bar():
    df = make_bars(500)
    full = feature_frame(df)
    shifted = feature_frame(df.iloc[1:].reset_index(drop=True))
    # row i of the shifted input is row i+1 of the original: same window, same numbers
    assert np.array_equal(shifted[LOOKBACK - 1 :], full[LOOKBACK:])


def test_incremental_path_equals_the_vectorised_one_bar_by_bar():
    df = make_bars(400, ar=-0.3)
    full = feature_frame(df)
    w = FeatureWindow()
    for i, bar in enumerate(df.itertuples(index=False)):
        row = w.update(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume)
        if i < LOOKBACK - 1:
            assert row is None
        else:
            assert np.array_equal(row, full[i]), i


def test_book_features_from_the_live_book():
    book = BookSnapshot(bids=[(99.0, 3.0), (98.0, 5.0)], asks=[(101.0, 1.0), (102.0, 1.0)])
    f = book_features(book)
    assert f["spread_bps"] == 200.0  # 2 / 100 mid
    assert f["imbalance_top"] == 0.5  # (3 - 1) / 4
    assert f["imbalance_depth"] == (8 - 2) / 10
    assert book_features(BookSnapshot(bids=[], asks=[(1.0, 1.0)])) == {}
