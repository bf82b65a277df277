"""The database failing under the inbound path (issue 7): Meta gets a 503 and posts again, so
nothing is lost; nothing half-written is left behind; the opening is delivered once."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from convohook.meta import notifications as n
from convohook.usecases.orgs import create_org

from harness import Api, Meta, Receiver, run_receiver, running_convohook

pytestmark = pytest.mark.slow

SECRET = "faults-app-secret"
ACCOUNT = "17841433333333333"


async def test_a_locked_database_answers_503_and_meta_s_retry_opens_once(tmp_path: Path) -> None:
    db_path = tmp_path / "locked.db"
    async with running_convohook(f"sqlite:///{db_path}", SECRET) as run:
        org = await run.services.db.run(create_org, "Locked", run.services.clock())
        api = Api(run.base, org.api_key)
        channel = await api.ok(
            "POST",
            "/api/v1/channels",
            {
                "type": "INSTAGRAM",
                "handle": "locked_shop",
                "account_id": ACCOUNT,
                "access_token": "t",
            },
        )
        webhook = await api.ok(
            "POST",
            "/api/v1/webhooks",
            {"name": "crm", "url": run.receiver.url, "channel_ids": [channel["id"]]},
        )
        run.graph.put("4242", "locked.customer", "Locked Customer")
        body = n.encode(
            n.notification(
                [
                    n.entry(
                        ACCOUNT,
                        [n.text_message("4242", ACCOUNT, "m.lock", 1_700_000_000_000, "hi")],
                    )
                ]
            )
        )
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
        org = await run.services.db.run(create_org, "Throttled", run.services.clock())
        api = Api(run.base, org.api_key)
        channel = await api.ok(
            "POST",
            "/api/v1/channels",
            {
                "type": "INSTAGRAM",
                "handle": "busy_shop",
                "account_id": ACCOUNT,
                "access_token": "t",
            },
        )
        webhook = await api.ok(
            "POST",
            "/api/v1/webhooks",
            {"name": "crm", "url": receiver.url, "channel_ids": [channel["id"]]},
        )
        run.graph.put("4343", "throttled.customer", "Throttled Customer")
        body = n.encode(
            n.notification(
                [
                    n.entry(
                        ACCOUNT, [n.text_message("4343", ACCOUNT, "m.429", 1_700_000_000_000, "hi")]
                    )
                ]
            )
        )
        assert await Meta(run.base, SECRET).post(body) == 200
        await receiver.wait_for(2, timeout=20)
        await asyncio.sleep(1.0)  # nothing more is coming

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # the same delivery
    receiver.verify_all(webhook["secret"])
    # It waited as asked (2 s), not the schedule's 0.2 s; a busy machine only makes it later.
    assert receiver.arrivals[1] - receiver.arrivals[0] >= 1.9
    assert len(receiver.received) == 2
