"""PostgreSQL's client programs (pg_dump, pg_restore): on PATH, or the distribution's versioned directory."""

from __future__ import annotations

import glob
import shutil

from .errors import StorageError


def find_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if candidates:
        return candidates[-1]
    raise StorageError(f"{name} is not installed (the distribution's postgresql-client package provides it)")
