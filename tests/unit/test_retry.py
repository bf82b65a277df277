"""The retry policy: schedule with jitter, give-up, 410, Retry-After, redirects as failures."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from convohook.delivery.retry import (
    DEFAULT_SCHEDULE,
    MAX_RETRY_AFTER,
    AttemptOutcome,
    DisableWebhook,
    GiveUp,
    NextStep,
    RetryAt,
    Succeeded,
    decide_next,
    parse_retry_after,
    parse_schedule,
)

NOW = 1_700_000_000.0


def _delay(step: NextStep) -> float:
    assert isinstance(step, RetryAt), step
    return step.at - NOW


def _decide(
    attempt: int,
    outcome: AttemptOutcome,
    *,
    jitter: float = 0.0,
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE,
) -> NextStep:
    return decide_next(attempt, outcome, schedule, NOW, random.Random(7), jitter=jitter)


def test_default_schedule_is_the_documented_one() -> None:
    assert DEFAULT_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_any_2xx_succeeds(status: int) -> None:
    assert _decide(1, AttemptOutcome(status)) == Succeeded()
    assert _decide(99, AttemptOutcome(status)) == Succeeded()


def test_410_disables_the_webhook() -> None:
    step = _decide(1, AttemptOutcome(410))
    assert isinstance(step, DisableWebhook)
    assert "410" in step.reason


@pytest.mark.parametrize(
    "outcome",
    [
        AttemptOutcome(500, "http"),
        AttemptOutcome(404, "http"),
        AttemptOutcome(301, "http"),
        AttemptOutcome(302, "http"),
        AttemptOutcome(None, "timeout"),
        AttemptOutcome(None, "connect"),
        AttemptOutcome(None, "dns"),
        AttemptOutcome(None, "tls"),
        AttemptOutcome(None, "blocked"),
    ],
)
def test_failures_follow_the_schedule(outcome: AttemptOutcome) -> None:
    for attempt, wait in enumerate(DEFAULT_SCHEDULE, start=1):
        assert _delay(_decide(attempt, outcome)) == wait


def test_gives_up_when_the_schedule_runs_out() -> None:
    n = len(DEFAULT_SCHEDULE)
    assert isinstance(_decide(n, AttemptOutcome(500, "http")), RetryAt)
    step = _decide(n + 1, AttemptOutcome(500, "http"))
    assert isinstance(step, GiveUp)
    assert f"{n + 1} attempts" in step.reason
    assert "HTTP 500" in step.reason
    timed_out = _decide(n + 1, AttemptOutcome(None, "timeout"))
    assert isinstance(timed_out, GiveUp)
    assert "timeout" in timed_out.reason


def test_empty_schedule_gives_up_at_once() -> None:
    assert isinstance(_decide(1, AttemptOutcome(500, "http"), schedule=()), GiveUp)


@given(
    schedule=st.lists(
        st.floats(min_value=0.001, max_value=1e6, allow_nan=False), min_size=1, max_size=10
    ),
    data=st.data(),
    seed=st.integers(),
    jitter=st.floats(min_value=0.0, max_value=0.99),
)
def test_jitter_stays_within_bounds(
    schedule: list[float], data: st.DataObject, seed: int, jitter: float
) -> None:
    attempt = data.draw(st.integers(min_value=1, max_value=len(schedule)))
    step = decide_next(
        attempt, AttemptOutcome(None, "connect"), schedule, NOW, random.Random(seed), jitter
    )
    assert isinstance(step, RetryAt)
    wait = schedule[attempt - 1]
    delay = step.at - NOW
    assert wait * (1 - jitter) - 1e-6 <= delay <= wait * (1 + jitter) + 1e-6


def test_jitter_spreads_retries() -> None:
    rng = random.Random(1)
    delays = {
        _delay(decide_next(2, AttemptOutcome(503), DEFAULT_SCHEDULE, NOW, rng)) for _ in range(20)
    }
    assert len(delays) > 1


def test_same_rng_seed_same_decision() -> None:
    a = decide_next(3, AttemptOutcome(500), DEFAULT_SCHEDULE, NOW, random.Random(42))
    b = decide_next(3, AttemptOutcome(500), DEFAULT_SCHEDULE, NOW, random.Random(42))
    assert a == b


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_longer_than_schedule_is_honoured(status: int) -> None:
    assert _delay(_decide(1, AttemptOutcome(status, "http", retry_after=120))) == 120
    # Shorter than the schedule: the schedule wins.
    assert _delay(_decide(3, AttemptOutcome(status, "http", retry_after=10))) == 1800


def test_retry_after_is_capped_at_a_day() -> None:
    step = _decide(1, AttemptOutcome(429, "http", retry_after=10 * 86400))
    assert _delay(step) == MAX_RETRY_AFTER == 86400


def test_retry_after_cap_does_not_shorten_a_long_schedule() -> None:
    step = _decide(1, AttemptOutcome(429, retry_after=5), schedule=(2 * 86400.0,))
    assert _delay(step) == 2 * 86400


def test_retry_after_ignored_for_other_statuses() -> None:
    assert _delay(_decide(1, AttemptOutcome(500, "http", retry_after=600))) == 5


def test_retry_after_does_not_extend_the_schedule() -> None:
    step = _decide(len(DEFAULT_SCHEDULE) + 1, AttemptOutcome(429, retry_after=1))
    assert isinstance(step, GiveUp)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="1-based"):
        _decide(0, AttemptOutcome(500))
    with pytest.raises(ValueError, match="jitter"):
        _decide(1, AttemptOutcome(500), jitter=1.5)


# parse_retry_after


def test_retry_after_delta_seconds() -> None:
    assert parse_retry_after("120", NOW) == 120
    assert parse_retry_after(" 0 ", NOW) == 0


def test_retry_after_http_date() -> None:
    when = datetime.fromtimestamp(NOW + 90, tz=UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW) == pytest.approx(90)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0  # in the past


def test_retry_after_http_date_without_zone_is_gmt() -> None:
    when = datetime.fromtimestamp(NOW + 60, tz=UTC)
    value = format_datetime(when, usegmt=True).replace("GMT", "-0000")
    assert parse_retry_after(value, NOW) == pytest.approx(60)


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "inf", "Mon, 99 Foo 2020"])
def test_retry_after_unreadable_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_retry_after_negative_is_now() -> None:
    assert parse_retry_after("-5", NOW) == 0


def test_parsed_retry_after_feeds_the_policy() -> None:
    outcome = AttemptOutcome(429, "http", retry_after=parse_retry_after("3600", NOW))
    assert _delay(_decide(1, outcome)) == 3600


# parse_schedule


def test_parse_schedule() -> None:
    assert parse_schedule("5,300,1800") == (5.0, 300.0, 1800.0)
    assert parse_schedule(" 0.5 , 2 ") == (0.5, 2.0)
    assert parse_schedule("60") == (60.0,)


@pytest.mark.parametrize("text", ["x", "", "5,,10", "5,-1", "0", "5s,10", "nan", "inf", "5;10"])
def test_parse_schedule_errors_name_the_setting(text: str) -> None:
    with pytest.raises(ValueError, match="CONVOHOOK_RETRY_SCHEDULE must be comma-separated") as exc:
        parse_schedule(text)
    assert repr(text) in str(exc.value)
