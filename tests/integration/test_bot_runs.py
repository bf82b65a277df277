"""Bot Studio journeys as use cases on both backends (DESIGN section 7): runs decided with
their triggering event, carried out once with their effects, in the bots' order."""

from __future__ import annotations

import time

from test_assignment import agent, clock, run
from test_storage_contract import T0, apply, msg, setup_org

from convohook.domain.model import BotRun
from convohook.storage.base import Transaction
from convohook.storage.database import Database
from convohook.usecases.bot_runs import carry_out_runs
from convohook.usecases.bots import create_bot, list_runs
from convohook.usecases.conversations import list_conversations


def runs_of(db: Database, org_id: str, bot_id: str) -> list[BotRun]:
    return list(reversed(run(db, list_runs, org_id, bot_id, None, 100)))


def carry_out(db: Database) -> int:
    total = 0
    while True:
        report = run(db, carry_out_runs, clock=lambda: int(time.time() * 1000), limit=50)
        total += report.runs
        if report.runs == 0:
            return total


def known_profiles(db: Database) -> None:
    def save(tx: Transaction) -> None:
        tx._x(  # type: ignore[attr-defined]
            "UPDATE contacts SET username = 'jane', name = 'Jane', profile_status = 'ok', "
            "follower_count = 1500"
        )
        tx._x("UPDATE events SET payload = ? WHERE payload IS NULL", (b"{}",))  # type: ignore[attr-defined]

    run(db, save)


def test_a_welcome_bot_replies_assigns_and_tags_once(db: Database) -> None:
    channel, _ = setup_org(db)
    ada = agent(db, channel.org_id, "Ada")
    welcome = run(
        db,
        create_bot,
        channel.org_id,
        "Welcome",
        "conversation.opened",
        clock(),
        conditions={"reason": ["first_message"]},
        actions=[
            {"type": "send_message", "text": "Hi {{name}}!"},
            {"type": "assign", "strategy": "round_robin"},
        ],
    )
    tagger = run(
        db,
        create_bot,
        channel.org_id,
        "Tag the assigned",
        "conversation.opened",
        clock(),
        actions=[{"type": "add_tags", "tags": ["lead"]}],
    )
    now = int(time.time() * 1000)
    assert apply(db, channel, msg("111", mid="m-1", ts=now), now=now) == "first_message"
    # Waits for the customer's profile: the conditions and the greeting read it.
    assert carry_out(db) == 0
    known_profiles(db)
    assert carry_out(db) == 2
    assert carry_out(db) == 0  # never again
    [first] = runs_of(db, channel.org_id, welcome.id)
    assert first.status == "done", first
    assert [o.status for o in first.outcomes] == ["done", "done"], first.outcomes
    [second] = runs_of(db, channel.org_id, tagger.id)
    assert second.status == "done", second
    [conversation] = run(db, list_conversations, channel.org_id, limit=10)
    assert conversation.assignee_id == ada.id
    assert conversation.tags == ("lead",)

    def replies(tx: Transaction) -> list[tuple[str, str, str]]:
        rows = tx._x("SELECT text, status, sent_by FROM outbound_messages").fetchall()  # type: ignore[attr-defined]
        return [tuple(r) for r in rows]

    assert run(db, replies) == [("Hi Jane!", "queued", "bot")]
    assert T0
