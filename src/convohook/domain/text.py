"""Text that convohook stores: never a NUL character, which PostgreSQL cannot hold in text (and
cannot even compare with), so it is refused as invalid input on every backend alike."""

from __future__ import annotations

NUL_MESSAGE = "must not contain NUL (\\u0000) characters"


def has_nul(value: object) -> bool:
    """A NUL character anywhere in a string, a list's or a mapping's (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    return False
