"""Replies on both backends, below the web: the sender's claim and its at-most-once rule, the
outcomes it records, echoes matched to replies (before and after the Send API's answer), echoes
of the Instagram app, and the conversation's messages in both directions."""

from __future__ import annotations

import random

import pytest
from test_storage_contract import POLICY, T0, setup_org

from convohook.domain.inbound import InboundItem, ItemKind
from convohook.domain.model import Channel, DueReply, OutboundMessage
from convohook.domain.replies import HUMAN_AGENT_WINDOW_MS, STANDARD_WINDOW_MS
from convohook.meta.send import Refused, Sent, TryAgain, Unknown
from convohook.storage.base import Transaction
from convohook.storage.database import Database
from convohook.usecases.conversations import mark_done
from convohook.usecases.errors import Conflict, Invalid, NotFound
from convohook.usecases.processing import ProcessReport, apply_item
from convohook.usecases.replies import (
    LEASE_EXPIRED,
    SentReply,
    claim_replies,
    conversation_messages,
    queue_reply,
    record_replies,
    retry_reply,
)

CUSTOMER = "111"
SCHEDULE = (5.0, 60.0)


def item(kind: ItemKind, mid: str, ts: int, text: str = "hi", igsid: str = CUSTOMER) -> InboundItem:
    return InboundItem(
        account_id="1784", kind=kind, customer_igsid=igsid, timestamp_ms=ts, mid=mid, text=text
    )


def apply(db: Database, channel: Channel, it: InboundItem, now: int) -> str:
    return db.run_sync(lambda tx: apply_item(tx, channel, it, now, POLICY, ProcessReport())).value


def conversation_of(db: Database, channel: Channel, igsid: str = CUSTOMER) -> str:
    def find(tx: Transaction) -> str:
        contact = tx.get_or_create_contact(channel.org_id, channel.id, igsid, T0)
        found = tx.latest_conversation_of(channel.id, contact.id)
        assert found is not None
        return found

    return db.run_sync(find)


def queue(
    db: Database, channel: Channel, conversation: str, text: str, now: int = T0 + 1000
) -> str:
    message = db.run_sync(
        lambda tx: queue_reply(
            tx,
            channel.org_id,
            conversation,
            text=text,
            human_agent=False,
            sent_by="api",
            now_ms=now,
        )
    )
    return message.id


def claim(db: Database, now: int, lease_ms: int = 30_000) -> list[DueReply]:
    return db.run_sync(lambda tx: claim_replies(tx, now, now + lease_ms, 10))[0]


def record(db: Database, due: DueReply, outcome: object, now: int) -> None:
    db.run_sync(
        lambda tx: record_replies(
            tx,
            [SentReply(due, outcome)],  # type: ignore[arg-type]
            now_ms=now,
            schedule=SCHEDULE,
            rng=random.Random(1),
        )
    )


def outbound(db: Database, channel: Channel, conversation: str) -> list[OutboundMessage]:
    rows = db.run_sync(
        lambda tx: conversation_messages(tx, channel.org_id, conversation, None, 100)
    )
    return [r for r in rows if isinstance(r, OutboundMessage)]


@pytest.fixture
def shop(db: Database) -> tuple[Channel, str]:
    channel, _ = setup_org(db)
    apply(db, channel, item(ItemKind.MESSAGE, "m1", T0), T0)
    return channel, conversation_of(db, channel)


def test_a_claim_is_sent_once_and_recorded(db: Database, shop: tuple[Channel, str]) -> None:
    channel, conversation = shop
    reply = queue(db, channel, conversation, "Hello!")
    [due] = claim(db, T0 + 2000)
    assert (due.id, due.text, due.recipient_igsid, due.attempts) == (reply, "Hello!", CUSTOMER, 1)
    assert due.access_token == "tok"
    assert due.account_id == "1784"
    assert claim(db, T0 + 2000) == []  # claimed: nobody else takes it
    record(db, due, Sent("mid-1"), T0 + 2500)
    [out] = outbound(db, channel, conversation)
    assert (out.status, out.mid, out.sent_at_ms, out.error) == ("sent", "mid-1", T0 + 2500, None)
    conv = db.run_sync(lambda tx: tx.get_conversation(channel.org_id, conversation))
    assert conv is not None
    assert conv.last_message_at_ms == T0 + 2500
    assert claim(db, T0 + 10**9) == []


