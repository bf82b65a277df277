"""Bot Studio journeys as use cases on both backends (DESIGN section 7): runs decided with
their triggering event, carried out once with their effects, in the bots' order. Every
trigger, condition and action is here, each with a case that would fail without it."""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from typing import Any

import pytest
from test_assignment import agent, assigned_events, clock, run, workers
from test_inactivity import HOUR_MS, HOUR_S, set_rule, sweep
from test_storage_contract import T0, apply, setup_org

from convohook.domain.inbound import InboundItem, ItemKind
from convohook.domain.model import Bot, BotRun, Channel, Conversation
from convohook.domain.payload import CustomerProfile
from convohook.storage.base import Storage, Transaction
from convohook.storage.database import Database
from convohook.usecases.bot_runs import WEBHOOK_FIRST_MS, carry_out_runs
from convohook.usecases.bots import BotChanges, create_bot, delete_bot, list_runs, update_bot
from convohook.usecases.clock import Clock
from convohook.usecases.conversations import list_conversations, mark_done
from convohook.usecases.errors import NotFound
from convohook.usecases.profiles import (
    ProfileResult,
    apply_profile_results,
    claim_awaiting_profiles,
)

DAY_MS = 24 * HOUR_MS
MARK_DONE = {"type": "mark_done"}
ROUND_ROBIN = {"type": "assign", "strategy": "round_robin"}
Outcome = tuple[str, str, str | None]

# The concurrency test takes the fixture by name.
__all__ = ["workers"]


# --- helpers -----------------------------------------------------------------------------------


def tag(*tags: str) -> dict[str, Any]:
    return {"type": "add_tags", "tags": list(tags)}


def say(text: str) -> dict[str, Any]:
    return {"type": "send_message", "text": text}


def assign_to(agent_id: str) -> dict[str, Any]:
    return {"type": "assign", "strategy": "agent", "agent_id": agent_id}


def bot(
    db: Database,
    channel: Channel,
    trigger: str,
    *actions: dict[str, Any],
    enabled: bool = True,
    **conditions: Any,
) -> Bot:
    """A journey of the channel's org; bots made in turn run in that order."""
    return run(
        db,
        create_bot,
        channel.org_id,
        f"{trigger} bot",
        trigger,
        clock(),
        conditions=conditions or None,
        actions=list(actions),
        enabled=enabled,
    )


def dm(
    db: Database,
    channel: Channel,
    text: str | None = "hi",
    *,
    igsid: str = "111",
    mid: str = "m-1",
    ts: int = T0,
    referral: bool = False,
) -> str:
    """A customer's message applied as the processor does; how it was decided."""
    item = InboundItem(
        account_id=channel.account_id,
        kind=ItemKind.MESSAGE,
        customer_igsid=igsid,
        timestamp_ms=ts,
        mid=mid,
        text=text,
        referral=referral,
    )
    return apply(db, channel, item, now=ts)


def profile_found(db: Database, name: str | None = "Jane", **shared: Any) -> int:
    """Instagram's answer for every customer waiting for one; how many there were."""

    def save(tx: Transaction) -> int:
        waiting = claim_awaiting_profiles(tx, T0 + 30 * DAY_MS, T0 + 31 * DAY_MS, 100)
        profile = CustomerProfile("jane", name, **shared)
        apply_profile_results(tx, [ProfileResult(w, profile) for w in waiting], T0)
        return len(waiting)

    return run(db, save)


def webhooks_sent(db: Database) -> None:
    """What the dispatcher does first: every webhook due has its first attempt (runs wait for
    it, test_a_run_waits_for_its_webhooks_first_attempt)."""

    def send(tx: Transaction) -> None:
        tx._x(  # type: ignore[attr-defined]
            "UPDATE deliveries SET status = 'succeeded', attempt_count = 1 "
            "WHERE status = 'pending' AND attempt_count = 0"
        )

    run(db, send)


def carry_out(db: Database, at: Clock = clock) -> int:
    """What the dispatcher and the bot runner do until they run out of work; how many runs
    ran."""
    total = 0
    while True:
        webhooks_sent(db)
        report = run(db, carry_out_runs, clock=at, limit=50)
        if report.runs == 0:
            return total
        total += report.runs


def runs_of(db: Database, b: Bot) -> list[BotRun]:
    """Oldest first."""
    return list(reversed(run(db, list_runs, b.org_id, b.id, None, 100)))


