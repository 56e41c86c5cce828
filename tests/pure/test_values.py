"""How a duration reads in an error (model/values.py's `format_seconds`)."""

from __future__ import annotations

import pytest

from model.values import format_seconds


@pytest.mark.parametrize(("seconds", "text"), [
    (0.1, "100ms"), (1.5, "1500ms"), (1, "1s"), (30, "30s"), (60, "1m"), (90, "1m 30s"), (3600, "1h"),
    (5400, "1h 30m"), (172800, "2d"), (172801, "2d 1s"), (2592000, "30d"),
    (311040, "3d 14h 24m"),  # a retry schedule's total read "5184m" (found by a fresh-user trial)
])
def test_a_duration_reads_in_its_largest_units(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
