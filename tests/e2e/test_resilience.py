"""What survives trouble: several server processes on one database, a server killed right after
acknowledging Meta, and a Graph API that fails for a while (DESIGN sections 2 and 3)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from e2e_support import (
    APP_SECRET,
    CUSTOMER_ID,
    RETRY_SCHEDULE,
    Service,
    Stack,
    deploy,
    doubletick_body,
    free_port,
    open_stack,
)
from harness import Meta

pytestmark = pytest.mark.e2e


@pytest.mark.slow
async def test_an_acknowledged_message_is_delivered_after_a_crash(tmp_path: Path) -> None:
    # `serve --no-worker` only stores: the notification is acknowledged and still unprocessed
    # when the server is killed. A `convohook worker` started afterwards must deliver it.
    with deploy(tmp_path / "http-only", workers=False) as crashing:
        async with open_stack(crashing) as stack:
            customer = await stack.new_customer()
            await stack.dm(customer)  # 200: Meta considers it delivered
            crashing.server.process.kill()
            crashing.server.process.wait(timeout=10)

            worker = crashing.start_worker()
            try:
                (delivery,) = await stack.wait_for_deliveries_of(customer)
            finally:
                worker.stop()

    customer_id = delivery.json()["dtCustomerId"]
    assert CUSTOMER_ID.fullmatch(customer_id)
    assert delivery.body == doubletick_body(
        handle=stack.handle,
        username=customer.username,
        name=customer.display_name,
        customer_id=customer_id,
    )
    assert len(stack.receiver.verified()) == 1


@pytest.mark.slow
async def test_a_failing_graph_api_delays_the_opening_but_sends_the_real_profile(
    stack: Stack,
) -> None:
    customer = await stack.new_customer()
    # The next two profile lookups answer 503 (retryable); the third succeeds.
    await stack.standin("POST", "faults", {"mode": "down", "count": 2})
    try:
        await stack.dm(customer)
        await stack.assert_opened_once(customer)
    finally:
        await stack.standin("POST", "faults", {"mode": "ok"})

    assert await stack.profile_lookups(customer) == 3
    await stack.assert_nothing_else_delivered(1)


async def test_two_server_processes_on_one_database_open_one_conversation(stack: Stack) -> None:
    second, second_url = stack.deployment.start_server("serve-2")
    try:
        customer = await stack.new_customer()
        metas = (stack.meta, Meta(second_url, APP_SECRET))
        posts = [
            metas[i % 2].post(stack.text_notification(customer, text=f"message {i}"))
            for i in range(40)
        ]

        assert await asyncio.gather(*posts) == [200] * 40

        await stack.assert_opened_once(customer)
        await stack.assert_nothing_else_delivered(1)
    finally:
        second.stop()


@pytest.mark.slow
async def test_a_separate_worker_on_sqlite_is_woken_by_the_servers_commit(tmp_path: Path) -> None:
    # `serve --no-worker` and `convohook worker` share only the SQLite file, and the worker's
    # idle poll is an hour: only a wake-up on the server's commit gets the opening out.
    metrics_port = free_port()
    with deploy(tmp_path / "split", workers=False) as split:
        worker = Service(
            "worker",
            ["worker", "--retry-schedule", RETRY_SCHEDULE, "--metrics-port", str(metrics_port)],
            split.env | {"CONVOHOOK_IDLE_POLL_SECONDS": "3600"},
            split.workdir / "worker.log",
        )
        try:
            async with open_stack(split) as stack:
                await asyncio.sleep(1.5)  # the worker is up, has looked once, and waits
                customer = await stack.new_customer()
                await stack.dm(customer)
                (delivery,) = await stack.wait_for_deliveries_of(customer)
                # The worker, which serves no API, reports what it did on its own port.
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://127.0.0.1:{metrics_port}/metrics") as answer,
                ):
                    assert answer.status == 200
                    metrics = await answer.text()
        finally:
            worker.stop()
    assert delivery.json()["from"] == customer.username
    for line in (
        'convohook_conversations_opened_total{reason="first_message"} 1.0',
        "convohook_opened_to_delivered_seconds_count 1.0",
        'convohook_backlog{queue="notifications"} 0.0',
        'convohook_delivery_attempts_total{outcome="success",status_class="2xx"} 1.0',
    ):
        assert line in metrics, metrics
    assert 'convohook_worker_seconds_since_beat{loop="dispatcher"}' in metrics