def test_a_claim_whose_worker_died_becomes_unknown_and_is_never_sent_again(
    db: Database, shop: tuple[Channel, str]
) -> None:
    channel, conversation = shop
    queue(db, channel, conversation, "Hello!")
    assert len(claim(db, T0 + 2000, lease_ms=10_000)) == 1
    # The worker is gone: no answer is recorded. Before the lease runs out, nothing happens.
    assert claim(db, T0 + 11_999) == []
    assert outbound(db, channel, conversation)[0].status == "sending"
    assert db.run_sync(lambda tx: claim_replies(tx, T0 + 12_000, T0 + 20_000, 10)) == ([], 1)
    [out] = outbound(db, channel, conversation)
    assert (out.status, out.error) == ("unknown", LEASE_EXPIRED)
    assert claim(db, T0 + 10**9) == []
    # Only a person sends it again.
    db.run_sync(lambda tx: retry_reply(tx, channel.org_id, conversation, out.id, T0 + 13_000))
    [again] = claim(db, T0 + 13_000)
    assert again.id == out.id
    assert again.attempts == 1


def test_retryable_answers_go_back_on_the_schedule_then_fail(
    db: Database, shop: tuple[Channel, str]
) -> None:
    channel, conversation = shop
    queue(db, channel, conversation, "Hello!")
    [due] = claim(db, T0 + 2000)
    record(db, due, TryAgain("(#4) Application request limit reached", 429), T0 + 2000)
    [out] = outbound(db, channel, conversation)
    assert out.status == "queued"
    assert out.error is not None
    assert "limit" in out.error
    assert out.next_attempt_at_ms is not None
    assert T0 + 2000 + 4000 <= out.next_attempt_at_ms <= T0 + 2000 + 6000  # 5 s ± jitter
    assert claim(db, out.next_attempt_at_ms - 1) == []
    [due] = claim(db, out.next_attempt_at_ms)
    assert due.attempts == 2
    record(db, due, TryAgain("Graph API unreachable"), T0 + 10_000)
    [due] = claim(db, T0 + 200_000)
    assert due.attempts == 3
    record(db, due, TryAgain("An unexpected error has occurred", 500), T0 + 200_000)
    [out] = outbound(db, channel, conversation)
    assert out.status == "failed"
    assert out.error == "gave up after 3 attempts: An unexpected error has occurred"


def test_refusals_fail_and_timeouts_are_unknown(db: Database, shop: tuple[Channel, str]) -> None:
    channel, conversation = shop
    queue(db, channel, conversation, "one")
    queue(db, channel, conversation, "two", now=T0 + 1001)
    first, second = claim(db, T0 + 2000)
    record(db, first, Refused("This message is sent outside of allowed window. (HTTP 400)"), T0)
    record(db, second, Unknown("no answer within 5 s"), T0)
    one, two = outbound(db, channel, conversation)
    assert (one.status, one.error) == (
        "failed",
        "This message is sent outside of allowed window. (HTTP 400)",
    )
    assert (two.status, two.error) == ("unknown", "no answer within 5 s")
    assert claim(db, T0 + 10**9) == []
    # A retry is for failed and unknown replies only.
    db.run_sync(lambda tx: retry_reply(tx, channel.org_id, conversation, one.id, T0 + 3000))
    [due] = claim(db, T0 + 3000)
    record(db, due, Sent("mid-one"), T0 + 3000)
    with pytest.raises(Conflict):
        db.run_sync(lambda tx: retry_reply(tx, channel.org_id, conversation, one.id, T0 + 4000))
    with pytest.raises(NotFound):
        db.run_sync(lambda tx: retry_reply(tx, channel.org_id, conversation, "out_nope", T0))


