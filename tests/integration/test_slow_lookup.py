"""One slow profile lookup holds back its own opening's webhook, not those of the other
openings whose lookups were handed over with it (from the same processing batch)."""

from __future__ import annotations

from typing import Any

import pytest

from convohook.meta import notifications as n

from harness import Meta, Running, connect_channel, running_convohook

SECRET = "slow-lookup-app-secret"
ACCOUNT = "17841466666666666"
DMS = 3
SLOW_S = 12.0  # the one slow lookup; the Graph API timeout is set well above it


def _notification(run: Running) -> dict[str, Any]:
    items: list[Any] = []
    for j in range(DMS):
        igsid = f"sl{j}"
        run.graph.put(igsid, f"user.{igsid}")
        items.append(n.text_message(igsid, ACCOUNT, f"m.{igsid}", 1_700_000_000_000, "hi"))
    return n.notification([n.entry(ACCOUNT, items)])


async def _awaiting_profile(run: Running) -> int:
    sql = "SELECT COUNT(*) FROM events WHERE payload IS NULL"
    [count] = await run.services.db.read(lambda tx: tx._x(sql).fetchone())
    return int(count)


@pytest.mark.slow
async def test_a_slow_lookup_holds_back_only_its_own_webhook(database_url_for: str) -> None:
    async with running_convohook(database_url_for, SECRET, graph_timeout=SLOW_S * 3) as run:
        _, _, webhook = await connect_channel(run, ACCOUNT, "sl_shop")
        run.graph.set_fault("slow", delay=SLOW_S, count=1)  # whichever lookup comes first
        # Three DMs in one notification: one processing batch, one handoff of three lookups.
        assert await Meta(run.base, SECRET).post(_notification(run)) == 200

        # The two fast ones go out while the slow one is still being looked up (they used to
        # wait for it: all three came at SLOW_S).
        await run.receiver.wait_for(DMS - 1, timeout=SLOW_S - 2)
        assert len(run.receiver.received) == DMS - 1
        assert await _awaiting_profile(run) == 1

        # And the slow one, once, with its profile.
        await run.receiver.wait_for(DMS, timeout=SLOW_S * 3)
        bodies = run.receiver.verify_all(webhook["secret"])
        assert sorted(body["from"] for body in bodies) == [f"user.sl{j}" for j in range(DMS)]
