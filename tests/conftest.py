"""Fixtures every test package may use: the database backends (SQLite file, PostgreSQL server)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg_server import PgServer, ServerUnavailable


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
