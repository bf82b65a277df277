"""What one delivery attempt came to, as the dispatcher logs it and the retry policy reads it
(pure: the transport in `outbound/webhooks.py` makes these)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """One attempt as logged.

    `error_class` is None on success, `http` for a non-2xx answer, otherwise one of timeout,
    connect, dns, tls, blocked (no answer). `error` is a sentence for the delivery log; it is also
    set on a 2xx whose body could not be read completely, which still counts as delivered.
    `retry_after` is the raw header, for retry.parse_retry_after.
    """

    status_code: int | None
    response_body: str
    duration_ms: float
    error: str | None
    error_class: str | None
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
