"""When profile lookups fall behind, openings wait as pending notifications on disk, not as
lookups piling up in memory (whose claims could run out before their turn)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from convohook.meta import notifications as n
from convohook.runtime.workers import ProfileEnricher

from harness import Meta, Running, connect_channel, running_convohook

SECRET = "backpressure-app-secret"
ACCOUNT = "17841455555555555"
NOTIFICATIONS = 10
DMS_EACH = 3
MAX_HANDED = 5


async def _pending(run: Running) -> int:
    sql = "SELECT COUNT(*) FROM notifications WHERE status = 'pending'"
    [count] = await run.services.db.read(lambda tx: tx._x(sql).fetchone())
    return int(count)


async def test_slow_lookups_hold_the_processor_back_and_every_opening_arrives_once(
    database_url_for: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ProfileEnricher, "MAX_HANDED", MAX_HANDED)
    async with running_convohook(database_url_for, SECRET) as run:
        _, _, webhook = await connect_channel(run, ACCOUNT, "bp_shop")
        run.graph.set_fault("slow", delay=3)
        meta = Meta(run.base, SECRET)
        for i in range(NOTIFICATIONS):
            items: list[Any] = []
            for j in range(DMS_EACH):
                igsid = f"bp{i}x{j}"
                run.graph.put(igsid, f"user.{igsid}")
                items.append(n.text_message(igsid, ACCOUNT, f"m.{igsid}", 1_700_000_000_000, "hi"))
            assert await meta.post(n.notification([n.entry(ACCOUNT, items)])) == 200
        # A moment for the processor (well within the lookups' delay): the first rounds' lookups
        # fill the room, the rest wait, acknowledged, on disk. Without the bound none would.
        await asyncio.sleep(0.5)
        assert await _pending(run) >= 2
        run.graph.clear_fault()
        await run.receiver.wait_for(NOTIFICATIONS * DMS_EACH, timeout=60)
        assert await _pending(run) == 0
        # Each with the profile looked up (not the IGSID fallback), once, signed.
        bodies = run.receiver.verify_all(webhook["secret"])
        usernames = sorted(body["from"] for body in bodies)
        expected = [f"user.bp{i}x{j}" for i in range(NOTIFICATIONS) for j in range(DMS_EACH)]
        assert usernames == sorted(expected)
