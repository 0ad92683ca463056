"""A throwaway PostgreSQL server for the tests: its own data directory in a temp dir, a loopback
port, trust auth for one user, stopped and deleted at the end of the session.

PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` user
(``runuser``). Each test gets a new database cloned from a template already migrated to the
head, so a test costs one CREATE DATABASE (tens of ms), not a migration.
"""

from __future__ import annotations

import concurrent.futures
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

USER = "tps19"
TEMPLATE = "tps19_template"


class ServerUnavailable(Exception):
    pass


def find_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self) -> None:
        self.dir: Path | None = None
        self.port = 0
        self._counter = itertools.count(1)
        self._as_postgres: list[str] = []
        self._loop: Any = None
        self._thread: threading.Thread | None = None
        self._conn: Any = None
        self._free: list[str] = []

    @property
    def base_url(self) -> str:
        return f"postgresql+asyncpg://{USER}@127.0.0.1:{self.port}"

    def url(self, database: str) -> str:
        return f"{self.base_url}/{database}"

    def _run(self, *cmd: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as_postgres, *cmd], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def start(self, durable: bool = False) -> None:
        """``durable``: PostgreSQL's default fsync/full-page settings (benchmarks); the tests run
        without them."""
        initdb, pg_ctl, psql = find_bin("initdb"), find_bin("pg_ctl"), find_bin("psql")
        if not (initdb and pg_ctl and psql):
            raise ServerUnavailable("PostgreSQL is not installed (no initdb/pg_ctl/psql; "
                                    "`apt-get install postgresql` provides them)")
        self.psql = psql
        self.dir = Path(tempfile.mkdtemp(prefix="tps19-pg-"))
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise ServerUnavailable("running as root and no runuser to start PostgreSQL as another user")
            try:
                shutil.chown(self.dir, "postgres")
            except (LookupError, OSError) as err:
                raise ServerUnavailable(f"running as root and no postgres user to run the server: {err}") from None
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        r = self._run(initdb, "-D", str(data), "-U", USER, "--auth=trust", "--no-sync", "-E", "UTF8")
        if r.returncode != 0:
            raise ServerUnavailable(f"initdb failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        # durability off: a test server's data is thrown away (and fsync is most of a commit's cost)
        opts = f"-k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300"
        if not durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        for _ in range(3):
            self.port = _free_port()
            r = self._run(pg_ctl, "-D", str(data), "-l", str(self.dir / "log"), "-w", "-t", "60", "start",
                          "-o", f"-p {self.port} {opts}")
            if r.returncode == 0:
                break
        else:
            log = (self.dir / "log").read_text(errors="replace").strip().splitlines()[-1:] if (self.dir / "log").exists() else []
            raise ServerUnavailable(f"pg_ctl start failed: {r.stderr.strip() or r.stdout.strip()} {log}")
        self.sql(f"CREATE DATABASE {TEMPLATE}")
        self._migrate_template()

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement; the postgres database's through one kept connection (a psql process
        per test cost 0.15 s on a busy machine)."""
        if database == "postgres":
            return self._admin(statement)
        r = subprocess.run([self.psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database,
                            "-v", "ON_ERROR_STOP=1", "-Atc", statement], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"psql {statement!r}: {r.stderr.strip()}")
        return r.stdout

    def _admin(self, statement: str) -> str:
        import asyncio

        import asyncpg

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="pg-admin", daemon=True)
            self._thread.start()

        async def run() -> str:
            if self._conn is None:
                self._conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user=USER, database="postgres")
            rows = await self._conn.fetch(statement)
            return "\n".join("|".join(str(v) for v in r.values()) for r in rows)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(120)

    def _migrate_template(self) -> None:
        import asyncio

        from tps19.engine.storage import Database

        async def go() -> None:
            db = Database(self.url(TEMPLATE))
            try:
                await db.upgrade()
            finally:
                await db.close()

        # in a thread: the caller may be inside a running event loop (an async fixture)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, go()).result()

    def new_database(self, prefix: str = "t") -> str:
        """A fresh database at the head revision; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        self.sql(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE} STRATEGY FILE_COPY")
        return self.url(name)

    def lease(self) -> str:
        """A database at the head revision with no rows: a returned one emptied, else a new one
        (CREATE DATABASE takes ~0.5 s on a busy machine; emptying a test's few rows, milliseconds)."""
        return self._free.pop() if self._free else self.new_database("pool")

    def give_back(self, url: str) -> None:
        """Empty the database's tables and keep it for the next test; a database that cannot be
        emptied now (a leaked transaction holds a lock), or whose schema a test changed, is dropped
        from the pool."""
        import asyncio

        import asyncpg

        from tps19.engine.storage import migrate

        async def empty() -> bool:
            conn = await asyncpg.connect(host="127.0.0.1", port=self.port, user=USER, database=url.rsplit("/", 1)[1])
            try:
                await conn.execute("SET lock_timeout = '1s'; SET session_replication_role = replica")
                if await conn.fetchval("SELECT version_num FROM alembic_version") != migrate.head():
                    return False
                tables = [r[0] for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
                async with conn.transaction():
                    for t in tables:
                        await conn.execute(f'DELETE FROM "{t}"')
                return True
            except Exception:
                return False
            finally:
                await conn.close()

        self._admin("SELECT 1")  # starts the admin loop
        if asyncio.run_coroutine_threadsafe(empty(), self._loop).result(120):
            self._free.append(url)

    def new_empty_database(self, prefix: str = "e") -> str:
        name = f"{prefix}_{os.getpid()}_{next(self._counter)}"
        self.sql(f"CREATE DATABASE {name} STRATEGY FILE_COPY")
        return self.url(name)

    def stop(self) -> None:
        if self._loop is not None:
            import asyncio

            if self._conn is not None:
                asyncio.run_coroutine_threadsafe(self._conn.close(), self._loop).result(30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            self._loop = self._conn = None
        if self.dir is None:
            return
        pg_ctl = find_bin("pg_ctl")
        if self.port and pg_ctl:
            self._run(pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "-w", "stop", timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
