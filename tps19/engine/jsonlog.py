"""JSON-lines log writer with secret redaction (one object per line, flushed per line)."""

from __future__ import annotations

import json
import sys
import time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import IO, Any


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, Enum):
        return o.value
    if isinstance(o, (set, tuple)):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    return repr(o)


class JsonLines:
    def __init__(self, path: Path | None = None, secrets: list[str] | None = None) -> None:
        self._own = path is not None
        self._fh: IO[str] = open(path, "a", encoding="utf-8") if path is not None else sys.stdout
        # Never let a key or secret reach a log line, whatever text carries it.
        self._secrets = [s for s in (secrets or []) if s and len(s) >= 4]
        self.lines = 0

    def write(self, event: str, **fields: Any) -> None:
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        line = json.dumps(record, default=_default, separators=(",", ":"))
        for s in self._secrets:
            line = line.replace(s, "***")
        self._fh.write(line + "\n")
        self._fh.flush()
        self.lines += 1

    def close(self) -> None:
        if self._own:
            self._fh.close()
