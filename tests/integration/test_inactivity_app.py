"""Inactivity through the running app: PATCH /api/v1/channels/{id}, and the closer's
conversation.closed as a subscriber receives it, verified with the public `standardwebhooks`
library: the reason in the standard format, DoubleTick's body unchanged in the default one."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from standardwebhooks import Webhook as StandardWebhook

from convohook.domain.payload import CustomerProfile, conversation_closed_body
from convohook.meta import notifications as n
from convohook.runtime.services import Services
from convohook.runtime.workers import Closer
from convohook.usecases.orgs import create_org

from harness import Api, Meta, Receiver, eventually, running_convohook

ACCOUNT = "17841400000000099"
SECRET = "inactivity-app-secret"
HOUR_MS = 3_600_000


class Clock:
    """convohook's time, moved by the test (no sleeping an hour). It starts an hour and a bit
    in the past, so that once the test moves it past the deadline it is about now again: what
    `standardwebhooks` accepts in `webhook-timestamp` (read when the test starts, not when the
    module is imported, which in a whole run may be many minutes earlier)."""

    def __init__(self) -> None:
        self.start = int(time.time() * 1000) - HOUR_MS - 60_000
        self.now = self.start

    def __call__(self) -> int:
        return self.now


@dataclass
class Shop:
    api: Api
    other: Api
    meta: Meta
    receiver: Receiver
    services: Services
    channel: dict[str, Any]
    clock: Clock


@pytest.fixture
async def shop(database_url_for: str) -> AsyncIterator[Shop]:
    clock = Clock()
    async with running_convohook(
        database_url_for, SECRET, clock=clock, retry_schedule=(0.2,)
    ) as run:
        mine = await run.services.db.run(create_org, "Acme", clock())
        theirs = await run.services.db.run(create_org, "Other", clock())
        api = Api(run.base, mine.api_key)
        channel = await api.ok(
            "POST",
            "/api/v1/channels",
            {"handle": "acme", "account_id": ACCOUNT, "access_token": "tok"},
        )
        run.graph.put("555", "jane.doe", "Jane Doe")
        yield Shop(
            api,
            Api(run.base, theirs.api_key),
            Meta(run.base, SECRET),
            run.receiver,
            run.services,
            channel,
            clock,
        )


async def test_patch_channel_validates_names_the_field_and_hides_the_token(shop: Shop) -> None:
    path = f"/api/v1/channels/{shop.channel['id']}"
    assert shop.channel["auto_done_after"] is None  # off by default
    for bad in (0, 59, 90 * 86_400 + 1, 1.5, "3600", True):
        status, answer = await shop.api.call("PATCH", path, {"auto_done_after": bad})
        assert status == 422, (bad, answer)
        assert "auto_done_after" in orjson.dumps(answer).decode(), answer
    status, answer = await shop.api.call("PATCH", path, {"handle": ""})
    assert status == 422
    assert "handle" in orjson.dumps(answer).decode()
    status, _ = await shop.api.call("PATCH", path, {"colour": "red"})
    assert status == 422
    status, _ = await shop.other.call("PATCH", path, {"auto_done_after": 3600})
    assert status == 404  # another org's channel is not found
    status, _ = await shop.api.call("PATCH", "/api/v1/channels/ch_nope", {"handle": "x"})
    assert status == 404

    changed = await shop.api.ok(
        "PATCH", path, {"auto_done_after": 3600, "access_token": "new-secret-token"}
    )
    assert changed["auto_done_after"] == 3600
    assert changed["handle"] == "acme"
    assert "access_token" not in changed
    assert "new-secret-token" not in orjson.dumps(changed).decode()
    renamed = await shop.api.ok("PATCH", path, {"handle": "@acme_store"})
    assert (renamed["handle"], renamed["auto_done_after"]) == ("acme_store", 3600)  # kept
    listed = await shop.api.ok("GET", "/api/v1/channels")
    assert listed["items"] == [renamed]
    off = await shop.api.ok("PATCH", path, {"auto_done_after": None})
    assert off["auto_done_after"] is None


async def test_an_idle_conversation_is_closed_with_its_reason(shop: Shop) -> None:
    webhooks = {}
    for fmt in ("standard", "doubletick"):
        webhooks[fmt] = await shop.api.ok(
            "POST",
            "/api/v1/webhooks",
            {
                "name": fmt,
                "url": f"{shop.receiver.url}?format={fmt}",
                "channel_ids": [shop.channel["id"]],
                "events": ["conversation.closed"],
                "format": fmt,
            },
        )
    await shop.api.ok("PATCH", f"/api/v1/channels/{shop.channel['id']}", {"auto_done_after": 3600})
    t0 = shop.clock.start
    dm = n.notification([n.entry(ACCOUNT, [n.text_message("555", ACCOUNT, "m1", t0, "hi")])])
    assert await shop.meta.post(dm) == 200

    async def opened() -> dict[str, Any] | None:
        items = (await shop.api.ok("GET", "/api/v1/conversations?status=open"))["items"]
        return items[0] if items else None

    conversation = await eventually(opened)
    closer = Closer(shop.services)
    shop.clock.now = t0 + HOUR_MS - 1
    assert await closer.run_once() == 0
    shop.clock.now = t0 + HOUR_MS + 4_000
    # The app's own closer comes round every few seconds with the same clock and may be first:
    # either way the conversation is closed once (one delivery per webhook, below).
    assert await closer.run_once() in (0, 1)
    received = await shop.receiver.wait_for(2)
    for webhook in webhooks.values():
        path = f"/api/v1/webhooks/{webhook['id']}/deliveries"
        assert len((await shop.api.ok("GET", path))["items"]) == 1

    done = await shop.api.ok("GET", f"/api/v1/conversations/{conversation['id']}")
    assert (done["status"], done["closed_reason"]) == ("done", "inactivity")
    by_format = {}
    for r in received:
        fmt = "standard" if r.body.startswith(b'{"type"') else "doubletick"
        by_format[fmt] = r
        StandardWebhook(webhooks[fmt]["secret"]).verify(r.body, r.headers)
    standard = orjson.loads(by_format["standard"].body)
    assert standard["type"] == "conversation.closed"
    assert standard["data"]["reason"] == "inactivity"
    assert standard["data"]["conversationId"] == conversation["id"]
    assert standard["data"]["conversationClosed"] is True
    assert by_format["doubletick"].body == conversation_closed_body(
        business_handle="acme",
        profile=CustomerProfile(username="jane.doe", name="Jane Doe"),
        customer_id=conversation["contact"]["customer_id"],
    )
