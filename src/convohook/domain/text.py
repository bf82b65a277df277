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


# What a name or a tag is trimmed of, and must have more than: ASCII whitespace, spelled out so
# that Python here and the regex engines that read the OpenAPI patterns (pydantic's, a client's)
# agree on every character; `\s` means different sets in each.
BLANKS = " \t\n\r\f\v"
# A string with at least one character that is neither NUL nor a blank (an OpenAPI pattern).
NOT_BLANK = r"^[^\x00]*[^\x00 \t\n\r\f\v][^\x00]*$"


def trimmed(value: str) -> str:
    return value.strip(BLANKS)