def test_a_late_answer_still_lands_on_a_reply_turned_unknown(
    db: Database, shop: tuple[Channel, str]
) -> None:
    channel, conversation = shop
    queue(db, channel, conversation, "Hello!")
    [due] = claim(db, T0 + 2000, lease_ms=1000)
    db.run_sync(lambda tx: claim_replies(tx, T0 + 3000, T0 + 4000, 10))  # lease ran out
    assert outbound(db, channel, conversation)[0].status == "unknown"
    record(db, due, Sent("mid-late"), T0 + 3500)
    [out] = outbound(db, channel, conversation)
    assert (out.status, out.mid) == ("sent", "mid-late")


def test_the_window_and_the_size_are_checked_before_queueing(
    db: Database, shop: tuple[Channel, str]
) -> None:
    channel, conversation = shop

    def reply(text: str, now: int, human_agent: bool = False) -> OutboundMessage:
        return db.run_sync(
            lambda tx: queue_reply(
                tx,
                channel.org_id,
                conversation,
                text=text,
                human_agent=human_agent,
                sent_by="api",
                now_ms=now,
            )
        )

    with pytest.raises(Invalid, match="at most 1000"):
        reply("é" * 501, T0 + 1000)
    with pytest.raises(Invalid, match="empty"):
        reply("  \n", T0 + 1000)
    assert reply("a" * 1000, T0 + 1000).status == "queued"
    with pytest.raises(Invalid) as refused:
        reply("late", T0 + STANDARD_WINDOW_MS)
    assert refused.value.field == "human_agent"
    assert reply("late", T0 + STANDARD_WINDOW_MS, human_agent=True).human_agent
    with pytest.raises(Invalid, match="7 days"):
        reply("too late", T0 + HUMAN_AGENT_WINDOW_MS, human_agent=True)
    # An echo (the business writing) does not reopen the window; the customer writing does.
    apply(db, channel, item(ItemKind.ECHO, "e9", T0 + HUMAN_AGENT_WINDOW_MS), T0)
    with pytest.raises(Invalid):
        reply("still too late", T0 + HUMAN_AGENT_WINDOW_MS + 1, human_agent=True)
    apply(db, channel, item(ItemKind.MESSAGE, "m9", T0 + HUMAN_AGENT_WINDOW_MS), T0)
    assert reply("welcome back", T0 + HUMAN_AGENT_WINDOW_MS + 1).status == "queued"


def test_the_echo_of_a_reply_is_matched_after_the_answer(
    db: Database, shop: tuple[Channel, str]
) -> None:
    channel, conversation = shop
    queue(db, channel, conversation, "Hello!")
    [due] = claim(db, T0 + 2000)
    record(db, due, Sent("mid-1"), T0 + 2100)
    for _ in range(2):  # Meta redelivers too
        assert apply(db, channel, item(ItemKind.ECHO, "mid-1", T0 + 2050, "Hello!"), T0) == "ignore"
    [out] = outbound(db, channel, conversation)
    assert (out.status, out.mid, out.sent_by) == ("sent", "mid-1", "api")


def test_the_echo_of_a_reply_is_matched_before_the_answer(
    db: Database, shop: tuple[Channel, str]
) -> None:
    channel, conversation = shop
    queue(db, channel, conversation, "Hello!")
    [due] = claim(db, T0 + 2000)
    apply(db, channel, item(ItemKind.ECHO, "mid-1", T0 + 2050, "Hello!"), T0)
    [out] = outbound(db, channel, conversation)
    assert (out.id, out.status, out.mid) == (due.id, "sent", "mid-1")
    record(db, due, Sent("mid-1"), T0 + 2100)
    [out] = outbound(db, channel, conversation)
    assert (out.id, out.status, out.mid) == (due.id, "sent", "mid-1")


def test_an_echo_kept_as_the_apps_is_replaced_by_the_reply_with_its_mid(
    db: Database, shop: tuple[Channel, str]
) -> None:
    channel, conversation = shop
    queue(db, channel, conversation, "Hello!")
    [due] = claim(db, T0 + 2000)
    # Its echo came with other words than the reply (Meta normalised them, say): kept as the
    # app's, until the answer names the same mid.
    apply(db, channel, item(ItemKind.ECHO, "mid-1", T0 + 2050, "Hello !"), T0)
    assert [o.sent_by for o in outbound(db, channel, conversation)] == ["api", "instagram_app"]
    record(db, due, Sent("mid-1"), T0 + 2100)
    [out] = outbound(db, channel, conversation)
    assert (out.id, out.status, out.mid, out.sent_by) == (due.id, "sent", "mid-1", "api")


