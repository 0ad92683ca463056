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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sqlite_only: trading logic that never touches an SQL dialect (matching, risk checks, order "
        "lifecycle against the venue): its database runs on SQLite only. Storage, crash recovery, "
        "restarts and reconciliation keep both backends.",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the PostgreSQL case of tests marked ``sqlite_only`` (their SQLite case runs)."""
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
