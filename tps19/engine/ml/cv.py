"""Purged walk-forward cross-validation with an embargo.

The rows are cut into ``folds + 1`` contiguous blocks in time. Fold k tests on block k (k = 1 ..
folds) and trains on the rows before it (walk-forward) or, with ``walk_forward=False``, on the
rows on both sides. Either way a training row is *purged* when its label window (bars i+1 ..
i+horizon) reaches into the test block, and the ``embargo`` bars that follow each test block are
never trained on (their features are built from the test block's bars). In walk-forward no
training row follows the test block, so the embargo only bites in the two-sided scheme.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    index: int
    train: np.ndarray  # row positions
    test: np.ndarray
    test_start: int
    test_end: int  # exclusive


def purged_splits(
    n: int, horizon: int, folds: int, embargo: int = 0, *, walk_forward: bool = True, usable: np.ndarray | None = None
) -> list[Fold]:
    """The folds over rows 0..n-1. ``usable`` (bool per row) drops rows with no label or
    features from both sides; purging and the embargo are decided on bar positions."""
    if folds < 1:
        raise ValueError("folds must be at least 1")
    if horizon < 1 or embargo < 0:
        raise ValueError("horizon must be >= 1 and embargo >= 0")
    bounds = np.linspace(0, n, folds + 2).astype(int)
    ok = np.ones(n, dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    pos = np.arange(n)
    out = []
    for k in range(1, folds + 1):
        start, end = int(bounds[k]), int(bounds[k + 1])
        if end <= start:
            continue
        before = (pos + horizon < start)  # label window i+1..i+horizon ends before the test block
        after = pos >= end + embargo  # and nothing in the embargo that follows it
        train_mask = ok & (before | (after if not walk_forward else False))
        test_mask = ok & (pos >= start) & (pos < end)
        out.append(Fold(k, pos[train_mask], pos[test_mask], start, end))
    return out
