"""Population stability index: how far the live distribution of a feature has moved from the
one the model was trained on. The reference is stored with the model as decile bin edges and
the training share in each bin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_BINS = 10
_FLOOR = 1e-4  # an empty bin would make the index infinite


def reference_bins(x: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Per feature: the inner decile edges of the training rows and the share of rows per bin."""
    out: dict[str, Any] = {}
    for j, name in enumerate(names):
        col = x[:, j]
        edges = np.unique(np.quantile(col, np.linspace(0, 1, _BINS + 1)[1:-1])) if len(col) else np.array([])
        share = np.bincount(np.searchsorted(edges, col, side="right"), minlength=len(edges) + 1) / max(len(col), 1)
        out[name] = {"edges": [float(e) for e in edges], "share": [float(s) for s in share]}
    return out


def psi(reference: dict[str, Any], values: np.ndarray) -> float | None:
    """PSI of ``values`` against one feature's reference (None with no values)."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    edges = np.asarray(reference["edges"], dtype=float)
    expected = np.maximum(np.asarray(reference["share"], dtype=float), _FLOOR)
    actual = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1) / len(values)
    actual = np.maximum(actual, _FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


# PSI over 10 bins of a handful of values is noise (5 identical values already read as "drift"):
# below this many live values a feature's drift is not computed (n/a, with n shown).
MIN_SAMPLE = 100


def psi_table(stats: dict[str, Any], rows: Sequence[dict[str, float]],
              min_sample: int = MIN_SAMPLE) -> dict[str, float | None]:
    """PSI per feature of live feature rows (dicts name -> value) against a model's stats; None for
    a feature with fewer than ``min_sample`` values."""
    out: dict[str, float | None] = {}
    for name, ref in stats.items():
        values = np.array([r[name] for r in rows if name in r], dtype=float)
        out[name] = psi(ref, values) if np.count_nonzero(~np.isnan(values)) >= min_sample else None
    return out