def results(db: Database, b: Bot) -> list[tuple[str, str | None, list[Outcome]]]:
    return [
        (r.status, r.detail, [(o.type, o.status, o.detail) for o in r.outcomes])
        for r in runs_of(db, b)
    ]


def only_conversation(db: Database, channel: Channel) -> Conversation:
    [conversation] = run(db, list_conversations, channel.org_id, limit=10)
    return conversation


def conversations(db: Database, channel: Channel) -> list[Conversation]:
    """Oldest first."""
    return list(reversed(run(db, list_conversations, channel.org_id, limit=200)))


def rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    with db.storage.transaction(write=False) as tx:
        return [tuple(r) for r in tx._x(sql).fetchall()]  # type: ignore[attr-defined]


def replies(db: Database) -> list[tuple[Any, ...]]:
    """(text, status, sent_by, human_agent) of each reply queued, oldest first."""
    return rows(
        db,
        "SELECT text, status, sent_by, human_agent FROM outbound_messages ORDER BY created_at_ms",
    )


def opened(db: Database, channel: Channel, **profile: Any) -> None:
    """A customer's first message, its profile found."""
    assert dm(db, channel) == "first_message"
    assert profile_found(db, **profile) == 1


# --- triggers ----------------------------------------------------------------------------------


def test_a_welcome_bot_replies_assigns_and_tags_once(db: Database) -> None:
    channel, _ = setup_org(db)
    ada = agent(db, channel.org_id, "Ada")
    welcome = bot(
        db,
        channel,
        "conversation.opened",
        say("Hi {{name}}!"),
        ROUND_ROBIN,
        reason=["first_message"],
    )
    tagger = bot(db, channel, "conversation.opened", tag("lead"))
    assert dm(db, channel) == "first_message"
    # Waits for the customer's profile: the conditions and the greeting read it.
    assert carry_out(db) == 0
    assert profile_found(db) == 1
    assert carry_out(db) == 2
    assert carry_out(db) == 0  # never again
    assert results(db, welcome) == [
        (
            "done",
            None,
            [
                ("send_message", "done", f"reply {_reply_id(db)} queued"),
                ("assign", "done", f"assigned to Ada ({ada.id})"),
            ],
        )
    ]
    assert results(db, tagger) == [("done", None, [("add_tags", "done", "added lead")])]
    conversation = only_conversation(db, channel)
    assert (conversation.assignee_id, conversation.tags) == (ada.id, ("lead",))
    assert replies(db) == [("Hi Jane!", "queued", "bot", 0)]


def _reply_id(db: Database) -> str:
    [(reply_id,)] = rows(db, "SELECT id FROM outbound_messages")
    return str(reply_id)


def test_conversation_opened_runs_for_a_first_message_and_a_reopening_by_reason(
    db: Database,
) -> None:
    channel, _ = setup_org(db)
    first = bot(db, channel, "conversation.opened", tag("new"), reason=["first_message"])
    back = bot(db, channel, "conversation.opened", tag("back"), reason=["reopened"])
    anyway = bot(db, channel, "conversation.opened", tag("any"))
    opened(db, channel)
    assert carry_out(db) == 3
    run(db, mark_done, channel.org_id, only_conversation(db, channel).id, clock=clock)
    assert dm(db, channel, mid="m-2", ts=T0 + HOUR_MS) == "reopened"
    assert carry_out(db) == 3

    assert [r.status for r in runs_of(db, first)] == ["done", "skipped"]
    assert runs_of(db, first)[1].detail == "reason: opened by reopened"
    assert [r.status for r in runs_of(db, back)] == ["skipped", "done"]
    assert runs_of(db, back)[0].detail == "reason: opened by first_message"
    assert [r.status for r in runs_of(db, anyway)] == ["done", "done"]
    assert [(v.reason, v.tags) for v in conversations(db, channel)] == [
        ("first_message", ("any", "new")),
        ("reopened", ("any", "back")),
    ]


def test_conversation_closed_runs_after_a_close_by_hand_and_by_inactivity(db: Database) -> None:
    channel, _ = setup_org(db)
    channel = set_rule(db, channel, HOUR_S)
    closed = bot(db, channel, "conversation.closed", tag("closed"))
    opened(db, channel)
    assert dm(db, channel, igsid="222", mid="m-2", ts=T0 + HOUR_MS) == "first_message"
    assert profile_found(db) == 1
    assert carry_out(db) == 0  # nothing closed yet
    by_hand, idle = conversations(db, channel)
    run(db, mark_done, channel.org_id, by_hand.id, clock=clock)
    assert sweep(db, T0 + 2 * HOUR_MS + 1).closed == 1
    assert carry_out(db) == 2

    assert [(r.conversation_id, r.status, r.text) for r in runs_of(db, closed)] == [
        (by_hand.id, "done", None),
        (idle.id, "done", None),
    ]
    assert [(v.closed_reason, v.tags) for v in conversations(db, channel)] == [
        ("manual", ("closed",)),
        ("inactivity", ("closed",)),
    ]


