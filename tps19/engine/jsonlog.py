"""JSON-lines log writer with secret redaction (one object per line, flushed per line), and a
stdlib ``logging`` handler that sends every record through it."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, quote_plus


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


def secret_pattern(secret: str) -> str:
    """A regex matching `secret` however many times it was escaped on its way into a line: raw,
    as JSON escapes it, as ``repr()`` escapes it (an exception's repr), and any nesting of those
    (a JSON body inside a message, a repr inside a repr ...). A secret containing ``"`` or ``\\``
    never appears raw in a JSON line, so replacing the raw text alone would let it through."""
    parts = []
    for c in secret:
        # a quote is escaped or not depending on the other quotes around it (repr): either way
        alts = {r"\\*" + re.escape(c) if c in "\"'" else re.escape(c)}
        for form in (json.dumps(c)[1:-1], repr(c)[1:-1]):  # e.g. \" \\ \n \u00e9 \xa0
            if form != c and form.startswith("\\"):
                # each level of escaping doubles the backslashes in front
                alts.add(r"\\+" + re.escape(form[1:]))
        parts.append(alts.pop() if len(alts) == 1 else "(?:" + "|".join(sorted(alts, key=len, reverse=True)) + ")")
    return "".join(parts)


def secret_forms(secret: str) -> list[str]:
    """Literal forms no escape pattern covers (URL encoding), for the redaction regex."""
    return sorted({quote(secret, safe=""), quote_plus(secret)} - {secret}, key=len, reverse=True)


def _open_private(path: Path) -> IO[str]:
    """Append to `path`, creating it readable by its owner only (an existing file keeps its mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    return os.fdopen(fd, "a", encoding="utf-8")


class JsonLines:
    """One JSON object per line to stdout or a file. A file rotates by size: when the next line
    would take it past ``max_bytes`` it becomes ``F.1`` (``F.1`` becomes ``F.2`` ... up to
    ``backups`` kept files) and the line goes to a new ``F``. The rotation and the write happen
    under one lock, so no line is lost or split across files, whichever thread writes it."""

    def __init__(self, path: Path | None = None, secrets: list[str] | None = None, *,
                 max_bytes: int = 0, backups: int = 0) -> None:
        self._own = path is not None
        self._path = path
        self._fh: IO[str] = _open_private(path) if path is not None else sys.stdout
        self._max_bytes = max_bytes if path is not None and backups > 0 else 0
        self._backups = backups
        self._size = os.fstat(self._fh.fileno()).st_size if self._max_bytes else 0
        self.rotations = 0
        self.rotation_errors = 0
        # Never let a key or secret reach a log line, whatever text carries it.
        kept = sorted({s for s in (secrets or []) if s and len(s) >= 4}, key=len, reverse=True)
        alts = [secret_pattern(s) for s in kept] + [re.escape(f) for s in kept for f in secret_forms(s)]
        self._redactor = re.compile("|".join(alts)) if alts else None
        # log records may come from other threads (aiosqlite's worker, ccxt's): one line at a time
        self._lock = threading.Lock()
        self.lines = 0

    def redact(self, text: str) -> str:
        return self._redactor.sub("***", text) if self._redactor is not None else text

    def _line(self, event: str, fields: dict[str, Any]) -> str:
        record = {"ts": round(time.time(), 3), "event": event, **fields}
        return self.redact(json.dumps(record, default=_default, separators=(",", ":"))) + "\n"

    def write_last(self, event: str, **fields: Any) -> None:
        """The last line before a forced exit, written from a signal handler. That handler may
        have interrupted this very thread inside `write`, holding the (non-reentrant) lock:
        waiting for it would hang the exit forever. So wait only briefly (another thread's
        write ends quickly), then write without it."""
        line = self._line(event, fields)
        locked = self._lock.acquire(timeout=0.5)
        try:
            self._fh.write(line)
            self._fh.flush()
        finally:
            if locked:
                self._lock.release()

    def write(self, event: str, **fields: Any) -> None:
        line = self._line(event, fields)
        with self._lock:
            if self._max_bytes:
                size = len(line.encode("utf-8"))
                if self._size and self._size + size > self._max_bytes:
                    try:
                        self._rotate()
                    except OSError:  # e.g. the directory became read-only: keep appending, count it
                        self.rotation_errors += 1
                        if self._fh.closed:
                            self._fh = _open_private(self._path)  # type: ignore[arg-type]
                self._size += size
            self._fh.write(line)
            self._fh.flush()
            self.lines += 1

    def _rotate(self) -> None:
        """F -> F.1 -> F.2 ... (the oldest beyond ``backups`` is removed); caller holds the lock."""
        assert self._path is not None
        self._fh.close()
        base = str(self._path)
        for i in range(self._backups - 1, 0, -1):
            if os.path.exists(f"{base}.{i}"):
                os.replace(f"{base}.{i}", f"{base}.{i + 1}")
        os.replace(base, f"{base}.1")
        self._fh = _open_private(self._path)
        self._size = 0
        self.rotations += 1

    def close(self) -> None:
        if self._own:
            self._fh.close()


class JsonLogHandler(logging.Handler):
    """Stdlib log records (tps19, ccxt, aiohttp, asyncio, warnings) as ``log`` JSON lines through
    JsonLines, so they are redacted: level, logger, message, and for an exception its type and
    text -- never a traceback. Records flagged ``tps19_issue`` are skipped: the trading layer
    publishes those on the bus, where they are written as ``issue`` lines with their fields."""

    def __init__(self, out: JsonLines, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.out = out
        self.failures = 0

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "tps19_issue", False):
            return
        try:
            message = record.getMessage()
        except Exception:  # a bad format string in someone's log call: keep what we can
            message = str(record.msg)
        fields: dict[str, Any] = {"level": record.levelname.lower(), "logger": record.name, "message": message}
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            fields["exc_type"] = type(exc).__name__
            fields["exc_message"] = str(exc)[:500]
        try:
            self.out.write("log", **fields)
        except Exception:
            self.handleError(record)

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's default prints a traceback on stderr: count instead
        self.failures += 1


class captured_logs:
    """Context manager: while active, every stdlib log record and warning goes to `out` as JSON
    (tps19's own loggers from `level`, third-party ones from WARNING), and nothing reaches
    Python's last-resort stderr handler. Restores the previous logging setup on exit."""

    def __init__(self, out: JsonLines, level: int = logging.INFO) -> None:
        self.handler = JsonLogHandler(out)
        self.level = level
        self._saved: tuple[Any, ...] = ()

    def __enter__(self) -> JsonLogHandler:
        root, ours = logging.getLogger(), logging.getLogger("tps19")
        self._saved = (root.level, ours.level, list(root.handlers))
        for h in list(root.handlers):  # e.g. a basicConfig stderr handler: would skip redaction
            root.removeHandler(h)
        root.addHandler(self.handler)
        root.setLevel(logging.WARNING)
        ours.setLevel(self.level)
        logging.captureWarnings(True)
        return self.handler

    def __exit__(self, *exc: Any) -> None:
        root, ours = logging.getLogger(), logging.getLogger("tps19")
        logging.captureWarnings(False)
        root.removeHandler(self.handler)
        root_level, our_level, handlers = self._saved
        for h in handlers:
            root.addHandler(h)
        root.setLevel(root_level)
        ours.setLevel(our_level)
