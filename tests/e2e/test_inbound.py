"""Meta's side of the server (`/webhooks/instagram`): the handshake, the signature check on the
raw body, and what is refused or acknowledged without effect."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from convohook.meta.notifications import encode
from convohook.meta.signature import sign_body

from e2e_support import APP_SECRET, VERIFY_TOKEN, Stack, new_account_id

pytestmark = pytest.mark.e2e

MAX_INBOUND_BYTES = 1_048_576  # 1 MiB


async def handshake(stack: Stack, **params: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(f"{stack.deployment.base_url}/webhooks/instagram", params=params) as response,
    ):
        return response.status, await response.text()


async def test_verification_handshake_echoes_the_challenge_only_for_the_right_token(
    stack: Stack,
) -> None:
    good = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    assert await handshake(stack, **good) == (200, "1158201444")

    status, _ = await handshake(stack, **(good | {"hub.verify_token": "not-the-token"}))
    assert status == 403
    status, _ = await handshake(stack, **(good | {"hub.mode": "unsubscribe"}))
    assert status == 403


async def test_a_bad_signature_is_refused_and_nothing_is_stored(stack: Stack) -> None:
    customer = await stack.new_customer()
    raw = encode(stack.text_notification(customer))

    assert await stack.post(raw, signature=sign_body("not-the-app-secret", raw)) == 401
    assert await stack.post(raw, signature="") == 401
    assert await stack.post(raw, signature="sha256=" + "0" * 64) == 401

    await stack.assert_nothing_else_delivered(0)
    assert await stack.contacts(customer.username) == []
    assert all(c["contact"]["igsid"] != customer.igsid for c in await stack.conversations())
    # Not even the mid was kept: the same bytes, correctly signed, open the conversation.
    assert await stack.post(raw) == 200
    await stack.assert_opened_once(customer)


async def test_malformed_json_with_a_valid_signature_is_a_bad_request(stack: Stack) -> None:
    for raw in (b'{"object": "instagram", "entry": [', b"[]", b"\xff\xfe"):
        assert await stack.post(raw) == 400, raw


def padded_notification(size: int) -> bytes:
    """A valid (empty) notification of exactly `size` bytes."""
    head, tail = b'{"object":"instagram","entry":[],"padding":"', b'"}'
    raw = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(raw) == size
    return raw


async def post_chunked(stack: Stack, raw: bytes) -> int:
    """POST without a Content-Length, as a stream of chunks."""

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign_body(APP_SECRET, raw),
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.post(
            f"{stack.deployment.base_url}/webhooks/instagram", data=chunks(), headers=headers
        ) as response,
    ):
        return response.status


async def test_a_body_over_one_mebibyte_is_refused(stack: Stack) -> None:
    too_big = padded_notification(MAX_INBOUND_BYTES + 1)

    assert await stack.post(too_big) == 413
    assert await post_chunked(stack, too_big) == 413


async def test_a_body_of_exactly_one_mebibyte_is_accepted(stack: Stack) -> None:
    largest = padded_notification(MAX_INBOUND_BYTES)

    assert await stack.post(largest) == 200
    assert await post_chunked(stack, largest) == 200


async def test_a_notification_for_an_unknown_account_is_acknowledged_and_ignored(
    stack: Stack,
) -> None:
    customer = await stack.new_customer()
    body = stack.text_notification(customer)
    unknown = new_account_id()
    body["entry"][0]["id"] = unknown
    body["entry"][0]["messaging"][0]["recipient"]["id"] = unknown

    assert await stack.post(body) == 200

    await stack.assert_nothing_else_delivered(0)
    assert await stack.contacts(customer.username) == []
