"""Where a retrain's fit runs: the job itself (module-level, picklable: the same function for the
local spawned process and a Dask worker) and the Dask side of it.

The job gets the bars as arrays and a ``TrainConfig`` (never a database handle) and returns the
fitted ``TrainResult`` (pipeline included) with where it ran, both pickled back to the engine,
which registers the model as for a local fit.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from typing import Any

import numpy as np

__all__ = ["Stopped", "cluster_faults", "located_retrain_job", "retrain_job", "train_on_cluster", "trained_where"]

POLL_S = 0.5  # how often a thread waiting on the cluster looks whether the engine is stopping


def retrain_job(arrays: dict[str, np.ndarray], cfg: Any) -> Any:
    """Train on the bars (a ``TrainResult``)."""
    from .train import train

    return train(arrays, cfg)


def located_retrain_job(arrays: dict[str, np.ndarray], cfg: Any) -> tuple[Any, dict[str, Any]]:
    """``retrain_job`` and where it ran: host, pid, and on a Dask worker its address."""
    result = retrain_job(arrays, cfg)
    where: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    if "distributed" in sys.modules:  # never imported for it in the local process (~1 s)
        from distributed import get_worker

        try:
            where["worker"] = get_worker().address
        except ValueError:  # not in a worker
            pass
    return result, where


def cluster_faults() -> tuple[type[BaseException], ...]:
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError

    from ...cluster_address import ClusterError

    # unreachable, without workers, lost mid-fit (the client cancels the task: FutureCancelledError),
    # or a worker that died or cannot import TPS19: the cluster's fault, not the fit's (an error
    # raised by the fit itself would fail the same way locally)
    return ClusterError, OSError, TimeoutError, KilledWorker, FutureCancelledError, ImportError


class Stopped(Exception):
    """The engine stopped while the fit ran on the cluster (the cluster's task was cancelled)."""


def train_on_cluster(address: str, arrays: dict[str, np.ndarray], cfg: Any, stop: threading.Event,
                     timeout: float) -> tuple[Any, dict[str, Any]]:
    """Run in a thread (never on the loop): ``located_retrain_job`` on the Dask cluster at
    ``address``; ClusterError if it cannot be reached within ``timeout`` seconds."""
    from ...cluster_address import ClusterError
    from ..distributed import cluster

    with cluster(address, timeout=timeout) as client:
        if not client.ncores():  # a task there would wait for a worker forever
            raise ClusterError(f"the Dask scheduler at {address} has no workers")
        future = client.submit(located_retrain_job, arrays, cfg, pure=False)
        try:
            while True:
                try:
                    out: tuple[Any, dict[str, Any]] = future.result(timeout=POLL_S)
                    return out
                except TimeoutError:
                    if stop.is_set():
                        raise Stopped("the engine stopped") from None
                    if not client.ncores():
                        raise ClusterError(f"the Dask scheduler at {address} lost its workers mid-fit") from None
        finally:
            if not future.done():
                future.cancel()


def trained_where(lineage: dict[str, Any] | None) -> str | None:
    """Where a retrain ran, in words (``models show``, the desk's models screen); None for a model
    its lineage does not place (trained by ``tps19 train``, or before retrains said where)."""
    lin = lineage or {}
    worker = lin.get("worker") or {}
    if lin.get("trained_on") == "cluster":
        return f"on the Dask cluster {lin.get('scheduler')} (worker {worker.get('worker')}, pid {worker.get('pid')})"
    if lin.get("trained_on") == "local process":
        fallback = lin.get("cluster_fallback")
        said = f"in a local worker process (pid {worker.get('pid')})"
        if fallback:
            said += f": the Dask cluster {fallback.get('scheduler')} was unavailable ({fallback.get('error')})"
        return said
    return None
