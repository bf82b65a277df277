"""docs/bots.md's three recipes, as written there, against a running convohook (workers and
all) on both backends: each bot is created from the document's own JSON, then customers' DMs
show what it does (a welcome reply sent through the Send API stand-in and a round-robin
assignment, VIP routing by followers, keyword tagging)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from convohook.meta import notifications as n
from convohook.usecases.orgs import create_org

from harness import Api, Meta, Running, eventually, running_convohook

BOTS_MD = Path(__file__).resolve().parents[2] / "docs" / "bots.md"
ACCOUNT = "17841400000000077"
SECRET = "bots-recipes-app-secret"
# A curl line's body: -d '{ ... }' (shell quoting '"$AGENT"' splices a variable in).
BODY = re.compile(r"-d '(\{.*?\})'\n", re.S)


def recipes(agent_id: str) -> list[dict[str, Any]]:
    bodies = BODY.findall(BOTS_MD.read_text())
    return [orjson.loads(b.replace("'\"$AGENT\"'", agent_id)) for b in bodies]


async def _conversation(api: Api, customer: str) -> dict[str, Any]:
    async def found() -> Any:
        items = (await api.ok("GET", "/api/v1/conversations"))["items"]
        return next((c for c in items if c["contact"]["igsid"] == customer), None)

    conversation: dict[str, Any] = await eventually(found)
    return conversation


async def _runs_done(api: Api, bot_id: str, count: int) -> list[dict[str, Any]]:
    async def done() -> Any:
        items = (await api.ok("GET", f"/api/v1/bots/{bot_id}/runs"))["items"]
        finished = [r for r in items if r["status"] != "pending"]
        return len(finished) >= count and finished

    runs: list[dict[str, Any]] = await eventually(done)
    return runs


@pytest.fixture
async def shop(database_url_for: str) -> AsyncIterator[tuple[Running, Api, dict[str, str]]]:
    async with running_convohook(database_url_for, SECRET) as run:
        svc = run.services
        org = await svc.db.run(create_org, "Acme", svc.clock())
        api = Api(run.base, org.api_key)
        await api.ok(
            "POST",
            "/api/v1/channels",
            {"handle": "acme_store", "account_id": ACCOUNT, "access_token": "tok"},
        )
        ada = await api.ok("POST", "/api/v1/agents", {"name": "Ada", "email": "ada@acme.test"})
        vip = await api.ok("POST", "/api/v1/agents", {"name": "Vic", "email": "vic@acme.test"})
        bots = {}
        for body in recipes(vip["id"]):
            status, bot = await api.call("POST", "/api/v1/bots", body)
            assert status == 201, bot
            bots[bot["name"]] = bot["id"]
        assert list(bots) == ["Welcome", "VIP routing", "Pricing", "Pricing, out of hours"]
        yield run, api, {"ada": ada["id"], "vip": vip["id"], **bots}


async def _dm(run: Running, customer: str, mid: str, text: str) -> None:
    dm = n.notification([n.entry(ACCOUNT, [n.text_message(customer, ACCOUNT, mid, _now(), text)])])
    assert await Meta(run.base, SECRET).post(dm) == 200


def _now() -> int:
    return int(time.time() * 1000)


async def test_the_welcome_bot_replies_and_assigns_in_turn(
    shop: tuple[Running, Api, dict[str, str]],
) -> None:
    run, api, ids = shop
    run.graph.put("7700000000000001", "jane.doe", "Jane Doe", follower_count=12)
    await _dm(run, "7700000000000001", "m-1", "Hello!")
    [welcome] = await _runs_done(api, ids["Welcome"], 1)
    assert welcome["status"] == "done", welcome
    assert [a["status"] for a in welcome["actions"]] == ["done", "done"], welcome
    [vip] = await _runs_done(api, ids["VIP routing"], 1)
    assert vip["status"] == "skipped"
    assert vip["detail"].startswith("min_followers"), vip

    async def sent() -> Any:
        return [r.text for r in run.graph.send.sent]

    texts = await eventually(sent)
    assert texts == ["Hi Jane Doe! Thanks for your message, we will answer shortly."]
    conversation = await _conversation(api, "7700000000000001")
    assert conversation["assignee_id"] in {ids["ada"], ids["vip"]}
    async with aiohttp.ClientSession() as http, http.get(f"{run.base}/metrics") as response:
        metrics = await response.text()
    assert 'convohook_bot_runs_total{status="done"} 1.0' in metrics
    assert 'convohook_bot_actions_total{outcome="done",type="send_message"} 1.0' in metrics


async def test_vip_routing_has_the_last_word_and_keyword_bots_tag(
    shop: tuple[Running, Api, dict[str, str]],
) -> None:
    run, api, ids = shop
    run.graph.put("7700000000000002", "star", "Star", follower_count=250_000)
    await _dm(run, "7700000000000002", "m-2", "What is your PRICING for teams?")
    await _runs_done(api, ids["VIP routing"], 1)
    [pricing] = await _runs_done(api, ids["Pricing"], 1)
    assert pricing["status"] == "done", pricing
    conversation = await _conversation(api, "7700000000000002")
    # Welcome assigned in turn first; VIP routing, created after it, ran after it.
    assert conversation["assignee_id"] == ids["vip"]
    assert sorted(conversation["tags"]) == ["pricing", "vip"]
