"""Times as users type them into --since/--until and the desk's forms."""

from __future__ import annotations

import pytest

from tps19.engine.history import parse_time_value

JAN1_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize("text", ["2024-01-01", "2024-01-01T00:00", "2024-01-01 00:00:00Z", "2024-01-01T01:00+01:00",
                                  str(JAN1_MS), str(JAN1_MS // 1000), f"  {JAN1_MS}  "])
def test_dates_and_epochs_read_as_utc_milliseconds(text):
    assert parse_time_value(text) == JAN1_MS


def test_no_time_is_none():
    assert parse_time_value(None) is None


@pytest.mark.parametrize(("text", "says"), [("yesterday", "use YYYY-MM-DD"), ("2024-13-01", "use YYYY-MM-DD"),
                                            ("9" * 17, "beyond the year 9999"), ("253402300800000", "beyond the year 9999")])
def test_bad_times_are_one_clear_error(text, says):
    with pytest.raises(ValueError, match=says):
        parse_time_value(text)
