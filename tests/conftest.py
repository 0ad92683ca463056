"""Fixtures every test package may use: the database backends (SQLite file, PostgreSQL server)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.pg_server import PgServer, ServerUnavailable

# Property tests: the same examples every run (derandomised, no example database), no deadline (a
# busy 2-core machine is not a bug), example counts fixed by each test. HYPOTHESIS_PROFILE=dev
# explores new random examples locally.
settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The processes the tests start (`tps19 paper --no-ui`, the CLI, crash children) compile every
# TPS19 module they import from source when PYTHONDONTWRITEBYTECODE is set, as this machine's
# shells do: ~100 modules, ~0.2 s of CPU a `tps19 paper` child. They write and reuse __pycache__
# as any Python does by default (git ignores it; installed packages keep their own .pyc).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# One thread for OpenMP (scikit-learn's models) and BLAS, here and in the processes the tests
# start, unless the caller chose otherwise: tests run in parallel worker processes on a busy
# 2-core machine, where a library's own thread pool only adds threads that spin waiting for a
# core (tests/ml/test_train.py + test_decisions_paper: 16.2 s of CPU with the default pools,
# 9.1 s with one thread, at load 17). Set before anything imports numpy.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server per test session, started on first use. Outside CI a
    machine without PostgreSQL skips the PostgreSQL cases (saying why); in CI it is an error."""
    server = PgServer()
    try:
        server.start()
    except (ServerUnavailable, RuntimeError, OSError) as err:
        server.stop()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI: cannot start PostgreSQL: {err}", pytrace=False)
        pytest.skip(f"no PostgreSQL server could be started: {err}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | Path]:
    """Where a test's database lives, on each backend: a new SQLite file, or an empty database
    at the head revision on the session's PostgreSQL server (emptied and reused after the test)."""
    if request.param == "sqlite":
        yield tmp_path / "test.db"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    url = server.lease()
    yield url
    server.give_back(url)


# Parallel runs (pytest-xdist; pyproject's addopts say `-n auto --dist loadgroup`). The suite is
# mostly waiting (servers, child processes, Pilot frames) and CPU spread over ~1,000 tests. Four
# workers, not three: beside two busy loops on two cores (autogroup), four worker sessions get 4/6
# of the machine instead of 3/5 (clean clone, 16:53 UTC: 4:47 against 5:56 with three). The
# variables that choose otherwise are not TPS19_*: the product refuses unknown TPS19_ settings in
# the environment, and every `tps19` child a test starts inherits it.
WORKERS = 4
DURATIONS_KEY = "tps19/durations"  # seconds per test id, from the last runs (pytest's cache dir)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """How many workers ``-n auto`` starts: none when the command line names test files or single
    tests (a developer's run stays one process: no worker start-up to pay), TESTS_TPS19_WORKERS if
    set, else WORKERS for the whole suite or a directory."""
    env = os.environ.get("TESTS_TPS19_WORKERS", "").strip()
    if env:
        return int(env)
    if any(Path(str(arg).split("::", 1)[0]).is_file() for arg in config.args):
        return 0
    return WORKERS


def _uses_wide_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(defs[-1].scope in ("module", "package", "class")
               for defs in info.name2fixturedefs.values() if defs)


def _expected_seconds(item: pytest.Item, last: dict[str, float]) -> float:
    if item.nodeid in last:
        return last[item.nodeid]
    # no record yet (a clean clone): processes and Pilot-driven desks are the long ones
    if item.get_closest_marker("slow"):
        return 8.0
    return 4.0 if item.nodeid.startswith("tests/ui/") else 0.5


def _schedule(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Workers take tests in list order, so the longest go first: a 60 s test started last would
    keep one worker busy long after the others ran out of work. A module whose tests share a
    module-scoped fixture (a Dask cluster, an exchange process, a trained model) stays on one worker
    (xdist_group), so that fixture is built once, not once per worker."""
    cache = getattr(config, "cache", None)
    last: dict[str, float] = cache.get(DURATIONS_KEY, {}) if cache is not None else {}
    cost: dict[str, float] = {}
    for item in items:
        if _uses_wide_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
        cost[item.nodeid] = _expected_seconds(item, last)
    group_cost: dict[str, float] = {}
    for item in items:
        key = item.nodeid.split("::", 1)[0] if item.get_closest_marker("xdist_group") else item.nodeid
        group_cost[key] = group_cost.get(key, 0.0) + cost[item.nodeid]

    def order(item: pytest.Item) -> float:
        key = item.nodeid.split("::", 1)[0] if item.get_closest_marker("xdist_group") else item.nodeid
        return -group_cost[key]

    items.sort(key=order)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    nodeid = report.nodeid
    base, at, group = nodeid.rpartition("@")  # "...::test@group": the id xdist gives a grouped test
    if at and "::" not in group and "]" not in group:
        nodeid = base
    _durations[nodeid] = _durations.get(nodeid, 0.0) + report.duration


_durations: dict[str, float] = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Remember each test's time (the controller's, or a serial run's) for the next run's order."""
    config = session.config
    cache = getattr(config, "cache", None)
    if hasattr(config, "workerinput") or cache is None or not _durations:
        return
    known = cache.get(DURATIONS_KEY, {})
    known.update({k: round(v, 3) for k, v in _durations.items()})
    cache.set(DURATIONS_KEY, known)


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") and os.environ.get("TESTS_TPS19_SETSID", "1") == "1":
        os.setsid()
    config.addinivalue_line(
        "markers",
        "sqlite_only: trading logic that never touches an SQL dialect (matching, risk checks, order "
        "lifecycle against the venue): its database runs on SQLite only. Storage, crash recovery, "
        "restarts and reconciliation keep both backends.",
    )


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the PostgreSQL case of tests marked ``sqlite_only`` (their SQLite case runs); in a
    worker, order and group the tests (``_schedule``)."""
    keep, drop = [], []
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is not None and spec.params.get("db_target") == "postgresql" and item.get_closest_marker("sqlite_only"):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if hasattr(config, "workerinput"):
        _schedule(config, items)
