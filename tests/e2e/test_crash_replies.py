"""At most once under SIGKILL (DESIGN section 7): replies to customers are queued, then the
processes that send them are killed again and again while they send.

The Graph API stand-in takes every reply (counting it by its text, each text unique) and
answers a second later, as a loaded Meta may. A killer sends `SIGKILL` at
random moments and restarts what it killed: on SQLite the one `convohook serve`; on PostgreSQL
one of `serve --no-worker` and two `convohook worker`s, in turn. Afterwards every reply is
`sent`, `failed` or `unknown`; no text reached the Graph API twice; every text it received is
`sent` or `unknown` (none lost: a reply that may have gone out is never called failed); and a
`sent` reply's text was received.
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
    CONVOHOOK,
    SECRET,
    cluster,
    graph_standin,
    kill_and_restart,
    stopping,
)

from convohook.devtools.graph_standin import ProfileRegistry
from convohook.meta import notifications as n

from harness import Api, Meta

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ACCOUNT = "17841477777777777"
CUSTOMERS = 300
KILLS = 10
SETTLED = {"sent", "failed", "unknown"}


def igsid(i: int) -> str:
    return f"77{i:014d}"


async def open_conversations(api: Api, meta: Meta) -> list[str]:
    """One DM from each customer, written just now (the reply window open); their ids."""
    now = int(time.time() * 1000)
    for start in range(0, CUSTOMERS, 40):
        items = [
            n.text_message(igsid(i), ACCOUNT, f"reply-crash-{i}", now + i, "hello")
            for i in range(start, min(start + 40, CUSTOMERS))
        ]
        assert await meta.post(n.notification([n.entry(ACCOUNT, items)])) == 200
    deadline = time.monotonic() + 60
    while True:
        ids = await conversation_ids(api)
        if len(ids) == CUSTOMERS:
            return ids
        assert time.monotonic() < deadline, f"{len(ids)} of {CUSTOMERS} conversations opened"
        await asyncio.sleep(0.2)


async def conversation_ids(api: Api) -> list[str]:
    ids: list[str] = []
    cursor = ""
    while True:
        page = await api.ok("GET", f"/api/v1/conversations?limit=200{cursor}")
        ids += [c["id"] for c in page["items"]]
        if page["next"] is None:
            return ids
        cursor = f"&cursor={page['next']}"


async def replies_of(api: Api, conversation: str) -> list[dict[str, Any]]:
    page = await api.ok("GET", f"/api/v1/conversations/{conversation}/messages?limit=200")
    return [m for m in page["items"] if m["direction"] == "out"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_sigkill_while_sending_replies_sends_none_twice_and_loses_none(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = (
        f"sqlite:///{tmp_path / 'crash.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("postgres_url"))
    )
    rng = random.Random(f"replies-{backend}-{os.environ.get('CONVOHOOK_CRASH_SEED', '2026')}")
    registry = ProfileRegistry()
    for i in range(CUSTOMERS):
        registry.put(igsid(i), f"reply_user{i}", f"Reply User {i}")
    # Meta under load: every reply is taken, and answered a moment later (a kill in between
    # leaves a reply that reached Meta without convohook knowing).
    registry.send.set_fault("hang", delay=1.0)
    async with graph_standin(registry) as graph_url:
        processes = cluster(backend, database_url, graph_url, tmp_path)
        for process in processes:
            # Past the stand-in's second; so a claim's lease is 2 x 3 + 10 s.
            process.env["CONVOHOOK_GRAPH_TIMEOUT"] = "3"
        base = str(processes[0].health_url)
        # No echoes: one would prove a reply killed mid-call sent (test_replies_storage.py),
        # and here what a kill leaves must be seen as it is.
        with stopping(processes):
            for process in processes:
                await process.start()
            created = subprocess.run(
                [str(CONVOHOOK), "orgs", "create", "--name", "Replies"],
                env=processes[0].env,
                capture_output=True,
                check=True,
                timeout=60,
            )
            api = Api(base, json.loads(created.stdout)["api_key"])
            await api.ok(
                "POST",
                "/api/v1/channels",
                {
                    "type": "INSTAGRAM",
                    "handle": "crash_shop",
                    "account_id": ACCOUNT,
                    "access_token": "t",
                },
            )
            conversations = await open_conversations(api, Meta(base, SECRET))
            texts = {}
            for i, conversation in enumerate(conversations):
                accepted = await api.ok(
                    "POST",
                    f"/api/v1/conversations/{conversation}/messages",
                    {"text": f"reply number {i}"},
                )
                texts[accepted["id"]] = f"reply number {i}"
            killed = await kill_and_restart(processes, rng, kills=KILLS, longest_pause=0.6)

            # Claims of killed processes turn unknown once their lease is out.
            deadline = time.monotonic() + 120
            while True:
                replies = [r for c in conversations for r in await replies_of(api, c)]
                mine = [r for r in replies if r["sent_by"] == "api"]
                if len(mine) == CUSTOMERS and all(r["status"] in SETTLED for r in mine):
                    break
                pending = Counter(r["status"] for r in mine)
                assert time.monotonic() < deadline, f"replies never settled: {pending}"
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # a reply sent twice would reach the stand-in by now
            replies = [r for c in conversations for r in await replies_of(api, c)]

    received = registry.send.texts()
    doubled = {text: count for text, count in received.items() if count > 1}
    assert not doubled, f"sent more than once: {doubled}"
    by_text = {r["text"]: r for r in replies if r["sent_by"] == "api"}
    assert set(by_text) == set(texts.values())
    for text in received:
        assert by_text[text]["status"] in ("sent", "unknown"), by_text[text]
    for text, reply in by_text.items():
        if reply["status"] == "sent":
            assert received[text] == 1, reply
    assert [r for r in replies if r["sent_by"] != "api"] == []
    statuses = Counter(r["status"] for r in by_text.values())
    assert len(killed) == KILLS
    print(
        json.dumps(
            {
                "test": "sigkill-replies",
                "backend": backend,
                "kills": len(killed),
                "replies": CUSTOMERS,
                "received": len(received),
                **statuses,
            }
        )
    )