def test_message_received_runs_for_every_message_after_the_openings_runs(db: Database) -> None:
    channel, _ = setup_org(db)
    # The older bot, yet its run on the first message comes after the opening's runs.
    keyword = bot(db, channel, "message.received", tag("asked"), text_contains=["price"])
    welcome = bot(db, channel, "conversation.opened", tag("welcomed"))
    opened(db, channel)
    assert dm(db, channel, "What is the PRICE?", mid="m-2", ts=T0 + 1_000) == "continue"
    assert carry_out(db) == 3

    [opening] = runs_of(db, welcome)
    on_first, on_second = runs_of(db, keyword)
    assert opening.finished_at_ms is not None
    assert on_first.finished_at_ms is not None
    assert opening.finished_at_ms < on_first.finished_at_ms
    assert [(r.text, r.reason, r.status, r.detail) for r in (on_first, on_second)] == [
        ("hi", "first_message", "skipped", "text_contains: the message contains none of 'price'"),
        ("What is the PRICE?", "first_message", "done", None),
    ]
    assert only_conversation(db, channel).tags == ("asked", "welcomed")


# --- conditions --------------------------------------------------------------------------------

# Each condition holding (its bot adds a tag of its name) and not (skipped, saying why). The
# customer: 1500 followers, follows the business, verified; the DM: Tuesday 23:13:20 in Berlin
# (T0 is 22:13:20 UTC), from an ad, saying "Hello, PRICING please".
CONDITIONS: list[tuple[str, Any, Any, str]] = [
    ("reason", ["first_message"], ["reopened"], "reason: opened by first_message"),
    (
        "channel_ids",
        ["ch_1"],
        ["ch_2"],
        "channel_ids: the message came to another channel",
    ),
    (
        "text_contains",
        ["refund", "pricing"],
        ["refund", "cancel"],
        "text_contains: the message contains none of 'refund', 'cancel'",
    ),
    ("min_followers", 1500, 1501, "min_followers: 1500 followers, fewer than 1501"),
    (
        "follows_business",
        True,
        False,
        "follows_business: the customer follows the business",
    ),
    ("verified", True, False, "verified: the customer is verified"),
    (
        "referral",
        True,
        False,
        "referral: the message came from an ad or an ig.me link",
    ),
    (
        "business_hours",
        {"tz": "Europe/Berlin", "days": [2], "from": "22:00", "to": "02:00"},
        {"tz": "Europe/Berlin", "days": [1, 2, 3, 4, 5], "from": "09:00", "to": "17:00"},
        "business_hours: Tuesday 23:13 Europe/Berlin is outside the hours",
    ),
]


def test_each_condition_holds_or_skips_the_run_saying_why(db: Database) -> None:
    channel, _ = setup_org(db)

    def second_channel(tx: Transaction) -> None:
        tx.insert_channel(Channel("ch_2", channel.org_id, "INSTAGRAM", "b", "1785", "tok", T0))

    run(db, second_channel)
    pairs = [
        (
            bot(db, channel, "message.received", tag(name), **{name: holds}),
            bot(db, channel, "message.received", tag(f"not-{name}"), **{name: fails}),
            why,
        )
        for name, holds, fails, why in CONDITIONS
    ]
    # Outside the hours instead: the same window, inside false.
    outside = bot(
        db,
        channel,
        "message.received",
        tag("outside"),
        business_hours={**CONDITIONS[-1][2], "inside": False},
    )
    assert dm(db, channel, "Hello, PRICING please", referral=True) == "first_message"
    profile_found(db, follower_count=1500, is_user_follow_business=True, is_verified_user=True)
    assert carry_out(db) == 2 * len(CONDITIONS) + 1

    for holding, failing, why in pairs:
        assert [(r.status, r.detail) for r in runs_of(db, holding)] == [("done", None)]
        assert [(r.status, r.detail, r.outcomes) for r in runs_of(db, failing)] == [
            ("skipped", why, ())
        ]
    assert [r.status for r in runs_of(db, outside)] == ["done"]
    expected = [*sorted(name for name, *_ in CONDITIONS), "outside"]
    assert only_conversation(db, channel).tags == tuple(sorted(expected))


