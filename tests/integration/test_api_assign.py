"""/api/v1/agents, assigning and tagging through the API, on real sockets and both backends: a
customer's DM opens a conversation, an assignment through the API reaches the subscriber as a
signed `conversation.assigned` (verified with the public `standardwebhooks` library), and the
contact shows the profile fields Instagram shared."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from convohook.meta import notifications as n
from convohook.usecases.orgs import create_org

from harness import Api, Meta, Receiver, Running, eventually, run_receiver, running_convohook

ACCOUNT = "17841400000000088"
SECRET = "assign-app-secret"
CUSTOMER = "8800000000000001"
DOUBLETICK_KEYS = [
    "to",
    "from",
    "handle",
    "contact",
    "channelType",
    "customerName",
    "dtCustomerId",
    "channelHandle",
    "customerPhone",
    "integrationType",
    "conversationOpened",
]


@dataclass
class Shop:
    run: Running
    api: Api
    other: Api  # another org's key
    channel: dict[str, Any]
    webhooks: dict[str, dict[str, Any]]  # by format
    receivers: dict[str, Receiver]
    conversation: dict[str, Any]


async def _conversation(api: Api) -> dict[str, Any]:
    async def opened() -> Any:
        items = (await api.ok("GET", "/api/v1/conversations"))["items"]
        return items and items[0]["contact"]["profile_status"] == "ok" and items[0]

    found: dict[str, Any] = await eventually(opened)
    return found


@pytest.fixture
async def shop(database_url_for: str) -> AsyncIterator[Shop]:
    async with running_convohook(database_url_for, SECRET, retry_schedule=(0.2,)) as run:
        svc = run.services
        org = await svc.db.run(create_org, "Acme", svc.clock())
        other = await svc.db.run(create_org, "Other", svc.clock())
        api = Api(run.base, org.api_key)
        channel = await api.ok(
            "POST",
            "/api/v1/channels",
            {"handle": "acme_store", "account_id": ACCOUNT, "access_token": "tok"},
        )
        # One webhook per format, each with its own receiver, both subscribed to assignments.
        standard = Receiver()

        async with run_receiver(standard):
            receivers = {"doubletick": run.receiver, "standard": standard}
            webhooks = {}
            for fmt, receiver in receivers.items():
                webhooks[fmt] = await api.ok(
                    "POST",
                    "/api/v1/webhooks",
                    {
                        "name": fmt,
                        "url": receiver.url,
                        "channel_ids": [channel["id"]],
                        "events": ["conversation.assigned"],
                        "format": fmt,
                    },
                )
            run.graph.put(
                CUSTOMER,
                "jane.doe",
                "Jane Doe",
                follower_count=1234,
                is_user_follow_business=True,
                is_verified_user=False,
            )
            dm = n.notification(
                [n.entry(ACCOUNT, [n.text_message(CUSTOMER, ACCOUNT, "mid-1", 1_000, "Hi!")])]
            )
            assert await Meta(run.base, SECRET).post(dm) == 200
            conversation = await _conversation(api)
            yield Shop(
                run,
                api,
                Api(run.base, other.api_key),
                channel,
                webhooks,
                receivers,
                conversation,
            )


async def _agent(shop: Shop, name: str, available: bool = True) -> dict[str, Any]:
    body = {"name": name, "email": f"{name.lower()}@acme.test", "available": available}
    status, agent = await shop.api.call("POST", "/api/v1/agents", body)
    assert status == 201, agent
    assert list(agent) == ["id", "name", "email", "available"]
    return dict(agent)


async def test_agents_are_created_listed_and_changed(shop: Shop) -> None:
    ada = await _agent(shop, "Ada")
    assert (ada["name"], ada["email"], ada["available"]) == ("Ada", "ada@acme.test", True)
    bob = await _agent(shop, "Bob", available=False)

    status, refused = await shop.api.call(
        "POST", "/api/v1/agents", {"name": "Ada 2", "email": "ADA@acme.test"}
    )
    assert status == 409
    assert "email" in refused["message"]
    for body, field in [
        ({"name": "", "email": "x@acme.test"}, "name"),
        ({"name": "   ", "email": "x@acme.test"}, "name"),
        ({"name": "X", "email": "not an email"}, "email"),
        ({"name": "X", "email": "x@acme.test", "available": "yes"}, "available"),
        ({"email": "x@acme.test"}, "name"),
    ]:
        status, refused = await shop.api.call("POST", "/api/v1/agents", body)
        assert status == 422, (body, refused)
        assert refused["details"][0]["field"] == field, refused

    listed = (await shop.api.ok("GET", "/api/v1/agents"))["items"]
    assert [a["id"] for a in listed] == [bob["id"], ada["id"]]  # newest first
    changed = await shop.api.ok("PATCH", f"/api/v1/agents/{bob['id']}", {"available": True})
    assert changed == {**bob, "available": True}
    renamed = await shop.api.ok("PATCH", f"/api/v1/agents/{bob['id']}", {"name": "Robert"})
    assert renamed == {**bob, "name": "Robert", "available": True}

    # Another org sees none of them and changes none.
    assert (await shop.other.ok("GET", "/api/v1/agents"))["items"] == []
    status, _ = await shop.other.call("PATCH", f"/api/v1/agents/{ada['id']}", {"name": "Eve"})
    assert status == 404
    assert (await shop.api.ok("GET", "/api/v1/agents"))["items"][1] == ada


async def test_assigning_through_the_api_delivers_a_signed_conversation_assigned(
    shop: Shop,
) -> None:
    ada, bob = await _agent(shop, "Ada"), await _agent(shop, "Bob")
    path = f"/api/v1/conversations/{shop.conversation['id']}/assign"

    assigned = await shop.api.ok("POST", path, {"agent_id": ada["id"]})
    assert assigned["assignee_id"] == ada["id"]
    assert assigned == {**shop.conversation, "assignee_id": ada["id"]}
    again = await shop.api.ok("POST", path, {"agent_id": ada["id"]})  # fires nothing
    assert again == assigned
    assert (await shop.api.ok("POST", path, {"agent_id": bob["id"]}))["assignee_id"] == bob["id"]
    assert (await shop.api.ok("POST", path, {"agent_id": None}))["assignee_id"] is None

    plain = await shop.receivers["doubletick"].wait_for(3)
    extended = await shop.receivers["standard"].wait_for(3)
    bodies = shop.receivers["doubletick"].verify_all(shop.webhooks["doubletick"]["secret"])
    envelopes = shop.receivers["standard"].verify_all(shop.webhooks["standard"]["secret"])
    assert len(plain) == len(extended) == 3  # the repeated assignment sent nothing

    def who(agent: dict[str, Any]) -> dict[str, Any]:
        return {"id": agent["id"], "name": agent["name"], "email": agent["email"]}

    by_assignee = {
        (b["assignee"] or {}).get("id"): b for b in bodies
    }  # the dispatcher may send them in any order
    assert set(by_assignee) == {ada["id"], bob["id"], None}
    first = by_assignee[ada["id"]]
    assert list(first) == [*DOUBLETICK_KEYS, "assignee"]
    assert first["assignee"] == who(ada)
    assert (first["from"], first["customerName"], first["to"]) == (
        "jane.doe",
        "Jane Doe",
        "acme_store",
    )
    assert first["conversationOpened"] is False
    assert first["dtCustomerId"] == shop.conversation["contact"]["customer_id"]
    assert by_assignee[None]["assignee"] is None

    datas = {(e["data"]["assignee"] or {}).get("id"): e for e in envelopes}
    unassigned = datas[None]
    assert unassigned["type"] == "conversation.assigned"
    data = unassigned["data"]
    assert data["previousAssignee"] == who(bob)
    assert data["assignedBy"] == "api"
    assert data["conversationId"] == shop.conversation["id"]
    assert list(data)[: len(DOUBLETICK_KEYS) + 1] == [*DOUBLETICK_KEYS, "assignee"]
    assert datas[bob["id"]]["data"]["previousAssignee"] == who(ada)
    assert datas[ada["id"]]["data"]["previousAssignee"] is None

    # Each signed the Standard Webhooks way, with its own webhook-id.
    assert len({r.headers["webhook-id"] for r in plain}) == 3


async def test_round_robin_through_the_api_and_refusals(shop: Shop) -> None:
    path = f"/api/v1/conversations/{shop.conversation['id']}/assign"
    status, refused = await shop.api.call("POST", path, {"strategy": "round_robin"})
    assert status == 422
    assert refused["details"][0]["field"] == "strategy"
    ada = await _agent(shop, "Ada")
    await _agent(shop, "Bob", available=False)
    done = await shop.api.ok("POST", path, {"strategy": "round_robin"})
    assert done["assignee_id"] == ada["id"]

    stranger_org = shop.other
    status, _ = await stranger_org.call("POST", path, {"agent_id": ada["id"]})
    assert status == 404  # another org's conversation
    other_agent = await stranger_org.ok(
        "POST", "/api/v1/agents", {"name": "Eve", "email": "eve@other.test"}
    )
    status, answer = await shop.api.call("POST", path, {"agent_id": other_agent["id"]})
    assert status == 404
    assert "agent" in answer["message"]
    for body, field in [
        ({}, "agent_id"),
        ({"agent_id": ada["id"], "strategy": "round_robin"}, "agent_id"),
        ({"strategy": "x"}, "strategy"),
        ({"strategy": None}, "strategy"),
        ({"agent_id": 7}, "agent_id"),
    ]:
        status, refused = await shop.api.call("POST", path, body)
        assert status == 422, body
        assert [d["field"] for d in refused["details"]] == [field], refused
    assert (await shop.api.ok("GET", path.removesuffix("/assign")))["assignee_id"] == ada["id"]


async def test_tags_and_the_lists_filters(shop: Shop) -> None:
    conversation = shop.conversation["id"]
    path = f"/api/v1/conversations/{conversation}/tags"
    tagged = await shop.api.ok("POST", path, {"add": [" vip ", "pricing"]})
    assert tagged["tags"] == ["pricing", "vip"]
    untagged = await shop.api.ok("POST", path, {"remove": ["pricing"]})
    assert untagged["tags"] == ["vip"]
    for body, field in [
        ({"add": [""]}, "add"),
        ({"add": ["  "]}, "add"),
        ({"add": ["x" * 51]}, "add"),
        ({"remove": [7]}, "remove"),
        ({"add": [f"t{i}" for i in range(21)]}, "add"),  # at most 20 in one request
    ]:
        status, refused = await shop.api.call("POST", path, body)
        assert status == 422, (body, refused)
        assert refused["details"][0]["field"].startswith(field), refused
    status, _ = await shop.other.call("POST", path, {"add": ["x"]})
    assert status == 404
    # Twenty in one request are fine; with the one it has, one too many for the conversation.
    status, refused = await shop.api.call("POST", path, {"add": [f"t{i}" for i in range(20)]})
    assert status == 409
    assert "at most 20 tags" in refused["message"]

    ada = await _agent(shop, "Ada")
    await shop.api.ok(
        "POST", f"/api/v1/conversations/{conversation}/assign", {"agent_id": ada["id"]}
    )

    async def listed(query: str) -> list[str]:
        page = await shop.api.ok("GET", "/api/v1/conversations" + query)
        return [v["id"] for v in page["items"]]

    assert await listed("?tag=vip") == [conversation]
    assert await listed("?tag=pricing") == []
    assert await listed(f"?assignee_id={ada['id']}") == [conversation]
    assert await listed("?unassigned=true") == []
    assert await listed("?unassigned=false&tag=vip") == [conversation]


async def test_contacts_show_the_profile_fields_instagram_shared(shop: Shop) -> None:
    contact = (await shop.api.ok("GET", "/api/v1/contacts"))["items"][0]
    assert (
        contact["follower_count"],
        contact["is_user_follow_business"],
        contact["is_verified_user"],
    ) == (1234, True, False)
    assert shop.conversation["contact"]["follower_count"] == 1234

    # A customer who shares none of them: null, not zero or false.
    quiet = "8800000000000002"
    shop.run.graph.put(quiet, "quiet.one", None)
    dm = n.notification(
        [n.entry(ACCOUNT, [n.text_message(quiet, ACCOUNT, "mid-q", 2_000, "Hello")])]
    )
    assert await Meta(shop.run.base, SECRET).post(dm) == 200

    async def looked_up() -> Any:
        items = (await shop.api.ok("GET", "/api/v1/contacts?handle=quiet.one"))["items"]
        return items and items[0]["profile_status"] == "ok" and items[0]

    found = await eventually(looked_up)
    assert (
        found["follower_count"],
        found["is_user_follow_business"],
        found["is_verified_user"],
    ) == (None, None, None)
