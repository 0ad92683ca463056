"""`--cluster tcp://HOST:PORT`: a command's grid or folds on a Dask distributed cluster.

The workers run the same module-level functions a local process pool would, from the same
TPS19 install (`dask scheduler` on one machine, `dask worker tcp://HOST:PORT` on each, all in
TPS19's virtualenv). Two ways in, whichever the caller's loop already uses:

    with cluster("tcp://10.0.0.5:8786") as client:
        pool = executor(client, initializer=_init_worker, initargs=(data,))  # concurrent.futures
        results = list(pool.map(fn, tasks))                                  # in task order
        with joblib_backend(client):                                         # joblib.Parallel
            ...

An address that is malformed or a scheduler that does not answer is a ``ClusterError`` with one
line for the user, never a traceback from inside Dask.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any, TypeVar

from distributed import Client
from distributed.diagnostics.plugin import WorkerPlugin

from ..cluster_address import ClusterError, check_address

__all__ = ["ClusterError", "check_address", "cluster", "executor", "joblib_backend", "on_cluster"]

CONNECT_TIMEOUT_S = 10.0
T = TypeVar("T")


@contextlib.contextmanager
def cluster(address: str, timeout: float = CONNECT_TIMEOUT_S) -> Iterator[Client]:
    """A ``distributed.Client`` connected to the scheduler at ``address``, closed on exit."""
    address = check_address(address)
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as err:
        cause = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {cause}"[:300]) from None
    try:
        yield client
    finally:
        client.close()


class _RunOnEveryWorker(WorkerPlugin):
    """A worker plugin calling ``initializer(*initargs)`` on every worker, also one joining later:
    what ProcessPoolExecutor's ``initializer`` does for its processes."""

    def __init__(self, initializer: Callable[..., None], initargs: tuple[Any, ...]) -> None:
        self.initializer, self.initargs = initializer, initargs

    def setup(self, worker: Any) -> None:
        self.initializer(*self.initargs)

    def teardown(self, worker: Any) -> None:
        pass


def executor(client: Client, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()) -> Executor:
    """A concurrent.futures Executor on the cluster; ``map`` yields results in task order."""
    if initializer is not None:
        plugin = _RunOnEveryWorker(initializer, initargs)
        # a fresh name per call: a second sweep on the same cluster brings its own data
        client.register_plugin(plugin, name=f"tps19-init-{uuid.uuid4().hex}")
    pool: Executor = client.get_executor(pure=False)
    return pool


@contextlib.contextmanager
def joblib_backend(client: Client) -> Iterator[None]:
    """Every ``joblib.Parallel`` inside the block (scikit-learn's too) runs on the cluster."""
    import joblib

    with joblib.parallel_config(backend="dask", client=client):
        yield


def on_cluster(address: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with every ``joblib.Parallel`` inside it on the cluster at ``address``. Call it
    in the thread that runs ``fn``: joblib's backend setting is per thread (a caller running ``fn``
    through ``asyncio.to_thread`` passes this function instead)."""
    with cluster(address) as client, joblib_backend(client):
        return fn(*args)
