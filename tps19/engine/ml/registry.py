"""The model registry: the fitted pipeline as a joblib file under the data directory (the
database's directory, ``models/``), its metadata as an ``ml_models`` row.

Loading checks what the row promises before anything predicts: the file's sha256 must be the
stored content hash and the model's feature version must be the one this code computes. A
mismatch is a ``ModelRefused`` with one line, never a silent wrong prediction.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import col, select

from ..storage.models_ml import MLModel
from .features import FEATURE_NAMES, FEATURE_VERSION


class ModelRefused(ValueError):
    """A model that must not be used; the message is one line for the trader."""


@dataclass(frozen=True)
class LoadedModel:
    record: MLModel
    pipeline: Any

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def horizon(self) -> int:
        return int(self.record.params.get("horizon", 1))

    @property
    def threshold_bps(self) -> float:
        return float(self.record.params.get("threshold_bps", 0.0))


def models_dir(db_path: str | Path) -> Path:
    """Where a SQLite database's model files live: ``models/`` beside it (with a server: ./models)."""
    return Path(db_path).resolve().parent / "models"


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    import joblib
    import numpy
    import sklearn

    return {"python": platform.python_version(), "scikit-learn": sklearn.__version__, "numpy": numpy.__version__,
            "joblib": joblib.__version__}


def _write_artifact(directory: Path, pipeline: Any, kind: str) -> tuple[str, str]:
    """Dump the pipeline, name the file by its hash; returns (model id, file name)."""
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".tmp-{os.getpid()}-{time.time_ns()}.joblib"
    joblib.dump({"pipeline": pipeline, "feature_version": FEATURE_VERSION, "features": list(FEATURE_NAMES)}, tmp)
    digest = file_hash(tmp)
    model_id = f"{kind}-{digest[:10]}"
    name = f"{model_id}.joblib"
    tmp.replace(directory / name)
    return model_id, name


async def save(db: Any, result: Any, meta: dict[str, Any]) -> MLModel:
    """Store a ``TrainResult``; ``meta``: exchange, symbol, timeframe, data_source (any may be None)."""
    directory = models_dir(db.path) if db.path is not None else Path("models").resolve()
    model_id, name = await asyncio.to_thread(_write_artifact, directory, result.pipeline, result.kind)
    digest = await asyncio.to_thread(file_hash, directory / name)
    row = MLModel(id=model_id, created_ms=int(time.time() * 1000), kind=result.kind,
                  feature_version=FEATURE_VERSION, features=list(FEATURE_NAMES), params=result.params,
                  exchange=meta.get("exchange"), symbol=meta.get("symbol"), timeframe=meta.get("timeframe"),
                  data_source=meta.get("data_source"), start_ms=result.start_ms, end_ms=result.end_ms,
                  bars=result.bars, cv=result.cv, oos=result.oos, libraries=library_versions(),
                  feature_stats=result.feature_stats, content_hash=digest, artifact=name,
                  lineage=meta.get("lineage") or {"parent": None, "trigger": "cli", "start_ms": result.start_ms,
                                                   "end_ms": result.end_ms, "bars": result.bars})
    async with db.session() as s:
        await s.merge(row)
        await s.commit()
    return row


async def list_models(db: Any) -> list[MLModel]:
    async with db.session() as s:
        return list((await s.execute(select(MLModel).order_by(col(MLModel.created_ms)))).scalars().all())


async def get_record(db: Any, model_id: str) -> MLModel | None:
    async with db.session() as s:
        return await s.get(MLModel, model_id)


async def _read(target: str | Path, model_id: str) -> tuple[MLModel | None, list[str]]:
    from ..storage import Database

    db = Database(target)
    await db.open(create=False)
    try:
        row = await get_record(db, model_id)
        known = [] if row is not None else [m.id for m in await list_models(db)]
        return row, known
    finally:
        await db.close()


def read_record(target: str | Path, model_id: str) -> MLModel:
    """The row, read before trading starts (a strategy is built synchronously, possibly while an
    event loop runs: the read gets its own loop in a short-lived thread)."""
    from concurrent.futures import ThreadPoolExecutor

    from ..storage import Database, StorageError

    name = Database(target).name
    if isinstance(target, Path) or "://" not in str(target):
        if not Path(target).is_file():
            raise ModelRefused(f"model {model_id}: no database at {target}")
    try:
        with ThreadPoolExecutor(1) as pool:
            row, known = pool.submit(asyncio.run, _read(target, model_id)).result()
    except StorageError as err:
        raise ModelRefused(f"model {model_id}: {err}") from None
    if row is None:
        hint = f" (known: {', '.join(known[-5:])})" if known else " (none trained yet: run `tps19 train`)"
        raise ModelRefused(f"no model {model_id!r} in {name}{hint}")
    return row


def models_dir_of(target: str | Path) -> Path:
    from ..storage.target import parse

    path = parse(target).path
    return models_dir(path) if path is not None else Path("models").resolve()


def load_model(db_path: str | Path, model_id: str) -> LoadedModel:
    """The verified pipeline of ``model_id``, or ``ModelRefused`` (one line)."""
    import joblib

    rec = read_record(db_path, model_id)
    if rec.feature_version != FEATURE_VERSION or list(rec.features) != list(FEATURE_NAMES):
        raise ModelRefused(f"model {model_id} was trained on features {rec.feature_version}, this TPS19 computes "
                           f"{FEATURE_VERSION}: retrain it")
    path = models_dir_of(db_path) / rec.artifact
    if not path.is_file():
        raise ModelRefused(f"model {model_id}: its file {path} is missing")
    digest = file_hash(path)
    if digest != rec.content_hash:
        raise ModelRefused(f"model {model_id}: file {path} does not match its registered content hash "
                           f"({digest[:12]} != {rec.content_hash[:12]}): refusing to load it")
    try:
        blob = joblib.load(path)
    except Exception as err:
        raise ModelRefused(f"model {model_id}: cannot load {path}: {type(err).__name__}") from None
    if blob.get("feature_version") != FEATURE_VERSION:
        raise ModelRefused(f"model {model_id}: its file was written for features {blob.get('feature_version')}, "
                           f"this TPS19 computes {FEATURE_VERSION}")
    return LoadedModel(record=rec, pipeline=blob["pipeline"])
