"""Synthetic bars for the ML tests: small, seeded, fast."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

T0 = 1_577_836_800_000  # 2020-01-01 00:00 UTC


def make_bars(n: int, ar: float = 0.0, seed: int = 7, t0: int = T0, step_ms: int = 60_000) -> pd.DataFrame:
    """A price path whose 1-bar log returns follow r[i] = ar * r[i-1] + noise: ar = 0 is a pure
    random walk (nothing to learn), ar = -0.4 plants a predictable reversal."""
    rng = np.random.default_rng(seed)
    e = rng.normal(0.0, 0.001, n)
    r = np.empty(n)
    r[0] = e[0]
    for i in range(1, n):
        r[i] = ar * r[i - 1] + e[i]
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate(([close[0]], close[:-1]))
    return pd.DataFrame({
        "ts": t0 + step_ms * np.arange(n, dtype=np.int64), "open": open_,
        "high": np.maximum(open_, close) * 1.0005, "low": np.minimum(open_, close) * 0.9995, "close": close,
        "volume": rng.lognormal(0.0, 1.0, n),
    })


def register_model(db_path, df: pd.DataFrame, **cfg) -> str:
    """Train on ``df`` and store the model in the registry of ``db_path``; returns its id."""
    from tps19.engine.ml import registry
    from tps19.engine.ml.train import TrainConfig, train
    from tps19.engine.storage import Database

    result = train(df, TrainConfig(**({"model": "logreg", "horizon": 1, "folds": 3} | cfg)))

    async def go() -> str:
        db = Database(db_path)
        await db.open()
        try:
            return (await registry.save(db, result, {"data_source": "synthetic"})).id
        finally:
            await db.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def registered(tmp_path_factory) -> tuple:
    """(db path, model id, training bars): a logreg model on a planted pattern, in its own registry."""
    path = tmp_path_factory.mktemp("registry") / "tps19.db"
    df = make_bars(2500, ar=-0.4)
    return path, register_model(path, df), df
