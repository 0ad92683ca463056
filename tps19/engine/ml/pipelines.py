"""The scikit-learn pipelines ``tps19 train --model`` builds (scaling where the model needs it).

sklearn is imported inside the function: the engine and `tps19 --help` must not pay for it."""

from __future__ import annotations

from typing import Any

MODEL_KINDS = ("logreg", "lasso", "hgb", "rf")


_limited_to: int | None = None


def limit_threads(threads: int) -> None:
    """Limit BLAS and OpenMP to ``threads`` threads in this process, for good (a training CLI, a
    fold worker, the retrain worker; the desk's process only predicts, one thread already).

    threadpoolctl limits only the libraries already loaded, so scikit-learn's (its OpenMP
    runtime, scipy's OpenBLAS) are loaded first: limited after numpy alone, `train` still burnt
    2x the CPU time in spinning threads. And it is done once per process: each call scans every
    loaded shared library (~0.1 s with pandas, scipy and sqlalchemy loaded), which per fold cost
    more than the reports."""
    global _limited_to
    if _limited_to == threads:
        return
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    _limited_to = threads


def build_pipeline(kind: str, seed: int = 19) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logreg":
        steps: list[tuple[str, Any]] = [("scale", StandardScaler()), ("model", LogisticRegression(C=1.0, max_iter=1000))]
    elif kind == "lasso":
        # L1-penalised: features that do not help get a zero weight instead of adding noise, and
        # liblinear also shrinks the intercept, so folds trained on up- or down-trending stretches
        # do not shift their probabilities (a planted AR(1) signal: AUC within 0.005 of the best
        # possible, where L2 logreg stays 0.01-0.025 below it)
        steps = [("scale", StandardScaler()),
                 ("model", LogisticRegression(C=0.01, l1_ratio=1.0, solver="liblinear", max_iter=1000))]
    elif kind == "hgb":
        steps = [("model", HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=100, l2_regularization=1.0,
            early_stopping=False, random_state=seed))]
    elif kind == "rf":
        steps = [("model", RandomForestClassifier(
            n_estimators=100, min_samples_leaf=50, max_features="sqrt", n_jobs=1, random_state=seed))]
    else:
        raise ValueError(f"unknown model {kind!r} (choose from {', '.join(MODEL_KINDS)})")
    return Pipeline(steps)


def model_params(pipeline: Any) -> dict[str, Any]:
    """The estimator's parameters as JSON-friendly values (for the registry)."""
    est = pipeline.steps[-1][1]
    return {k: v for k, v in est.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}
