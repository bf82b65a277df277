"""When profile lookups fall behind, openings wait as pending notifications on disk, not as
lookups piling up in memory (whose claims could run out before their turn)."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from convohook.meta import notifications as n
from convohook.runtime.workers import ProfileEnricher

from harness import Meta, Running, connect_channel, eventually, running_convohook

SECRET = "backpressure-app-secret"
ACCOUNT = "17841455555555555"
NOTIFICATIONS = 10
DMS_EACH = 3
MAX_HANDED = 5
LOOKUP_DELAY_S = 3.0  # each profile lookup, while the Graph API is slow


async def _count(run: Running, sql: str) -> int:
    [count] = await run.services.db.read(lambda tx: tx._x(sql).fetchone())
    return int(count)


async def _pending(run: Running) -> int:
    return await _count(run, "SELECT COUNT(*) FROM notifications WHERE status = 'pending'")


async def _awaiting_profile(run: Running) -> int:
    return await _count(run, "SELECT COUNT(*) FROM events WHERE payload IS NULL")


def _notification(i: int, run: Running) -> dict[str, Any]:
    items: list[Any] = []
    for j in range(DMS_EACH):
        igsid = f"bp{i}x{j}"
        run.graph.put(igsid, f"user.{igsid}")
        items.append(n.text_message(igsid, ACCOUNT, f"m.{igsid}", 1_700_000_000_000, "hi"))
    return n.notification([n.entry(ACCOUNT, items)])


async def test_slow_lookups_hold_the_processor_back_and_every_opening_arrives_once(
    database_url_for: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ProfileEnricher, "MAX_HANDED", MAX_HANDED)
    async with running_convohook(database_url_for, SECRET) as run:
        _, _, webhook = await connect_channel(run, ACCOUNT, "bp_shop")
        run.graph.set_fault("slow", delay=LOOKUP_DELAY_S)
        meta = Meta(run.base, SECRET)
        # Fill the room: notifications one at a time, each processed (its lookups handed over
        # and started) before the next, until MAX_HANDED lookups are in flight.
        sent = 0
        while run.graph.requests_served < MAX_HANDED:
            assert await meta.post(_notification(sent, run)) == 200
            sent += 1
            await eventually(functools.partial(_started, run, sent * DMS_EACH))
        full = await _awaiting_profile(run)
        assert full == sent * DMS_EACH >= MAX_HANDED
        for i in range(sent, NOTIFICATIONS):
            assert await meta.post(_notification(i, run)) == 200

        # What must not happen: the processor taking the rest while the room is full. That
        # needs a window, not a condition: an unbounded processor takes a notification
        # within milliseconds of its POST, so 0.3 s is ample, and it is a tenth of the
        # lookups' delay, during which none can finish and open the room.
        await asyncio.sleep(0.3)
        assert await _pending(run) == NOTIFICATIONS - sent
        # Read after the count above: had a lookup finished (and opened the room) before it,
        # its opening would have its profile by now. None has, so the room was full throughout.
        assert await _awaiting_profile(run) == full, "a lookup finished: the window proves nothing"

        run.graph.clear_fault()
        await run.receiver.wait_for(NOTIFICATIONS * DMS_EACH, timeout=60)
        assert await _pending(run) == 0
        # Each with the profile looked up (not the IGSID fallback), once, signed.
        bodies = run.receiver.verify_all(webhook["secret"])
        usernames = sorted(body["from"] for body in bodies)
        expected = [f"user.bp{i}x{j}" for i in range(NOTIFICATIONS) for j in range(DMS_EACH)]
        assert usernames == sorted(expected)


async def _started(run: Running, lookups: int) -> bool:
    """Every notification processed and `lookups` profile lookups started at the stand-in."""
    return await _pending(run) == 0 and run.graph.requests_served >= lookups
