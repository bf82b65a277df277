"""Per-webhook rate and concurrency limits (pure, with a hand-moved clock)."""

from __future__ import annotations

import pytest

from convohook.delivery.limits import CONCURRENCY_RECHECK_S, WebhookLimits


def test_rate_limit_grants_the_burst_then_spaces_requests() -> None:
    limits = WebhookLimits()
    granted = [limits.admit("w", rate=2, concurrency=None, now=0.0) for _ in range(2)]
    assert granted == [0.0, 0.0]
    wait = limits.admit("w", rate=2, concurrency=None, now=0.0)
    assert wait == pytest.approx(0.5)
    assert limits.admit("w", rate=2, concurrency=None, now=0.5) == 0.0


def test_rate_limits_are_per_webhook() -> None:
    limits = WebhookLimits()
    assert limits.admit("a", rate=1, concurrency=None, now=0.0) == 0.0
    assert limits.admit("a", rate=1, concurrency=None, now=0.0) > 0
    assert limits.admit("b", rate=1, concurrency=None, now=0.0) == 0.0


def test_concurrency_limit_counts_until_release() -> None:
    limits = WebhookLimits()
    assert limits.admit("w", rate=None, concurrency=2, now=0.0) == 0.0
    assert limits.admit("w", rate=None, concurrency=2, now=0.0) == 0.0
    assert limits.admit("w", rate=None, concurrency=2, now=0.0) == CONCURRENCY_RECHECK_S
    limits.release("w")
    assert limits.admit("w", rate=None, concurrency=2, now=0.0) == 0.0


def test_no_limits_admit_everything() -> None:
    limits = WebhookLimits()
    assert all(limits.admit("w", rate=None, concurrency=None, now=0.0) == 0.0 for _ in range(1000))
