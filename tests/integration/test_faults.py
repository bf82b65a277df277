"""The database failing under the inbound path (issue 7): Meta gets a 503 and posts again, so
nothing is lost; nothing half-written is left behind; the opening is delivered once."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from convohook.meta import notifications as n
from convohook.usecases.orgs import create_org

from harness import Api, Meta, Receiver, Running, run_receiver, running_convohook

pytestmark = pytest.mark.slow

SECRET = "faults-app-secret"
ACCOUNT = "17841433333333333"


async def connect(
    run: Running, receiver_url: str, igsid: str, username: str
) -> tuple[Api, Any, bytes]:
    """An org, a channel and a webhook to `receiver_url`; a customer the Graph API knows; the
    notification of their first DM."""
    org = await run.services.db.run(create_org, "Faults", run.services.clock())
    api = Api(run.base, org.api_key)
    channel = await api.ok(
        "POST",
        "/api/v1/channels",
        {"type": "INSTAGRAM", "handle": "faults_shop", "account_id": ACCOUNT, "access_token": "t"},
    )
    webhook = await api.ok(
        "POST",
        "/api/v1/webhooks",
        {"name": "crm", "url": receiver_url, "channel_ids": [channel["id"]]},
    )
    run.graph.put(igsid, username, username.replace(".", " ").title())
    item = n.text_message(igsid, ACCOUNT, f"m.{igsid}", 1_700_000_000_000, "hi")
    return api, webhook, n.encode(n.notification([n.entry(ACCOUNT, [item])]))


async def test_a_locked_database_answers_503_and_meta_s_retry_opens_once(tmp_path: Path) -> None:
    db_path = tmp_path / "locked.db"
    async with running_convohook(f"sqlite:///{db_path}", SECRET) as run:
        api, webhook, body = await connect(run, run.receiver.url, "4242", "locked.customer")
        meta = Meta(run.base, SECRET)

        # Another process holds SQLite's write lock longer than convohook's busy timeout (5 s).
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            assert await meta.post(body) == 503  # not stored: Meta keeps it and posts again
        finally:
            holder.execute("ROLLBACK")
            holder.close()

        assert await meta.post(body) == 200
        [delivery] = await run.receiver.wait_for(1, timeout=20)
        await asyncio.sleep(1.0)  # a second opening would arrive now
        assert len(run.receiver.received) == 1
        [verified] = run.receiver.verify_all(webhook["secret"])
        assert verified["from"] == "locked.customer"
        assert delivery.json()["conversationOpened"] is True
        status, conversations = await api.call("GET", "/api/v1/conversations")
        assert status == 200
        assert len(conversations["items"]) == 1


@dataclass
class ThrottlingReceiver(Receiver):
    """Answers 429 with `Retry-After: 2` the first time, then 200; notes when each came."""

    arrivals: list[float] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        response = await super().handle(request)
        if len(self.arrivals) == 1:
            return web.Response(status=429, text="slow down", headers={"Retry-After": "2"})
        return response


async def test_a_429_with_retry_after_is_honoured_then_delivered_once(tmp_path: Path) -> None:
    receiver = ThrottlingReceiver()
    async with (
        run_receiver(receiver),
        running_convohook(
            f"sqlite:///{tmp_path / 'throttled.db'}",
            SECRET,
            retry_schedule=(0.2, 0.2, 0.2),  # much sooner than the receiver asked
            retry_min_delay_after_throttle=0.5,
        ) as run,
    ):
        _, webhook, body = await connect(run, receiver.url, "4343", "throttled.customer")
        assert await Meta(run.base, SECRET).post(body) == 200
        await receiver.wait_for(2, timeout=20)
        await asyncio.sleep(1.0)  # nothing more is coming

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # the same delivery
    receiver.verify_all(webhook["secret"])
    # It waited as asked (2 s), not the schedule's 0.2 s; a busy machine only makes it later.
    assert receiver.arrivals[1] - receiver.arrivals[0] >= 1.9
    assert len(receiver.received) == 2
