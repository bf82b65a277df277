"""Delivery semantics (DESIGN section 4): Standard Webhooks signatures, retries on the configured
schedule, 410 disabling the webhook, the delivery log, manual retry, and the SSRF guard."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from e2e_support import Deployment, Stack, eventually, header

pytestmark = pytest.mark.e2e


async def delivery_in_state(stack: Stack, status: str, attempts: int) -> dict[str, Any]:
    """Wait until the webhook's single delivery has `status` after `attempts` attempts."""

    async def check() -> dict[str, Any] | None:
        logged = await stack.delivery_log()
        assert len(logged) <= 1, logged
        for delivery in logged:  # none yet while the notification is being processed
            if delivery["status"] == status and len(delivery["attempts"]) == attempts:
                return delivery
        return None

    return await eventually(check, f"the delivery to be {status} after {attempts} attempts")


def status_codes(delivery: dict[str, Any]) -> list[int | None]:
    return [attempt["status_code"] for attempt in delivery["attempts"]]


async def test_failed_attempts_are_retried_with_the_same_webhook_id(stack: Stack) -> None:
    stack.receiver.statuses = [500, 500]
    customer = await stack.new_customer()

    await stack.dm(customer)

    requests = await stack.wait_for_deliveries(3)  # each one verified with standardwebhooks
    assert len({header(r, "webhook-id") for r in requests}) == 1
    expected = await stack.expected_opening(customer)
    assert [r.body for r in requests] == [expected] * 3
    delivery = await delivery_in_state(stack, "succeeded", 3)
    assert status_codes(delivery) == [500, 500, 200]
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3]
    assert all(a["url"] == stack.receiver.url for a in delivery["attempts"])
    assert delivery["id"] == header(requests[0], "webhook-id")
    assert delivery["attempt_count"] == 3
    assert delivery["payload"] == requests[0].json()


async def test_410_gone_disables_the_webhook(stack: Stack) -> None:
    stack.receiver.statuses = [410]
    customer = await stack.new_customer()

    await stack.dm(customer)

    await stack.wait_for_deliveries(1)
    delivery = await delivery_in_state(stack, "failed", 1)
    assert status_codes(delivery) == [410]
    webhook = await stack.api.ok("GET", f"/api/v1/webhooks/{stack.webhook['id']}")
    assert webhook["enabled"] is False
    assert "410" in webhook["disabled_reason"]
    assert "secret" not in webhook  # returned once, at creation
    listed = (await stack.api.ok("GET", "/api/v1/webhooks"))["items"]
    assert all("secret" not in w for w in listed)
    # Disabled: the next opening on the channel is not even queued for it (the conversation
    # and its deliveries are written in one transaction, so once it shows, the log is final).
    later = await stack.new_customer()
    await stack.dm(later)

    async def opened() -> bool:
        return any(c["contact"]["igsid"] == later.igsid for c in await stack.conversations())

    await eventually(opened, "the later customer's conversation")
    assert len(await stack.delivery_log()) == 1
    assert len(stack.receiver.verified()) == 1


async def test_a_failed_delivery_can_be_retried_by_hand(stack: Stack) -> None:
    stack.receiver.statuses = [500, 500, 500]
    customer = await stack.new_customer()
    await stack.dm(customer)

    # One attempt and the two retries of CONVOHOOK_RETRY_SCHEDULE, then it gives up.
    failed = await delivery_in_state(stack, "failed", 3)
    assert status_codes(failed) == [500, 500, 500]
    assert failed["last_status_code"] == 500
    assert len(stack.receiver.verified()) == 3

    retried = await stack.api.ok("POST", f"/api/v1/deliveries/{failed['id']}/retry")
    assert retried["id"] == failed["id"]

    succeeded = await delivery_in_state(stack, "succeeded", 4)
    assert status_codes(succeeded) == [500, 500, 500, 200]
    requests = stack.receiver.verified()
    assert len(requests) == 4
    assert {header(r, "webhook-id") for r in requests} == {failed["id"]}
    assert requests[-1].body == await stack.expected_opening(customer)


async def test_private_targets_are_refused_unless_allowed(
    guarded_deployment: Deployment,
) -> None:
    api = guarded_deployment.api()
    channel = await api.ok(
        "POST",
        "/api/v1/channels",
        {
            "type": "INSTAGRAM",
            "handle": "guarded_shop",
            "account_id": "17841400000000001",
            "access_token": "IGAA-e2e",
        },
    )

    async def create_webhook(url: str) -> tuple[int, Any]:
        body = {
            "name": "CRM",
            "url": url,
            "channel_type": "INSTAGRAM",
            "channel_ids": [channel["id"]],
            "events": ["conversation.opened"],
        }
        return await api.call("POST", "/api/v1/webhooks", body)

    # This machine's own name, resolved by the system's resolver (/etc/hosts here), to loopback
    # or a private address: a DNS name is judged by where it leads, not by how it looks.
    own_name = socket.gethostname()
    assert all(
        ipaddress.ip_address(info[4][0]).is_private
        for info in socket.getaddrinfo(own_name, 9, type=socket.SOCK_STREAM)
    ), f"{own_name} resolves to a public address here: the test needs a private one"
    for url in (
        "http://127.0.0.1:9/x",
        "http://localhost:9/x",
        "http://10.1.2.3/x",
        f"http://{own_name}:9/x",
    ):
        status, answer = await create_webhook(url)
        assert status == 422, (url, answer)
        assert "CONVOHOOK_ALLOW_PRIVATE_TARGETS" in answer["message"], answer
    assert (await api.ok("GET", "/api/v1/webhooks"))["items"] == []

    # The service's own capture bots live on its public URL, loopback here, and stay allowed.
    bot = await api.ok("POST", "/api/v1/bots", {"name": "capture", "trigger": "webhook"})
    status, answer = await create_webhook(bot["webhook_url"])
    assert status == 201, answer
