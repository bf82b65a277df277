"""Per-webhook rate and concurrency limits (pure: the caller passes the time).

A subscriber that can take 5 requests a second, or 2 at a time, gets no more than that. What a
limit holds back is not sent late in a burst: the dispatcher puts it back, due when the limit
allows, without counting an attempt. Limits apply per worker process; with N workers a
webhook's effective ceiling is N times its limit (documented in docs/delivery.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

CONCURRENCY_RECHECK_S = 0.25  # how soon a delivery held back by the concurrency limit is retried


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second
    burst: float
    tokens: float
    updated: float

    def take(self, now: float) -> float:
        """Take one token: 0 when granted, else how many seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class WebhookLimits:
    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._in_flight: Counter[str] = Counter()

    def admit(
        self, webhook_id: str, *, rate: float | None, concurrency: int | None, now: float
    ) -> float:
        """0 to send now (the caller must `release` when done), else seconds to wait."""
        if concurrency is not None and self._in_flight[webhook_id] >= concurrency:
            return CONCURRENCY_RECHECK_S
        if rate is not None:
            bucket = self._buckets.get(webhook_id)
            if bucket is None or bucket.rate != rate:
                bucket = TokenBucket(
                    rate=rate, burst=max(1.0, rate), tokens=max(1.0, rate), updated=now
                )
                self._buckets[webhook_id] = bucket
            wait = bucket.take(now)
            if wait > 0:
                return wait
        self._in_flight[webhook_id] += 1
        return 0.0

    def release(self, webhook_id: str) -> None:
        self._in_flight[webhook_id] -= 1
        if self._in_flight[webhook_id] <= 0:
            del self._in_flight[webhook_id]
