"""`GET /metrics` on `serve`: backlog gauges read at scrape time, the opening-to-delivery
histogram, the worker loops' liveness."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from test_faults import ManualClock, _dm, connect

from harness import TIMEOUT, Api, Receiver, Running, eventually, run_receiver, running_convohook

pytestmark = pytest.mark.slow

SECRET = "faults-app-secret"


async def _metrics(run: Running) -> str:
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
        http.get(run.base + "/metrics") as answer,
    ):
        assert answer.status == 200
        return await answer.text()


def _value(metrics: str, name: str) -> float:
    [line] = [line for line in metrics.splitlines() if line.startswith(name + " ")]
    return float(line.rsplit(" ", 1)[1])


SUCCEEDED = 'convohook_deliveries_finished_total{outcome="succeeded"}'


async def _metrics_once(run: Running, name: str, value: float) -> str | None:
    """The metrics, once `name` has reached `value`; None before."""
    metrics = await _metrics(run)
    return metrics if _value(metrics, name) >= value else None


async def _retry_scheduled(api: Api, webhook_id: str) -> bool:
    """The webhook's one delivery has its failed attempt recorded and waits for its retry."""
    deliveries = await api.ok("GET", f"/api/v1/webhooks/{webhook_id}/deliveries")
    [delivery] = deliveries["items"]
    return delivery["status"] == "pending" and len(delivery["attempts"]) == 1


async def test_backlog_and_the_age_of_the_oldest_due_delivery(tmp_path: Path) -> None:
    clock = ManualClock(int(time.time() * 1000))
    receiver = Receiver(statuses=[503])  # the first attempt fails; the retry is an hour later
    async with (
        run_receiver(receiver),
        running_convohook(
            f"sqlite:///{tmp_path / 'metrics.db'}", SECRET, clock=clock, retry_schedule=(3600.0,)
        ) as run,
    ):
        api, webhook, _ = await connect(run, receiver.url, "1", "unused")
        await _dm(run, "2020", "late.customer")
        await receiver.wait_for(1, timeout=10)
        # The failed attempt recorded (the delivery back to pending, due in an hour) before the
        # clock moves: recorded later, it would be due an hour after the moved clock.
        await eventually(lambda: _retry_scheduled(api, webhook["id"]))
        before = await _metrics(run)
        assert _value(before, 'convohook_backlog{queue="due_deliveries"}') == 0
        assert _value(before, "convohook_oldest_due_delivery_seconds") == 0

        clock.advance_to(clock.now_ms + 3 * 3_600_000)  # due for about two hours now
        after = await _metrics(run)
        assert _value(after, 'convohook_backlog{queue="due_deliveries"}') == 1
        assert 1.7 * 3600 < _value(after, "convohook_oldest_due_delivery_seconds") < 2.3 * 3600
        assert _value(after, 'convohook_backlog{queue="notifications"}') == 0

        receiver.statuses.clear()
        run.services.signals.deliveries.notify()
        await receiver.wait_for(2, timeout=10)
        # Counted once the success is recorded, a moment after the subscriber has it.
        done = await eventually(lambda: _metrics_once(run, SUCCEEDED, 1))
        assert _value(done, SUCCEEDED) == 1
        assert _value(done, 'convohook_backlog{queue="due_deliveries"}') == 0
        # From the opening to its delivery: the three hours the test moved the clock.
        assert _value(done, "convohook_opened_to_delivered_seconds_count") == 1
        assert _value(done, 'convohook_deliveries_finished_total{outcome="failed"}') == 0
        assert _value(done, "convohook_opened_to_delivered_seconds_sum") > 3 * 3600 - 60
        for loop in ("processor", "profiles", "dispatcher"):
            assert _value(done, f'convohook_worker_seconds_since_beat{{loop="{loop}"}}') < 60
