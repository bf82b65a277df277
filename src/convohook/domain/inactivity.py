"""Inactivity (DESIGN section 7): the rules of a channel's `auto_done_after` (pure).

A conversation's deadline is its last message (either way) plus `auto_done_after`; it is done
at that deadline, not when the closer gets to it. The deadline is stored on the conversation
(`conversations.idle_deadline_ms`) so that the closer finds what is due with an index range
scan, and computed in SQL (storage/sql/conversations.py, `_deadline`) by the very statements
that write a message's time or recompute after a change of the setting: whoever touches a
conversation cannot forget it, and a batch never round-trips through Python.
"""

from __future__ import annotations

# A minute at least: the closer sweeps every few seconds, and a shorter rule would close a
# conversation while its customer is still typing. Ninety days at most: longer is "never", and
# Meta lets a business answer for seven days only.
AUTO_DONE_MIN_S = 60
AUTO_DONE_MAX_S = 90 * 86_400


def check_auto_done_after(seconds: int | None) -> str | None:
    """Why `seconds` is not a valid setting, or None (None itself turns the rule off)."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        return "a whole number of seconds, or null to turn it off"
    if not AUTO_DONE_MIN_S <= seconds <= AUTO_DONE_MAX_S:
        return (
            f"between {AUTO_DONE_MIN_S} seconds (a minute) and {AUTO_DONE_MAX_S} seconds "
            "(90 days), or null to turn it off"
        )
    return None


def split_duration(seconds: int) -> tuple[int, str]:
    """For a form: the setting as a number of hours when it is whole hours, else minutes
    (rounded up, so what is shown is never shorter than what is stored)."""
    if seconds % 3600 == 0:
        return seconds // 3600, "hours"
    return -(-seconds // 60), "minutes"
