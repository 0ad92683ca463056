"""Points in time as users type them (flags, the desk's forms), read as epoch milliseconds UTC."""

from __future__ import annotations

from datetime import UTC, datetime

_MAX_EPOCH_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z


def parse_time_value(value: str | None) -> int | None:
    """'2024-01-01', '2024-01-01T12:00', '2024-01-01 12:00:00Z' or epoch ms -> ms (UTC); ValueError if bad."""
    if value is None:
        return None
    v = value.strip()
    if v.isdigit():
        # seconds or milliseconds since 1970, up to the last day datetime (and SQLite) can hold
        n = int(v) if len(v) <= 16 else _MAX_EPOCH_MS + 1
        n = n if n > 10**11 else n * 1000
        if n > _MAX_EPOCH_MS:
            raise ValueError(f"bad time {value[:20]!r}: beyond the year 9999")
        return n
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad time {value!r}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM or epoch milliseconds") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
