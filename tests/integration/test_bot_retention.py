"""Retention of bots' runs on both backends: finished runs go with the retention window (a
keyword bot makes one per customer message), a pending one is work and stays."""

from __future__ import annotations

from test_assignment import clock, run
from test_storage_contract import T0, apply, msg, setup_org

from convohook.storage.base import Transaction
from convohook.storage.database import Database
from convohook.usecases.bot_runs import carry_out_runs
from convohook.usecases.bots import create_bot, list_runs
from convohook.usecases.retention import clean_once

DAY = 86_400_000


def test_finished_runs_older_than_the_window_are_deleted_pending_ones_kept(db: Database) -> None:
    channel, _ = setup_org(db)
    bot = run(
        db,
        create_bot,
        channel.org_id,
        "Keywords",
        "message.received",
        clock(),
        actions=[{"type": "add_tags", "tags": ["seen"]}],
    )
    assert apply(db, channel, msg("111", mid="m-1", ts=T0), now=T0) == "first_message"
    assert apply(db, channel, msg("222", mid="m-2", ts=T0), now=T0) == "first_message"

    def profiles_known(tx: Transaction) -> None:
        tx._x("UPDATE events SET payload = ? WHERE payload IS NULL", (b"{}",))  # type: ignore[attr-defined]
        # The webhooks went out (runs wait for their first attempt).
        tx._x("UPDATE deliveries SET status = 'succeeded', attempt_count = 1")  # type: ignore[attr-defined]

    run(db, profiles_known)
    # One run carried out, the other left pending.
    assert run(db, carry_out_runs, clock=lambda: T0, limit=1).runs == 1
    assert db.run_sync(clean_once, before_ms=T0).bot_runs == 0  # not old enough yet
    assert db.run_sync(clean_once, before_ms=T0 + DAY).bot_runs == 1
    [left] = run(db, list_runs, channel.org_id, bot.id, None, 10)
    assert left.status == "pending"
    assert db.run_sync(clean_once, before_ms=T0 + DAY).bot_runs == 0