def test_a_condition_on_what_instagram_did_not_share_is_false(db: Database) -> None:
    channel, _ = setup_org(db)
    asked = [
        bot(db, channel, "message.received", tag("x"), **condition)
        for condition in (
            {"min_followers": 0},
            {"follows_business": True},
            {"follows_business": False},
            {"verified": True},
            {"verified": False},
        )
    ]
    closed_text = bot(db, channel, "conversation.closed", tag("x"), text_contains=["hi"])
    opened(db, channel)  # a profile without the three fields
    run(db, mark_done, channel.org_id, only_conversation(db, channel).id, clock=clock)
    assert carry_out(db) == len(asked) + 1
    assert [(r.status, r.detail) for b in asked for r in runs_of(db, b)] == [
        ("skipped", "min_followers: Instagram did not share it"),
        ("skipped", "follows_business: Instagram did not share it"),
        ("skipped", "follows_business: Instagram did not share it"),
        ("skipped", "verified: Instagram did not share it"),
        ("skipped", "verified: Instagram did not share it"),
    ]
    # A close has no message to search.
    assert [(r.status, r.detail) for r in runs_of(db, closed_text)] == [
        ("skipped", "text_contains: the message has no text")
    ]
    assert only_conversation(db, channel).tags == ()


# --- actions -----------------------------------------------------------------------------------


def test_send_message_queues_a_bots_reply_with_its_placeholders_filled(db: Database) -> None:
    channel, _ = setup_org(db)
    greeter = bot(
        db,
        channel,
        "conversation.opened",
        say("Hi {{name}} (@{{ username }}), your id is {{customer_id}}."),
    )
    opened(db, channel, name=None)  # no name: the username stands in
    assert carry_out(db) == 1
    [(status, detail, [(kind, outcome, _)])] = results(db, greeter)
    assert (status, detail, kind, outcome) == ("done", None, "send_message", "done")
    customer_id = only_conversation(db, channel).contact.customer_id
    assert replies(db) == [
        (f"Hi jane (@jane), your id is {customer_id}.", "queued", "bot", 0),
    ]


def test_send_message_outside_the_window_is_skipped_and_an_overlong_text_fails(
    db: Database,
) -> None:
    channel, _ = setup_org(db)
    # 990 bytes of template, and a name of 20 characters: 1002 bytes once filled in.
    long = bot(db, channel, "message.received", say("{{name}}" + "x" * 982), tag("after"))
    late = bot(db, channel, "message.received", say("Still there?"))
    opened(db, channel, name="J" * 20)
    carried = carry_out(db, at=lambda: T0 + DAY_MS)  # exactly 24 hours later: closed
    assert carried == 2
    assert results(db, long) == [
        (
            "done",
            None,
            [
                (
                    "send_message",
                    "failed",
                    "the text is 1002 bytes once its placeholders are filled in, over "
                    "Instagram's 1000: shorten it",
                ),
                ("add_tags", "done", "added after"),  # a failed action does not stop the rest
            ],
        )
    ]
    # Only a person may reply now; a bot never replies as a human agent.
    assert results(db, late) == [
        (
            "done",
            None,
            [
                (
                    "send_message",
                    "skipped",
                    "more than 24 hours since the customer's last message: Instagram allows "
                    "only a person's reply, sent as human agent, until 7 days after it",
                )
            ],
        )
    ]
    assert replies(db) == []


def test_assign_round_robin_or_an_agent_as_the_bot(db: Database) -> None:
    channel, _ = setup_org(db, events=("conversation.opened", "conversation.assigned"))
    ada = agent(db, channel.org_id, "Ada", available=False)
    nobody = bot(db, channel, "message.received", ROUND_ROBIN)
    to_ada = bot(db, channel, "message.received", assign_to(ada.id))
    opened(db, channel)
    assert carry_out(db) == 2
    [(_, _, [(_, skipped, why)])] = results(db, nobody)
    assert (skipped, why) == (
        "skipped",
        "round_robin found no available agent: make an agent available first",
    )
    assert results(db, to_ada) == [
        ("done", None, [("assign", "done", f"assigned to Ada ({ada.id})")])
    ]
    conversation = only_conversation(db, channel)
    assert conversation.assignee_id == ada.id
    [(conversation_id, details, _)] = assigned_events(db)
    assert conversation_id == conversation.id
    assert details is not None
    assert details["assignedBy"] == "bot"
    assert details["assignee"]["id"] == ada.id


