"""The rules of a channel's auto_done_after, and how the Channels page shows it."""

from __future__ import annotations

import pytest

from convohook.domain.inactivity import (
    AUTO_DONE_MAX_S,
    AUTO_DONE_MIN_S,
    check_auto_done_after,
    split_duration,
)


@pytest.mark.parametrize("seconds", [None, AUTO_DONE_MIN_S, 3600, AUTO_DONE_MAX_S])
def test_a_minute_to_ninety_days_or_off(seconds: int | None) -> None:
    assert check_auto_done_after(seconds) is None


@pytest.mark.parametrize("seconds", [0, -1, AUTO_DONE_MIN_S - 1, AUTO_DONE_MAX_S + 1, True])
def test_anything_else_is_refused_with_the_bounds(seconds: int) -> None:
    why = check_auto_done_after(seconds)
    assert why is not None
    assert "null to turn it off" in why


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(3600, (1, "hours")), (7200, (2, "hours")), (5400, (90, "minutes")), (61, (2, "minutes"))],
)
def test_whole_hours_as_hours_else_minutes_never_shorter(
    seconds: int, shown: tuple[int, str]
) -> None:
    assert split_duration(seconds) == shown
