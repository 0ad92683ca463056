"""Never a secret on screen: log fields whose name looks sensitive are masked before the desk
shows them (the log pane and the log screen share this)."""

from __future__ import annotations

from typing import Any

SENSITIVE = ("key", "secret", "password", "token", "sig")


def redact_event(e: Any) -> Any:
    """The log event as the desk may show it: sensitive-looking fields masked."""
    if not e.fields or not any(any(s in k.lower() for s in SENSITIVE) for k in e.fields):
        return e
    from .engine.events import LogEvent

    fields = {k: ("***" if any(s in k.lower() for s in SENSITIVE) else v) for k, v in e.fields.items()}
    return LogEvent(level=e.level, message=e.message, fields=fields, ts=e.ts)