def test_add_tags_and_mark_done_which_fires_conversation_closed_and_its_bots(
    db: Database,
) -> None:
    channel, _ = setup_org(db, events=("conversation.opened", "conversation.closed"))
    closer = bot(db, channel, "message.received", tag("vip", "lead"), MARK_DONE)
    on_close = bot(db, channel, "conversation.closed", tag("closed-by-bot"))
    opened(db, channel)
    assert carry_out(db) == 2
    assert results(db, closer) == [
        (
            "done",
            None,
            [("add_tags", "done", "added vip, lead"), ("mark_done", "done", "marked done")],
        )
    ]
    assert [r.status for r in runs_of(db, on_close)] == ["done"]
    conversation = only_conversation(db, channel)
    assert (conversation.status, conversation.closed_reason, conversation.tags) == (
        "done",
        "bot",
        ("closed-by-bot", "lead", "vip"),
    )
    assert rows(db, "SELECT reason FROM events WHERE type = 'conversation.closed'") == [("bot",)]


# --- exactly once, in order --------------------------------------------------------------------


def test_each_bot_sees_the_previous_ones_effects_in_creation_order(db: Database) -> None:
    channel, _ = setup_org(db)
    ada = agent(db, channel.org_id, "Ada")
    first = bot(db, channel, "message.received", tag("vip"), assign_to(ada.id), MARK_DONE)
    second = bot(db, channel, "message.received", tag("vip", "x"), assign_to(ada.id), MARK_DONE)
    opened(db, channel)
    assert carry_out(db) == 2
    assert results(db, first) == [
        (
            "done",
            None,
            [
                ("add_tags", "done", "added vip"),
                ("assign", "done", f"assigned to Ada ({ada.id})"),
                ("mark_done", "done", "marked done"),
            ],
        )
    ]
    assert results(db, second) == [
        (
            "done",
            None,
            [
                ("add_tags", "done", "added x"),
                ("assign", "skipped", f"already assigned to Ada ({ada.id})"),
                ("mark_done", "skipped", "the conversation is done already"),
            ],
        )
    ]
    [before], [after] = runs_of(db, first), runs_of(db, second)
    assert before.finished_at_ms is not None
    assert after.finished_at_ms is not None
    assert before.finished_at_ms < after.finished_at_ms


def test_a_run_happens_once_and_a_redelivered_message_schedules_nothing(db: Database) -> None:
    channel, _ = setup_org(db)
    echo = bot(db, channel, "message.received", say("Got it"))
    opened(db, channel)
    assert dm(db, channel) == "ignore"  # Meta delivered it again
    assert dm(db, channel, "again", mid="m-2", ts=T0 + 1) == "continue"
    assert len(runs_of(db, echo)) == 2
    assert carry_out(db) == 2
    assert carry_out(db) == 0
    assert [r.status for r in runs_of(db, echo)] == ["done", "done"]
    assert [r[0] for r in replies(db)] == ["Got it", "Got it"]


def test_runs_wait_for_the_customers_profile(db: Database) -> None:
    channel, _ = setup_org(db)
    vip = bot(db, channel, "message.received", tag("vip"), min_followers=100)
    assert dm(db, channel) == "first_message"
    assert carry_out(db) == 0
    assert [r.status for r in runs_of(db, vip)] == ["pending"]
    profile_found(db, follower_count=100)
    assert carry_out(db) == 1
    assert [r.status for r in runs_of(db, vip)] == ["done"]


def test_disabled_and_deleted_bots(db: Database) -> None:
    channel, _ = setup_org(db)
    off = bot(db, channel, "message.received", tag("off"), enabled=False)
    switched = bot(db, channel, "message.received", tag("switched"))
    doomed = bot(db, channel, "message.received", tag("doomed"))
    kept = bot(db, channel, "message.received", tag("kept"))
    opened(db, channel)
    assert runs_of(db, off) == []
    run(db, update_bot, channel.org_id, switched.id, BotChanges(enabled=False), clock())
    run(db, delete_bot, channel.org_id, doomed.id)
    assert rows(db, f"SELECT COUNT(*) FROM bot_runs WHERE bot_id = '{doomed.id}'") == [(0,)]
    with pytest.raises(NotFound):
        runs_of(db, doomed)
    assert carry_out(db) == 2
    assert results(db, switched) == [("skipped", "the bot was disabled before it ran", [])]
    assert [r.status for r in runs_of(db, kept)] == ["done"]
    assert only_conversation(db, channel).tags == ("kept",)


