"""Time is passed in, never read from a global, so tests can move it (hours of retries in ms)."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]  # milliseconds since the epoch


def system_clock() -> int:
    return int(time.time() * 1000)
