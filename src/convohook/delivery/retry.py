"""The retry policy as a pure function: what to do after an attempt, given its outcome.

No clock and no global randomness: `now` and a `random.Random` come in, so every decision can be
replayed in a test.
"""

from __future__ import annotations

import email.utils
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC

# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: the Svix schedule, about 28 hours in all, which rides
# out a receiver's overnight outage without retrying for days.
DEFAULT_SCHEDULE: tuple[float, ...] = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)

# A receiver asking for more than this is more likely confused than down for maintenance; the
# schedule still bounds the number of attempts.
MAX_RETRY_AFTER = 86400.0

ERROR_CLASSES = frozenset({"timeout", "connect", "dns", "tls", "http", "blocked"})

# RFC 9110 gives Retry-After a meaning for these statuses only.
_RETRY_AFTER_STATUSES = frozenset({429, 503})


def parse_schedule(text: str) -> tuple[float, ...]:
    """Parse `CONVOHOOK_RETRY_SCHEDULE`: comma-separated positive seconds, e.g. `5,300,1800`."""
    delays: list[float] = []
    for part in text.split(","):
        try:
            delay = float(part.strip())
        except ValueError:
            delay = math.nan
        if not (math.isfinite(delay) and delay > 0):
            raise ValueError(
                "CONVOHOOK_RETRY_SCHEDULE must be comma-separated positive numbers of seconds "
                f"(e.g. '5,300,1800'), got {text!r}"
            )
        delays.append(delay)
    return tuple(delays)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP-date.

    Returns None when the header is absent or unreadable, so a bad header falls back to the
    schedule instead of failing the delivery; a date in the past means 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    # A date without a zone is GMT (RFC 9110); timestamp() would read a naive one as local time.
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """What one attempt produced, as far as the policy cares.

    `error_class` is one of ERROR_CLASSES or None; `retry_after` is already in seconds (see
    parse_retry_after).
    """

    status_code: int | None
    error_class: str | None = None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Succeeded:
    pass


@dataclass(frozen=True, slots=True)
class RetryAt:
    at: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    reason: str


@dataclass(frozen=True, slots=True)
class DisableWebhook:
    reason: str


NextStep = Succeeded | RetryAt | GiveUp | DisableWebhook


def describe(outcome: AttemptOutcome) -> str:
    """A short human phrase for an outcome, used in reasons shown to the user."""
    if outcome.status_code is not None:
        return f"HTTP {outcome.status_code}"
    return outcome.error_class or "unknown error"


def decide_next(
    attempt_number: int,
    outcome: AttemptOutcome,
    schedule: Sequence[float],
    now: float,
    rng: random.Random,
    jitter: float = 0.2,
    min_delay_after_throttle: float = 0.0,
) -> NextStep:
    """After attempt `attempt_number` (1-based) ended with `outcome`, what happens next.

    Any 2xx succeeds. 410 Gone disables the webhook: the receiver said the endpoint is gone for
    good. Everything else, including 3xx (redirects are not followed, so a redirect never reached
    the receiver's code) and a target refused by the SSRF guard (configuration may change), is
    retried after `schedule[attempt_number - 1]` seconds, spread by ±`jitter` so that deliveries
    failed together do not come back together, until the schedule runs out. For 429 and 503 a
    Retry-After longer than the scheduled wait is honoured, up to one day.
    """
    if attempt_number < 1:
        raise ValueError(f"attempt_number is 1-based, got {attempt_number}")
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be a fraction in [0, 1), got {jitter}")

    status = outcome.status_code
    if status is not None and 200 <= status < 300:
        return Succeeded()
    if status == 410:
        return DisableWebhook(
            "the endpoint answered 410 Gone, which asks senders to stop: the webhook was "
            "disabled; re-enable it once the URL is fixed"
        )
    if attempt_number > len(schedule):
        return GiveUp(
            f"gave up after {attempt_number} attempts; the last one ended in {describe(outcome)}"
        )

    delay = schedule[attempt_number - 1] * (1 + rng.uniform(-jitter, jitter))
    if status == 429 or outcome.error_class == "timeout":
        # The receiver is overloaded (it said so, or could not answer in time): coming back
        # sooner than this only adds to its load, whatever the configured schedule says.
        delay = max(delay, min_delay_after_throttle)
    if status in _RETRY_AFTER_STATUSES and outcome.retry_after is not None:
        # The cap applies to the receiver's request only, so a configured schedule longer than a
        # day is still followed.
        delay = max(delay, min(max(outcome.retry_after, 0.0), MAX_RETRY_AFTER))
    return RetryAt(at=now + delay)
