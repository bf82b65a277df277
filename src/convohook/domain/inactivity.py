"""Inactivity (DESIGN section 7): a channel's `auto_done_after` and the deadline it gives each
open conversation (pure).

The deadline is stored on the conversation (`conversations.idle_deadline_ms`) so that the closer
finds what is due with an index range scan; storage/sql/conversations.py computes the same
formula in SQL where it must be set-based (every message, a change of the setting).
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


def idle_deadline(last_message_at_ms: int | None, auto_done_after: int | None) -> int | None:
    """When an open conversation whose last message went at `last_message_at_ms` is due to be
    closed, or None when its channel has no rule."""
    if auto_done_after is None or last_message_at_ms is None:
        return None
    return last_message_at_ms + auto_done_after * 1000


def split_duration(seconds: int) -> tuple[int, str]:
    """For a form: the setting as a number of hours when it is whole hours, else minutes
    (rounded up, so what is shown is never shorter than what is stored)."""
    if seconds % 3600 == 0:
        return seconds // 3600, "hours"
    return -(-seconds // 60), "minutes"