def test_a_timeout_followed_by_the_echo_is_sent(db: Database, shop: tuple[Channel, str]) -> None:
    channel, conversation = shop
    queue(db, channel, conversation, "Hello!")
    [due] = claim(db, T0 + 2000)
    record(db, due, Unknown("no answer within 5 s"), T0 + 7000)
    apply(db, channel, item(ItemKind.ECHO, "mid-1", T0 + 2050, "Hello!"), T0 + 8000)
    [out] = outbound(db, channel, conversation)
    assert (out.status, out.mid, out.error) == ("sent", "mid-1", None)


def test_echoes_of_the_instagram_app_are_stored_and_open_nothing(db: Database) -> None:
    channel, _ = setup_org(db)
    # A customer the business wrote to first: no conversation, none opened.
    apply(db, channel, item(ItemKind.ECHO, "e1", T0, "We have news", igsid="222"), T0)
    conversations = db.run_sync(
        lambda tx: tx.list_conversations(
            channel.org_id, status=None, channel_id=None, contact_id=None, before=None, limit=10
        )
    )
    assert conversations == []
    apply(db, channel, item(ItemKind.MESSAGE, "m1", T0 + 10), T0 + 10)
    conversation = conversation_of(db, channel)
    apply(db, channel, item(ItemKind.ECHO, "e2", T0 + 20, "Typed in the app"), T0 + 20)
    apply(db, channel, item(ItemKind.ECHO, "e2", T0 + 20, "Typed in the app"), T0 + 30)  # again
    rows = db.run_sync(lambda tx: conversation_messages(tx, channel.org_id, conversation, None, 10))
    assert [(type(r).__name__, r.text) for r in rows] == [
        ("Message", "hi"),
        ("OutboundMessage", "Typed in the app"),
    ]
    [out] = [r for r in rows if isinstance(r, OutboundMessage)]
    assert (out.status, out.sent_by, out.mid, out.created_at_ms) == (
        "sent",
        "instagram_app",
        "e2",
        T0 + 20,
    )
    # Marked done, an echo does not reopen it (only the customer writing does).
    db.run_sync(lambda tx: mark_done(tx, channel.org_id, conversation, clock=lambda: T0 + 40))
    apply(db, channel, item(ItemKind.ECHO, "e3", T0 + 50, "Thanks!"), T0 + 50)
    conv = db.run_sync(lambda tx: tx.get_conversation(channel.org_id, conversation))
    assert conv is not None
    assert conv.status == "done"
    assert len(outbound(db, channel, conversation)) == 2


def test_both_directions_in_order_with_a_cursor(db: Database, shop: tuple[Channel, str]) -> None:
    channel, conversation = shop
    queue(db, channel, conversation, "out-1", now=T0 + 10)
    apply(db, channel, item(ItemKind.MESSAGE, "m2", T0 + 20, "in-2"), T0 + 20)
    queue(db, channel, conversation, "out-3", now=T0 + 30)
    apply(db, channel, item(ItemKind.ECHO, "e4", T0 + 40, "out-4"), T0 + 40)

    def page(after: tuple[int, str] | None) -> list[str]:
        rows = db.run_sync(
            lambda tx: conversation_messages(tx, channel.org_id, conversation, after, 2)
        )
        return [r.text or "" for r in rows]

    rows = db.run_sync(lambda tx: conversation_messages(tx, channel.org_id, conversation, None, 10))
    assert [r.text for r in rows] == ["hi", "out-1", "in-2", "out-3", "out-4"]
    assert page(None) == ["hi", "out-1"]
    second = rows[1]
    assert isinstance(second, OutboundMessage)
    assert page((second.created_at_ms, second.id)) == ["in-2", "out-3"]
    with pytest.raises(NotFound):
        db.run_sync(lambda tx: conversation_messages(tx, "org_other", conversation, None, 10))
