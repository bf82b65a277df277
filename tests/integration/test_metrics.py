"""`GET /metrics` on `serve`: backlog gauges read at scrape time, the opening-to-delivery
histogram, the worker loops' liveness."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from test_faults import ManualClock, _dm, connect

from harness import TIMEOUT, Receiver, Running, run_receiver, running_convohook

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


async def test_backlog_and_the_age_of_the_oldest_due_delivery(tmp_path: Path) -> None:
    clock = ManualClock(int(time.time() * 1000))
    receiver = Receiver(statuses=[503])  # the first attempt fails; the retry is an hour later
    async with (
        run_receiver(receiver),
        running_convohook(
            f"sqlite:///{tmp_path / 'metrics.db'}", SECRET, clock=clock, retry_schedule=(3600.0,)
        ) as run,
    ):
        await connect(run, receiver.url, "1", "unused")
        await _dm(run, "2020", "late.customer")
        await receiver.wait_for(1, timeout=10)
        await asyncio.sleep(0.3)  # the failed attempt is recorded
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
        await asyncio.sleep(0.3)
        done = await _metrics(run)
        assert _value(done, 'convohook_backlog{queue="due_deliveries"}') == 0
        # From the opening to its delivery: the three hours the test moved the clock.
        assert _value(done, "convohook_opened_to_delivered_seconds_count") == 1
        assert _value(done, 'convohook_deliveries_finished_total{outcome="succeeded"}') == 1
        assert _value(done, 'convohook_deliveries_finished_total{outcome="failed"}') == 0
        assert _value(done, "convohook_opened_to_delivered_seconds_sum") > 3 * 3600 - 60
        for loop in ("processor", "profiles", "dispatcher"):
            assert _value(done, f'convohook_worker_seconds_since_beat{{loop="{loop}"}}') < 60
