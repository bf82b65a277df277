"""/api/v1/bots for journeys, on real sockets and both backends: the typed shape of a bot, a
definition that cannot work refused naming its field, changes, deletion, another org's bot,
and the runs a customer's DM gives (the app's own workers process it and carry them out)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from convohook.meta import notifications as n
from convohook.usecases.orgs import create_org

from harness import Api, Meta, Running, eventually, running_convohook

ACCOUNT = "17841400000000066"
SECRET = "bots-app-secret"
CUSTOMER = "6600000000000001"
CONDITION_KEYS = [
    "reason",
    "channel_ids",
    "text_contains",
    "min_followers",
    "follows_business",
    "verified",
    "referral",
    "business_hours",
]
ACTION_KEYS = ["type", "text", "strategy", "agent_id", "tags"]
TAG = {"type": "add_tags", "tags": ["lead"]}
HOURS = {"tz": "Europe/Berlin", "days": [1], "from": "09:00", "to": "17:00"}


def action_out(kind: str, **given: Any) -> dict[str, Any]:
    """An action as the API shows it: every key, null where this type has none."""
    return {**dict.fromkeys(ACTION_KEYS), "type": kind, **given}


def guarded(**conditions: Any) -> dict[str, Any]:
    """A journey with these conditions."""
    return {"name": "J", "trigger": "message.received", "actions": [TAG], "conditions": conditions}


@dataclass
class Shop:
    run: Running
    api: Api
    other: Api  # another org's key
    channel: dict[str, Any]
    agent: dict[str, Any]
    other_channel: dict[str, Any]
    other_agent: dict[str, Any]

    async def journey(self, **body: Any) -> dict[str, Any]:
        status, bot = await self.api.call(
            "POST", "/api/v1/bots", {"name": "Journey", "trigger": "message.received", **body}
        )
        assert status == 201, bot
        return dict(bot)


async def _channel_and_agent(api: Api, account: str) -> tuple[dict[str, Any], dict[str, Any]]:
    channel = await api.ok(
        "POST",
        "/api/v1/channels",
        {"handle": f"shop_{account[-2:]}", "account_id": account, "access_token": "tok"},
    )
    agent = await api.ok("POST", "/api/v1/agents", {"name": "Ada", "email": f"ada{account}@a.test"})
    return channel, agent


@pytest.fixture
async def shop(database_url_for: str) -> AsyncIterator[Shop]:
    async with running_convohook(database_url_for, SECRET) as run:
        svc = run.services
        org = await svc.db.run(create_org, "Acme", svc.clock())
        other = await svc.db.run(create_org, "Other", svc.clock())
        api, other_api = Api(run.base, org.api_key), Api(run.base, other.api_key)
        channel, agent = await _channel_and_agent(api, ACCOUNT)
        other_channel, other_agent = await _channel_and_agent(other_api, "17841400000000067")
        yield Shop(run, api, other_api, channel, agent, other_channel, other_agent)


async def test_a_journey_is_created_with_every_key_of_its_shape(shop: Shop) -> None:
    bot = await shop.journey(
        conditions={
            "text_contains": ["price"],
            "business_hours": {
                "tz": "Europe/Berlin",
                "days": [5, 1],
                "from": "09:00",
                "to": "17:00",
            },
        },
        actions=[
            {"type": "send_message", "text": "Hi {{name}}"},
            {"type": "assign", "strategy": "agent", "agent_id": shop.agent["id"]},
            TAG,
            {"type": "mark_done"},
        ],
    )
    assert list(bot) == [
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
    assert (bot["trigger"], bot["webhook_url"], bot["enabled"]) == ("message.received", None, True)
    assert bot["conditions"] == {
        **dict.fromkeys(CONDITION_KEYS),
        "text_contains": ["price"],
        "business_hours": {
            "tz": "Europe/Berlin",
            "days": [1, 5],
            "from": "09:00",
            "to": "17:00",
            "inside": True,
        },
    }
    assert list(bot["conditions"]) == CONDITION_KEYS
    assert [list(action) for action in bot["actions"]] == [ACTION_KEYS] * 4
    assert bot["actions"] == [
        {
            "type": "send_message",
            "text": "Hi {{name}}",
            "strategy": None,
            "agent_id": None,
            "tags": None,
        },
        {
            "type": "assign",
            "text": None,
            "strategy": "agent",
            "agent_id": shop.agent["id"],
            "tags": None,
        },
        {"type": "add_tags", "text": None, "strategy": None, "agent_id": None, "tags": ["lead"]},
        {"type": "mark_done", "text": None, "strategy": None, "agent_id": None, "tags": None},
    ]
    assert await shop.api.ok("GET", f"/api/v1/bots/{bot['id']}") == bot


async def test_a_definition_that_cannot_work_is_a_422_naming_the_field(shop: Shop) -> None:
    journey = {"name": "J", "trigger": "conversation.opened"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({**journey, "actions": [{"type": "wave"}]}, "actions.0"),
        # 600 characters, 1200 bytes of UTF-8.
        ({**journey, "actions": [{"type": "send_message", "text": "é" * 600}]}, "actions[0].text"),
        (
            {**journey, "actions": [TAG, {"type": "send_message", "text": "Hi {{first_name}}"}]},
            "actions[1].text",
        ),
        (
            {
                **journey,
                "actions": [
                    {"type": "assign", "strategy": "agent", "agent_id": shop.other_agent["id"]}
                ],
            },
            "actions[0].agent_id",
        ),
        (
            guarded(channel_ids=[shop.other_channel["id"]]),
            "conditions.channel_ids",
        ),
        (
            guarded(business_hours={**HOURS, "tz": "Mars/Olympus"}),
            "conditions.business_hours.tz",
        ),
        (
            guarded(business_hours={**HOURS, "from": "9:00"}),
            "conditions.business_hours.from",
        ),
        ({"name": "Capture", "trigger": "webhook", "actions": [TAG]}, "actions"),
        ({"name": "Capture", "trigger": "webhook", "conditions": {}}, "conditions"),
        (journey, "actions"),
        ({**journey, "actions": []}, "actions"),
    ]
    for body, field in cases:
        status, answer = await shop.api.call("POST", "/api/v1/bots", body)
        assert status == 422, (body, answer)
        assert answer["error"] == "validation_error", answer
        assert [d["field"] for d in answer["details"]] == [field], (body, answer)
    assert (await shop.api.ok("GET", "/api/v1/bots"))["items"] == []


async def test_a_bot_is_changed_by_patch(shop: Shop) -> None:
    bot = await shop.journey(actions=[TAG])
    path = f"/api/v1/bots/{bot['id']}"
    off = await shop.api.ok("PATCH", path, {"enabled": False})
    assert (off["enabled"], off["actions"], off["name"]) == (False, bot["actions"], "Journey")
    changed = await shop.api.ok(
        "PATCH",
        path,
        {"enabled": True, "name": "Closer", "actions": [{"type": "mark_done"}]},
    )
    assert (changed["enabled"], changed["name"], [a["type"] for a in changed["actions"]]) == (
        True,
        "Closer",
        ["mark_done"],
    )
    assert changed["created_at"] == bot["created_at"]
    assert await shop.api.ok("GET", path) == changed
    status, answer = await shop.api.call("PATCH", path, {"actions": [{"type": "wave"}]})
    assert status == 422, answer

    capture = await shop.api.ok("POST", "/api/v1/bots", {"name": "Capture"})
    capture_path = f"/api/v1/bots/{capture['id']}"
    for change in ({"actions": [TAG]}, {"conditions": {"verified": True}}):
        status, answer = await shop.api.call("PATCH", capture_path, change)
        assert status == 409, (change, answer)
    renamed = await shop.api.ok("PATCH", capture_path, {"name": "Leads", "enabled": False})
    assert (renamed["name"], renamed["enabled"], renamed["actions"]) == ("Leads", False, [])


async def test_a_deleted_bot_and_another_orgs_bot_are_not_found(shop: Shop) -> None:
    bot = await shop.journey(actions=[TAG])
    path = f"/api/v1/bots/{bot['id']}"
    calls: list[tuple[str, str, Any]] = [
        ("GET", path, None),
        ("PATCH", path, {"enabled": False}),
        ("GET", f"{path}/runs", None),
        ("GET", f"{path}/captures", None),
        ("DELETE", path, None),
    ]
    for method, url, body in calls:
        status, answer = await shop.other.call(method, url, body)
        assert status == 404, (method, url, answer)
    assert await shop.api.ok("GET", path) == bot  # untouched

    assert await shop.api.call("DELETE", path) == (204, None)
    for method, url, body in calls:
        status, answer = await shop.api.call(method, url, body)
        assert status == 404, (method, url, answer)


async def test_a_dms_runs_are_listed(shop: Shop) -> None:
    shop.run.graph.put(CUSTOMER, "jane.doe", "Jane Doe", follower_count=10)
    bot = await shop.journey(conditions={"referral": True}, actions=[TAG])
    quiet = await shop.journey(conditions={"min_followers": 11}, actions=[TAG])
    dm = n.ad_message(CUSTOMER, ACCOUNT, "mid-1", 1_000, "Saw your ad", "ad-1")
    assert await Meta(shop.run.base, SECRET).post(n.notification([n.entry(ACCOUNT, [dm])])) == 200

    async def finished(b: dict[str, Any]) -> Any:
        items = (await shop.api.ok("GET", f"/api/v1/bots/{b['id']}/runs"))["items"]
        return items if items and items[0]["status"] != "pending" else None

    [run] = await eventually(lambda: finished(bot))
    [conversation] = (await shop.api.ok("GET", "/api/v1/conversations"))["items"]
    assert list(run) == [
        "id",
        "bot_id",
        "trigger",
        "conversation_id",
        "text",
        "referral",
        "status",
        "detail",
        "actions",
        "created_at",
        "finished_at",
    ]
    assert {k: run[k] for k in list(run)[1:9]} == {
        "bot_id": bot["id"],
        "trigger": "message.received",
        "conversation_id": conversation["id"],
        "text": "Saw your ad",
        "referral": True,
        "status": "done",
        "detail": None,
        "actions": [{"type": "add_tags", "status": "done", "detail": "added lead"}],
    }
    assert run["finished_at"] is not None
    [skipped] = await eventually(lambda: finished(quiet))
    assert (skipped["status"], skipped["detail"], skipped["actions"]) == (
        "skipped",
        "min_followers: 10 followers, fewer than 11",
        [],
    )


async def test_only_a_capture_bot_has_a_capture_url(shop: Shop) -> None:
    bot = await shop.journey(actions=[TAG])
    capture = await shop.api.ok("POST", "/api/v1/bots", {"name": "Capture"})
    # A journey has a token too (never shown): its URL must record nothing.
    token = await shop.run.services.db.run(_token_of, bot["id"])
    async with aiohttp.ClientSession() as http:
        journey_url = f"{shop.run.base}/hooks/bots/{token}"
        async with http.post(journey_url, json={"x": 1}) as response:
            assert response.status == 404
        async with http.post(capture["webhook_url"], json={"x": 1}) as response:
            assert response.status == 200
    assert (await shop.api.ok("GET", f"/api/v1/bots/{bot['id']}/captures"))["items"] == []


def _token_of(tx: Any, bot_id: str) -> str:
    return str(tx._x("SELECT token FROM bots WHERE id = ?", (bot_id,)).fetchone()[0])