# --- concurrency -------------------------------------------------------------------------------


def test_concurrent_runners_carry_out_each_run_once(db: Database, workers: list[Storage]) -> None:
    channel, _ = setup_org(db)
    bot(db, channel, "message.received", say("Hello"))
    bot(db, channel, "message.received", tag("greeted"))
    customers = [str(1000 + i) for i in range(30)]
    for igsid in customers:
        assert dm(db, channel, igsid=igsid, mid=f"m-{igsid}") == "first_message"
    assert profile_found(db) == len(customers)
    webhooks_sent(db)
    start = threading.Barrier(len(workers))
    failures: list[BaseException] = []
    ticks = itertools.count(T0 + 10_000)
    carried: Counter[int] = Counter()

    def work(number: int, storage: Storage) -> None:
        try:
            start.wait()
            while True:
                with storage.transaction() as tx:
                    report = carry_out_runs(tx, clock=lambda: next(ticks), limit=3)
                if report.runs == 0:
                    return
                carried[number] += report.runs
        except BaseException as exc:  # reported below, with the thread's own traceback
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert carry_out(db) == 0
    assert sum(carried.values()) == 2 * len(customers)
    statuses = rows(db, "SELECT status, COUNT(*) FROM bot_runs GROUP BY status")
    assert statuses == [("done", 2 * len(customers))]
    per_conversation = rows(
        db, "SELECT conversation_id, COUNT(*) FROM outbound_messages GROUP BY conversation_id"
    )
    assert len(per_conversation) == len(customers)
    assert {n for _, n in per_conversation} == {1}
    assert {v.tags for v in conversations(db, channel)} == {("greeted",)}


def test_a_later_run_waits_while_an_earlier_one_of_its_conversation_is_carried_out(
    db: Database,
) -> None:
    if db.storage.dialect == "sqlite":
        pytest.skip("SQLite has one writer at a time: no claim runs beside another")
    channel, _ = setup_org(db)
    first = bot(db, channel, "message.received", tag("first"))
    second = bot(db, channel, "message.received", tag("second"))
    opened(db, channel)
    webhooks_sent(db)
    with db.storage.transaction() as holding:
        [claimed] = holding.claim_bot_runs(10, T0, 0)  # at most one per conversation
        assert claimed.bot_id == first.id
        # Another runner meanwhile: the second run must not overtake the first, whose effects
        # it is to see.
        assert carry_out(db) == 0
    assert carry_out(db) == 2
    assert [r.status for b in (first, second) for r in runs_of(db, b)] == ["done", "done"]


def test_a_run_waits_for_its_webhooks_first_attempt_for_at_most_a_while(db: Database) -> None:
    """Bots act beside the webhook, never before it: a run waits until the opening's webhook
    has had its first attempt, but an endpoint that is never tried (a FIFO webhook stuck
    behind a failing one, a dispatcher down) holds it back for WEBHOOK_FIRST_MS at most."""
    channel, _ = setup_org(db)  # a webhook on conversation.opened
    greeter = bot(db, channel, "conversation.opened", tag("greeted"))
    now = T0 + 1_000
    assert dm(db, channel, ts=now) == "first_message"
    assert profile_found(db) == 1

    def carry_out_at(at: int) -> int:
        return run(db, carry_out_runs, clock=lambda: at, limit=50).runs

    assert carry_out_at(now + 5) == 0  # the webhook has not gone out yet
    assert carry_out_at(now + WEBHOOK_FIRST_MS - 1) == 0
    assert carry_out_at(now + WEBHOOK_FIRST_MS + 1) == 1  # waited long enough
    assert [r.status for r in runs_of(db, greeter)] == ["done"]

    # The usual case: the dispatcher's first attempt (a claim) lets the next run go at once.
    assert dm(db, channel, igsid="222", mid="m-2", ts=now) == "first_message"
    assert profile_found(db) == 1
    assert carry_out_at(now + 5) == 0

    def claim(tx: Transaction) -> None:
        tx._x(  # type: ignore[attr-defined]
            "UPDATE deliveries SET status = 'sending' WHERE status = 'pending'"
        )

    run(db, claim)
    assert carry_out_at(now + 6) == 1
