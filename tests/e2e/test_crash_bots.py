"""Bots under SIGKILL (issue 16): every run exactly once, no reply doubled, none lost.

Two bots on conversation.opened: one replies with a text naming the customer
(`{{customer_id}}`, so every reply is unique) and tags the conversation `lead`; the other
tags it `seen`. New customers write (`test_crash.Load`: some batched, some with a second DM,
some notifications delivered again, posted until answered 200, a pause after each so the
openings spread over the kills) while the killer sends `SIGKILL` and restarts: on SQLite the one
`convohook serve`; on PostgreSQL `serve --no-worker` and two `convohook worker`s, in turn. The
Graph API stand-in takes every reply and answers half a second later, so kills also fall
between a reply reaching Meta and convohook knowing.

After the last restart and the drain: one conversation per acknowledged customer; per bot
exactly one run per conversation, every one `done` with each action `done`; one bot reply per
conversation, `sent` or `unknown` (none failed, none lost), its text reached the stand-in at
most once (a `sent` one exactly once) and nothing else did; each conversation's tags are
`lead` and `seen`, once each.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_crash import (
    ACCOUNT,
    CONVOHOOK,
    Load,
    cluster,
    graph_standin,
    kill_and_restart,
    stopping,
)
from test_crash_replies import conversation_ids, replies_of

from convohook.devtools.graph_standin import ProfileRegistry

from harness import Api

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CUSTOMERS = 150
KILLS = 8
SETTLE_TIMEOUT_S = 90.0
GREETING = "Welcome {{customer_id}}, we got your message"
TAGS = ["lead", "seen"]


def greeting(customer_id: str) -> str:
    return GREETING.replace("{{customer_id}}", customer_id)


async def all_runs(api: Api, bot_id: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = await api.ok("GET", f"/api/v1/bots/{bot_id}/runs?limit=200{cursor}")
        runs += page["items"]
        if page["next"] is None:
            return runs
        cursor = f"&cursor={page['next']}"


async def set_up(api: Api) -> list[str]:
    await api.ok(
        "POST",
        "/api/v1/channels",
        {"type": "INSTAGRAM", "handle": "crash_shop", "account_id": ACCOUNT, "access_token": "t"},
    )
    bots = [
        {
            "name": "welcome",
            "trigger": "conversation.opened",
            "conditions": {},
            "actions": [
                {"type": "send_message", "text": GREETING},
                {"type": "add_tags", "tags": ["lead"]},
            ],
            "enabled": True,
        },
        {
            "name": "seen",
            "trigger": "conversation.opened",
            "conditions": {},
            "actions": [{"type": "add_tags", "tags": ["seen"]}],
            "enabled": True,
        },
    ]
    return [str((await api.ok("POST", "/api/v1/bots", bot))["id"]) for bot in bots]


async def settled(api: Api, bot_ids: list[str], customers: int) -> tuple[Any, ...]:
    """Wait until every customer's conversation is open, every run finished and every bot
    reply left `queued`/`sending` (a killed process's claim turns `unknown` once its lease is
    out); then the conversations, runs per bot and replies."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        conversations = await conversation_ids(api)
        runs = [await all_runs(api, b) for b in bot_ids]
        pending = sum(r["status"] == "pending" for bot_runs in runs for r in bot_runs)
        replies = {c: await replies_of(api, c) for c in conversations}
        unsettled = sum(r["status"] in ("queued", "sending") for rs in replies.values() for r in rs)
        if (
            len(conversations) >= customers
            and all(len(r) >= len(conversations) for r in runs)
            and pending == 0
            and unsettled == 0
        ):
            return conversations, runs, replies
        assert time.monotonic() < deadline, (
            f"never settled: {len(conversations)}/{customers} conversations, runs "
            f"{[len(r) for r in runs]}, {pending} pending, {unsettled} replies unsettled"
        )
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_sigkill_with_bots_runs_each_once_and_doubles_no_reply(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = (
        f"sqlite:///{tmp_path / 'crash.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    rng = random.Random(f"bots-{backend}-{os.environ.get('CONVOHOOK_CRASH_SEED', '2026')}")
    registry = ProfileRegistry()
    # Meta under load: every reply taken, answered half a second later.
    registry.send.set_fault("hang", delay=0.5)
    async with graph_standin(registry) as graph_url:
        processes = cluster(backend, database_url, graph_url, tmp_path)
        for process in processes:
            # Past the stand-in's half second; a claim's lease is 2 x 3 + 10 s.
            process.env["CONVOHOOK_GRAPH_TIMEOUT"] = "3"
        base = str(processes[0].health_url)
        with stopping(processes):
            for process in processes:
                await process.start()
            created = subprocess.run(
                [str(CONVOHOOK), "orgs", "create", "--name", "Bots"],
                env=processes[0].env,
                capture_output=True,
                check=True,
                timeout=60,
            )
            api = Api(base, json.loads(created.stdout)["api_key"])
            bot_ids = await set_up(api)

            # About CUSTOMERS / (8 senders x 1.2 new customers per notification / 0.6 s)
            # ≈ 10 s of openings, the time the kills take.
            load = Load(
                base,
                registry,
                rng,
                max_customers=CUSTOMERS,
                pause_s=0.6,
                t0=int(time.time() * 1000),
            )
            stop = asyncio.Event()
            load_task = asyncio.create_task(load.run(stop))
            started = time.monotonic()
            try:
                killed = await kill_and_restart(processes, rng, kills=KILLS, longest_pause=1.2)
            finally:
                stop.set()
                await load_task
            load_s = time.monotonic() - started
            conversations, runs, replies = await settled(api, bot_ids, len(load.acknowledged))
            await asyncio.sleep(1.0)  # a reply sent twice would reach the stand-in by now
            details = [await api.ok("GET", f"/api/v1/conversations/{c}") for c in conversations]

    # One conversation per acknowledged customer.
    assert {d["contact"]["handle"] for d in details} == load.acknowledged
    assert len(conversations) == len(load.acknowledged)
    # Per bot, exactly one run per conversation, each done, each action done.
    for bot_runs in runs:
        per_conversation = Counter(r["conversation_id"] for r in bot_runs)
        assert set(per_conversation) == set(conversations)
        assert max(per_conversation.values()) == 1, per_conversation.most_common(3)
        not_done = [r for r in bot_runs if r["status"] != "done"]
        assert not not_done, not_done[:3]
        bad = [r for r in bot_runs if any(a["status"] != "done" for a in r["actions"])]
        assert not bad, bad[:3]
    # One bot reply per conversation, with its customer's text; at most once at Meta.
    received = registry.send.texts()
    doubled = {text: count for text, count in received.items() if count > 1}
    assert not doubled, f"sent more than once: {doubled}"
    expected: dict[str, dict[str, Any]] = {}
    for d in details:
        mine = replies[d["id"]]
        assert [r["sent_by"] for r in mine] == ["bot"], mine
        assert mine[0]["text"] == greeting(d["contact"]["customer_id"])
        expected[mine[0]["text"]] = mine[0]
    assert set(received) <= set(expected), set(received) - set(expected)
    statuses = Counter(r["status"] for r in expected.values())
    assert set(statuses) <= {"sent", "unknown"}, statuses  # none failed, none lost
    for text, reply in expected.items():
        if reply["status"] == "sent":
            assert received[text] == 1, reply
    # Tags: both, once each.
    for d in details:
        assert d["tags"] == sorted(TAGS), d
    assert len(killed) == KILLS
    print(
        json.dumps(
            {
                "test": "sigkill-bots",
                "backend": backend,
                "kills": len(killed),
                "load_s": round(load_s, 1),
                "openings": len(conversations),
                "runs": sum(len(r) for r in runs),
                "replies_received_by_graph": len(received),
                **statuses,
            }
        )
    )
