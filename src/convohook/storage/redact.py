"""Database URLs as they may be shown: in errors, logs and `convohook config show`."""

from __future__ import annotations

import re

# libpq also takes the password as a query parameter: postgresql://app@db/convohook?password=…
_PASSWORD_PARAM = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def redacted_url(url: str) -> str:
    """The URL with any password replaced by `***`."""
    url = _PASSWORD_PARAM.sub(r"\1***", url)
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    user, colon, _ = credentials.partition(":")
    if not sep or not at or not colon:
        return url
    return f"{scheme}://{user}:***@{host}"
