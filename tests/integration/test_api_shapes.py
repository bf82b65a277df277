"""The JSON of every /api/v1 success answer, key by key and in order: what clients parse.

Written against the API as it was before its answers got typed response models, so that the
models change the OpenAPI document and nothing on the wire: the same keys in the same cases (a
webhook's `secret` only when created or rotated and only for HMAC, `public_key` always for
ed25519), the same order, the same JSON types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from convohook.devtools.graph_standin import ProfileRegistry
from convohook.domain.payload import iso_ms
from convohook.meta import notifications as n
from convohook.usecases.orgs import create_org

from harness import Api, Meta, Receiver, eventually, running_convohook

ACCOUNT = "17841400000000077"
SECRET = "shapes-app-secret"

# DESIGN §7: a channel gains auto_done_after (PATCH /api/v1/channels/{id}).
CHANNEL = ["id", "type", "handle", "account_id", "created_at", "auto_done_after"]
WEBHOOK = [
    "id",
    "name",
    "url",
    "channel_type",
    "channel_ids",
    "events",
    "enabled",
    "disabled_reason",
    "failing_since",
    "queue_while_disabled",
    "format",
    "headers",
    "auth",
    "timeout_seconds",
    "rate_limit_per_second",
    "max_concurrency",
    "ordering",
    "signature_scheme",
    "created_at",
    "updated_at",
]
DELIVERY = [
    "id",
    "event_id",
    "event_type",
    "webhook_id",
    "status",
    "attempt_count",
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "payload",
    "created_at",
    "updated_at",
    "attempts",
]
ATTEMPT = [
    "attempt",
    "attempted_at",
    "url",
    "status_code",
    "response_body",
    "duration_ms",
    "error",
    "error_class",
    "request_headers",
    "request_body",
]
CONTACT = [
    "id",
    "customer_id",
    "handle",
    "name",
    "igsid",
    "channel_id",
    "profile_status",
    "created_at",
    # DESIGN §7: the User Profile API's fields, null when Instagram does not share them.
    "follower_count",
    "is_user_follow_business",
    "is_verified_user",
]
AGENT = ["id", "name", "email", "available"]
# DESIGN §7: items gain assignee_id, tags, closed_reason, last_message_at.
CONVERSATION = [
    "id",
    "status",
    "reason",
    "channel_id",
    "contact",
    "opened_at",
    "done_at",
    "assignee_id",
    "tags",
    "closed_reason",
    "last_message_at",
]
MESSAGE = [
    "id",
    "direction",
    "mid",
    "kind",
    "text",
    "timestamp",
    "received_at",
    "status",
    "error",
    "human_agent",
    "sent_by",
    "sent_at",
]
BOT = [
    "id",
    "name",
    "trigger",
    "webhook_url",
    "enabled",
    "conditions",
    "actions",
    "created_at",
    "updated_at",
]
CAPTURE = ["id", "received_at", "method", "headers", "body", "raw_body"]
LIST = ["items", "next"]


@dataclass
class Shop:
    api: Api
    meta: Meta
    graph: ProfileRegistry
    receiver: Receiver
    channel: dict[str, Any]


@pytest.fixture
async def shop(database_url_for: str) -> AsyncIterator[Shop]:
    async with running_convohook(database_url_for, SECRET, retry_schedule=(0.2,)) as run:
        org = await run.services.db.run(create_org, "Acme", run.services.clock())
        api = Api(run.base, org.api_key)
        channel = await api.ok(
            "POST",
            "/api/v1/channels",
            {"handle": "acme", "account_id": ACCOUNT, "access_token": "tok"},
        )
        yield Shop(api, Meta(run.base, SECRET), run.graph, run.receiver, channel)


async def call(api: Api, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    status, answer = await api.call(method, path, body)
    assert status < 300, (method, path, status, answer)
    return status, answer


def keys(value: dict[str, Any]) -> list[str]:
    return list(value)


async def test_channel_answers(shop: Shop) -> None:
    assert keys(shop.channel) == CHANNEL
    status, listed = await call(shop.api, "GET", "/api/v1/channels")
    assert status == 200
    assert keys(listed) == LIST
    assert listed["next"] is None
    assert [keys(c) for c in listed["items"]] == [CHANNEL]
    assert listed["items"] == [shop.channel]


async def test_webhook_answers_show_the_secret_only_when_made_or_rotated(shop: Shop) -> None:
    body = {"name": "crm", "url": shop.receiver.url, "channel_ids": [shop.channel["id"]]}
    status, hmac = await call(shop.api, "POST", "/api/v1/webhooks", body)
    assert status == 201
    assert keys(hmac) == [*WEBHOOK, "secret"]
    assert hmac["secret"].startswith("whsec_")
    assert hmac["auth"] is None
    assert hmac["headers"] == {}
    status, ed = await call(
        shop.api, "POST", "/api/v1/webhooks", {**body, "signature_scheme": "ed25519"}
    )
    assert status == 201
    assert keys(ed) == [*WEBHOOK, "public_key"]
    for made, extra in ((hmac, []), (ed, ["public_key"])):
        status, got = await call(shop.api, "GET", f"/api/v1/webhooks/{made['id']}")
        assert keys(got) == [*WEBHOOK, *extra]
        status, patched = await call(
            shop.api,
            "PATCH",
            f"/api/v1/webhooks/{made['id']}",
            {"auth": {"type": "bearer", "token": "t"}, "timeout_seconds": 5},
        )
        assert status == 200
        assert keys(patched) == [*WEBHOOK, *extra]
        assert patched["auth"] == {"type": "bearer"}
        assert patched["timeout_seconds"] == 5
    status, listed = await call(shop.api, "GET", "/api/v1/webhooks")
    assert keys(listed) == LIST
    assert [keys(w) for w in listed["items"]] == [[*WEBHOOK, "public_key"], WEBHOOK]
    status, rotated = await call(
        shop.api, "POST", f"/api/v1/webhooks/{hmac['id']}/rotate-secret", {"grace_seconds": 60}
    )
    assert status == 200
    assert keys(rotated) == [*WEBHOOK, "secret", "previous_valid_until"]
    status, switched = await call(
        shop.api,
        "POST",
        f"/api/v1/webhooks/{hmac['id']}/rotate-secret",
        {"signature_scheme": "ed25519"},
    )
    assert keys(switched) == [*WEBHOOK, "public_key", "previous_valid_until"]
    assert switched["signature_scheme"] == "ed25519"
    status, recovered = await call(
        shop.api,
        "POST",
        f"/api/v1/webhooks/{hmac['id']}/recover",
        {"since": "2020-01-01T00:00:00Z"},
    )
    assert status == 202
    assert recovered == {"recovered": 0, "since": "2020-01-01T00:00:00.000Z"}


async def test_delivery_conversation_contact_and_message_answers(shop: Shop) -> None:
    _, webhook = await call(
        shop.api,
        "POST",
        "/api/v1/webhooks",
        {"name": "crm", "url": shop.receiver.url, "channel_ids": [shop.channel["id"]]},
    )
    shop.graph.put("321", "jane", "Jane")
    body = n.notification([n.entry(ACCOUNT, [n.text_message("321", ACCOUNT, "m-1", 1_000, "hi")])])
    assert await shop.meta.post(body) == 200
    await shop.receiver.wait_for(1)
    path = f"/api/v1/webhooks/{webhook['id']}/deliveries"

    async def attempted() -> Any:
        page = (await call(shop.api, "GET", path))[1]
        return page if page["items"] and page["items"][0]["status"] == "succeeded" else None

    page = await eventually(attempted)
    assert keys(page) == LIST
    [delivery] = page["items"]
    assert keys(delivery) == DELIVERY
    assert isinstance(delivery["payload"], dict)
    [attempt] = delivery["attempts"]
    assert keys(attempt) == ATTEMPT
    assert isinstance(attempt["duration_ms"], float)
    assert isinstance(attempt["request_headers"], dict)
    status, retried = await call(shop.api, "POST", f"/api/v1/deliveries/{delivery['id']}/retry")
    assert status == 202
    assert keys(retried) == DELIVERY

    status, conversations = await call(shop.api, "GET", "/api/v1/conversations")
    assert keys(conversations) == LIST
    [conversation] = conversations["items"]
    assert keys(conversation) == CONVERSATION
    assert keys(conversation["contact"]) == CONTACT
    assert (conversation["assignee_id"], conversation["tags"]) == (None, [])
    assert conversation["closed_reason"] is None
    # Meta's time of the DM, not the time it was received
    assert conversation["last_message_at"] == iso_ms(1_000)
    status, one = await call(shop.api, "GET", f"/api/v1/conversations/{conversation['id']}")
    assert one == conversation
    status, messages = await call(
        shop.api, "GET", f"/api/v1/conversations/{conversation['id']}/messages"
    )
    assert keys(messages) == LIST
    assert [keys(m) for m in messages["items"]] == [MESSAGE]
    status, done = await call(shop.api, "POST", f"/api/v1/conversations/{conversation['id']}/done")
    assert status == 200
    assert keys(done) == CONVERSATION
    assert (done["status"], done["closed_reason"]) == ("done", "manual")
    status, contacts = await call(shop.api, "GET", "/api/v1/contacts")
    assert keys(contacts) == LIST
    assert [keys(c) for c in contacts["items"]] == [CONTACT]
    assert contacts["items"][0] == done["contact"]


async def test_bot_and_capture_answers(shop: Shop) -> None:
    status, bot = await call(shop.api, "POST", "/api/v1/bots", {"name": "Lead bot"})
    assert status == 201
    assert keys(bot) == BOT
    for path in ("/api/v1/bots", f"/api/v1/bots/{bot['id']}"):
        status, got = await call(shop.api, "GET", path)
        assert (keys(got["items"][0]) if "items" in got else keys(got)) == BOT
    async with (
        aiohttp.ClientSession() as http,
        http.post(bot["webhook_url"], json={"hello": "bot"}) as sent,
    ):
        assert sent.status == 200
    status, captures = await call(shop.api, "GET", f"/api/v1/bots/{bot['id']}/captures")
    assert keys(captures) == LIST
    [capture] = captures["items"]
    assert keys(capture) == CAPTURE
    assert capture["body"] == {"hello": "bot"}
    assert isinstance(capture["raw_body"], str)
    assert isinstance(capture["headers"], dict)


async def test_agent_answers(shop: Shop) -> None:
    body = {"name": "Ada", "email": "ada@acme.test"}
    status, agent = await call(shop.api, "POST", "/api/v1/agents", body)
    assert status == 201
    assert keys(agent) == AGENT
    status, agents = await call(shop.api, "GET", "/api/v1/agents")
    assert keys(agents) == LIST
    assert [keys(a) for a in agents["items"]] == [AGENT]
    status, changed = await call(
        shop.api, "PATCH", f"/api/v1/agents/{agent['id']}", {"available": False}
    )
    assert keys(changed) == AGENT
