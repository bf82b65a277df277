"""The storage contract: every backend must pass this suite unchanged."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest

from convohook.delivery.result import AttemptResult
from convohook.domain.inbound import InboundItem, ItemKind
from convohook.domain.model import Bot, Channel, Conversation, Delivery, DueDelivery, Webhook
from convohook.domain.payload import CustomerProfile
from convohook.meta import notifications as n
from convohook.storage.base import Transaction
from convohook.storage.database import Database
from convohook.storage.errors import ConflictError
from convohook.usecases.conversations import mark_done
from convohook.usecases.delivery import (
    Claimed,
    Recorded,
    SentAttempt,
    claim_deliveries,
    claim_due_deliveries,
    ready_and_claimed,
    record_attempts,
    retry_now,
)
from convohook.usecases.orgs import create_org, org_for_api_key
from convohook.usecases.processing import (
    ProcessingPolicy,
    ProcessReport,
    apply_item,
    process_pending,
    store_notifications,
)
from convohook.usecases.profiles import ProfileResult, apply_profile_results
from convohook.usecases.retention import clean_once
from convohook.usecases.webhooks import get_webhook, recover, rotate_secret

T0 = 1_700_000_000_000
POLICY = ProcessingPolicy(profile_deadline_ms=60_000, profile_ttl_ms=86_400_000)


def setup_org(
    db: Database, *, events: tuple[str, ...] = ("conversation.opened",)
) -> tuple[Channel, Webhook]:
    def run(tx: Transaction) -> tuple[Channel, Webhook]:
        org = create_org(tx, "Acme", T0).org
        channel = Channel("ch_1", org.id, "INSTAGRAM", "acme_store", "1784", "tok", T0)
        tx.insert_channel(channel)
        webhook = Webhook(
            "wh_1",
            org.id,
            "crm",
            "https://example.com/h",
            "INSTAGRAM",
            (channel.id,),
            events,
            True,
            None,
            "whsec_" + "A" * 43,
            T0,
            T0,
        )
        tx.insert_webhook(webhook)
        return channel, webhook

    return db.run_sync(run)


def msg(
    igsid: str = "111", mid: str = "m1", ts: int = T0, kind: ItemKind = ItemKind.MESSAGE
) -> InboundItem:
    return InboundItem(
        account_id="1784", kind=kind, customer_igsid=igsid, timestamp_ms=ts, mid=mid, text="hi"
    )


def apply(db: Database, channel: Channel, item: InboundItem, now: int = T0) -> str:
    return db.run_sync(lambda tx: apply_item(tx, channel, item, now, POLICY, ProcessReport())).value


def count(db: Database, sql: str) -> int:
    storage = db.storage
    with storage.transaction() as tx:
        return int(tx._x(sql).fetchone()[0])  # type: ignore[attr-defined]


def test_api_key_is_stored_hashed_and_authenticates(db: Database) -> None:
    created = db.run_sync(create_org, "Acme", T0)
    assert db.run_sync(org_for_api_key, created.api_key) == created.org
    assert db.run_sync(org_for_api_key, created.api_key + "x") is None
    assert count(db, f"SELECT count(*) FROM api_keys WHERE key_hash = '{created.api_key}'") == 0


def test_one_open_conversation_is_enforced_by_the_database(db: Database) -> None:
    channel, _ = setup_org(db)

    def two_open(tx: Transaction) -> None:
        contact = tx.get_or_create_contact(channel.org_id, channel.id, "111", T0)
        tx.insert_conversation(
            "conv_a", channel.org_id, channel.id, contact.id, "first_message", T0
        )
        tx.insert_conversation(
            "conv_b", channel.org_id, channel.id, contact.id, "first_message", T0
        )

    with pytest.raises(ConflictError):
        db.run_sync(two_open)


def test_channel_account_is_unique(db: Database) -> None:
    channel, _ = setup_org(db)
    with pytest.raises(ConflictError):
        db.run_sync(
            lambda tx: tx.insert_channel(
                Channel("ch_2", channel.org_id, "INSTAGRAM", "x", "1784", "t", T0)
            )
        )


def test_first_message_opens_once_and_creates_a_delivery(db: Database) -> None:
    channel, _ = setup_org(db)
    assert apply(db, channel, msg(mid="m1")) == "first_message"
    assert apply(db, channel, msg(mid="m2", ts=T0 + 1)) == "continue"
    assert apply(db, channel, msg(mid="m1")) == "ignore"  # duplicate mid
    assert count(db, "SELECT count(*) FROM conversations") == 1
    assert count(db, "SELECT count(*) FROM deliveries") == 1


def test_echo_and_reactions_do_not_open(db: Database) -> None:
    channel, _ = setup_org(db)
    assert apply(db, channel, msg(kind=ItemKind.ECHO, mid="e1")) == "ignore"
    assert apply(db, channel, msg(kind=ItemKind.REACTION, mid="e1")) == "ignore"
    assert count(db, "SELECT count(*) FROM conversations") == 0


def test_done_then_late_message_then_new_message(db: Database) -> None:
    channel, _ = setup_org(db, events=("conversation.opened", "conversation.closed"))
    apply(db, channel, msg(mid="m1", ts=T0))
    conv = db.run_sync(
        lambda tx: tx.list_conversations(
            channel.org_id, status="open", channel_id=None, contact_id=None, before=None, limit=5
        )
    )[0]
    done = db.run_sync(mark_done, channel.org_id, conv.id, clock=lambda: T0 + 10_000)
    assert done is not None
    assert done.status == "done"
    # marking again changes nothing and fires nothing
    db.run_sync(mark_done, channel.org_id, conv.id, clock=lambda: T0 + 20_000)
    assert count(db, "SELECT count(*) FROM events WHERE type = 'conversation.closed'") == 1
    assert apply(db, channel, msg(mid="m-late", ts=T0 + 5_000), now=T0 + 30_000) == "late"
    assert apply(db, channel, msg(mid="m3", ts=T0 + 40_000), now=T0 + 40_000) == "reopened"
    contacts = count(db, "SELECT count(DISTINCT contact_id) FROM conversations")
    assert contacts == 1
    assert count(db, "SELECT count(*) FROM events WHERE type = 'conversation.opened'") == 2


def _only_conversation(db: Database, channel: Channel) -> Conversation:
    [conversation] = db.run_sync(
        lambda tx: tx.list_conversations(
            channel.org_id, status=None, channel_id=None, contact_id=None, before=None, limit=5
        )
    )
    return conversation


def test_the_last_message_time_is_metas_and_only_moves_forward(db: Database) -> None:
    channel, _ = setup_org(db)
    apply(db, channel, msg(mid="m1", ts=T0 - 60_000), now=T0)  # written a minute before
    assert _only_conversation(db, channel).last_message_at_ms == T0 - 60_000
    apply(db, channel, msg(mid="m2", ts=T0 + 5_000), now=T0 + 6_000)
    apply(db, channel, msg(mid="m0", ts=T0 - 90_000), now=T0 + 7_000)  # delivered late
    apply(db, channel, msg(mid="m2", ts=T0 + 5_000), now=T0 + 8_000)  # delivered again
    apply(db, channel, msg(kind=ItemKind.REACTION, mid="r1", ts=T0 + 9_000), now=T0 + 9_000)
    conversation = _only_conversation(db, channel)
    assert conversation.last_message_at_ms == T0 + 5_000
    assert (conversation.assignee_id, conversation.tags, conversation.closed_reason) == (
        None,
        (),
        None,
    )


def test_a_close_says_why(db: Database) -> None:
    channel, _ = setup_org(db)
    apply(db, channel, msg(mid="m1"))
    conversation = _only_conversation(db, channel)
    done = db.run_sync(mark_done, channel.org_id, conversation.id, clock=lambda: T0 + 1)
    assert (done.status, done.closed_reason) == ("done", "manual")
    apply(db, channel, msg(mid="m2", ts=T0 + 10), now=T0 + 10)  # reopens: a new conversation
    reopened = db.run_sync(
        lambda tx: tx.list_conversations(
            channel.org_id, status="open", channel_id=None, contact_id=None, before=None, limit=5
        )
    )[0]
    closed = db.run_sync(
        mark_done, channel.org_id, reopened.id, clock=lambda: T0 + 20, reason="inactivity"
    )
    assert (closed.closed_reason, closed.last_message_at_ms) == ("inactivity", T0 + 10)


def test_process_pending_applies_stored_notifications(db: Database) -> None:
    _channel, _ = setup_org(db)
    body = n.encode(
        n.notification(
            [
                n.entry(
                    "1784",
                    [
                        n.text_message("111", "1784", "a", T0, "hi"),
                        n.text_message("222", "1784", "b", T0, "yo"),
                    ],
                ),
                n.entry("9999", [n.text_message("333", "9999", "c", T0, "?")]),
            ]
        )
    )
    db.run_sync(lambda tx: tx.insert_notification(body, T0))
    db.run_sync(lambda tx: tx.insert_notification(body, T0))  # Meta redelivers
    report = db.run_sync(process_pending, now_ms=T0, limit=10, policy=POLICY)
    assert report.notifications == 2
    assert report.openings == 2
    assert report.duplicates == 2
    assert report.unknown_accounts == {"9999"}
    assert report.awaiting_profile == 2
    assert db.run_sync(lambda tx: tx.pending_notifications(10)) == []


def test_a_batch_reports_which_of_its_deliveries_are_due_now(db: Database) -> None:
    """The processor wakes the dispatcher for deliveries it can send, not for those waiting
    for a profile (it found none, and ran an empty round per opening)."""
    channel, _ = setup_org(db)

    def process(*items: tuple[str, str, int]) -> ProcessReport:
        messages = [n.text_message(igsid, "1784", mid, ts, "hi") for igsid, mid, ts in items]
        body = n.encode(n.notification([n.entry("1784", messages)]))
        db.run_sync(lambda tx: tx.insert_notification(body, T0))
        return db.run_sync(process_pending, now_ms=T0 + 20_000, limit=10, policy=POLICY)

    first = process(("111", "a", T0))
    assert (first.deliveries, first.deliveries_ready) == (1, 0)
    [waiting] = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 10))
    db.run_sync(apply_profile_results, [ProfileResult(waiting, CustomerProfile("jane", "J"))], T0)
    [conv] = db.run_sync(
        lambda tx: tx.list_conversations(
            channel.org_id, status="open", channel_id=None, contact_id=None, before=None, limit=5
        )
    )
    db.run_sync(mark_done, channel.org_id, conv.id, clock=lambda: T0 + 10_000)
    # Jane again (her profile is fresh: due at once) and a new customer (waits for his).
    again = process(("111", "b", T0 + 15_000), ("222", "c", T0))
    assert (again.openings, again.deliveries, again.deliveries_ready) == (2, 2, 1)


def test_deliveries_wait_for_the_profile_then_are_claimed_once(db: Database) -> None:
    channel, _ = setup_org(db)
    apply(db, channel, msg())
    assert db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 60_000, 10)) == []
    waiting = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 10))
    assert len(waiting) == 1
    ready = db.run_sync(
        apply_profile_results, [ProfileResult(waiting[0], CustomerProfile("jane", "Jane"))], T0
    )
    assert ready == 1
    claimed = db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 60_000, 10))
    assert len(claimed) == 1
    body = orjson.loads(claimed[0].payload)
    assert body["from"] == "jane"
    assert body["to"] == "acme_store"
    # claimed under a lease: nobody else gets it until the lease expires
    assert db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 1, T0 + 60_000, 10)) == []
    again = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 60_000, T0 + 120_000, 10))
    assert [d.id for d in again] == [claimed[0].id]


def test_a_delivery_waiting_for_its_profile_is_scheduled_when_the_body_is_built(
    db: Database,
) -> None:
    """Not due before (`next_attempt_at` null): claims and the next due time never walk
    through what waits for a profile. Due at once after."""
    channel, webhook = setup_org(db)
    apply(db, channel, msg())

    def the_delivery() -> Delivery:
        [d] = db.run_sync(lambda tx: tx.list_deliveries(channel.org_id, webhook.id, None, 10))
        return d

    assert (the_delivery().status, the_delivery().next_attempt_at_ms) == ("pending", None)
    assert db.run_sync(lambda tx: tx.next_due_at()) is None
    assert count(db, "SELECT count(*) FROM deliveries WHERE next_attempt_at_ms IS NULL") == 1
    [waiting] = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 10))
    profile = ProfileResult(waiting, CustomerProfile("jane", "Jane"))
    assert db.run_sync(apply_profile_results, [profile], T0 + 5_000) == 1
    assert the_delivery().next_attempt_at_ms == T0 + 5_000
    assert db.run_sync(lambda tx: tx.next_due_at()) == T0 + 5_000
    [claimed] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 5_000, T0 + 60_000, 10))
    assert claimed.id == the_delivery().id


def test_a_claim_that_drains_the_due_says_when_the_next_one_is(db: Database) -> None:
    """The dispatcher's round is one transaction: the claim, and what to wait for after it."""
    channel, _ = setup_org(db)
    for igsid in ("111", "222"):
        apply(db, channel, msg(igsid=igsid, mid=igsid))
    waiting = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 10))
    results = [ProfileResult(w, CustomerProfile(w.contact.igsid, None)) for w in waiting]
    db.run_sync(apply_profile_results, results, T0)
    first = db.run_sync(claim_deliveries, T0, T0 + 60_000, 1).get()
    assert (len(first.due), first.drained, first.next_due_at_ms) == (1, False, None)
    second = db.run_sync(claim_deliveries, T0, T0 + 30_000, 10).get()
    # Nothing else is due: the next thing is the second claim's lease running out.
    assert (len(second.due), second.drained, second.next_due_at_ms) == (1, True, T0 + 30_000)
    last = db.run_sync(claim_deliveries, T0 + 1, T0 + 90_000, 10).get()
    assert last == Claimed([], True, T0 + 30_000)


def test_a_claim_takes_no_more_than_its_limit_expired_leases_included(db: Database) -> None:
    """Due and expired together beyond the limit: the claim takes `limit` of them, and the
    rest stay due for the next claim, not held under a lease nobody sends them for."""
    channel, _ = setup_org(db)
    for igsid in ("111", "222", "333", "444"):
        apply(db, channel, msg(igsid=igsid, mid=igsid))
    waiting = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 10))
    results = [ProfileResult(w, CustomerProfile(w.contact.igsid, None)) for w in waiting]
    db.run_sync(apply_profile_results, results, T0)
    first = db.run_sync(claim_deliveries, T0, T0 + 1_000, 2).get()
    # At T0 + 1 s two are due and two have leases that ran out.
    second = db.run_sync(claim_deliveries, T0 + 1_000, T0 + 60_000, 2).get()
    rest = db.run_sync(claim_deliveries, T0 + 1_000, T0 + 60_000, 10).get()
    assert (len(first.due), len(second.due), len(rest.due)) == (2, 2, 2)
    assert (second.drained, rest.drained, rest.next_due_at_ms) == (False, True, T0 + 60_000)
    claimed = [d.id for d in (*second.due, *rest.due)]
    assert sorted(claimed) == sorted({*claimed})


def test_what_a_lookup_makes_ready_is_claimed_in_the_same_transaction(db: Database) -> None:
    channel, _ = setup_org(db)
    apply(db, channel, msg(igsid="111", mid="a"))
    [waiting] = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 10))
    results = [ProfileResult(waiting, CustomerProfile("jane", None))]

    def record(tx: Transaction) -> int:
        return apply_profile_results(tx, results, T0)

    ready, at_commit = db.run_sync(
        ready_and_claimed, record, now_ms=T0, lease_until_ms=T0 + 30_000, limit=10
    )
    assert ready == 1
    assert at_commit is not None
    claimed = at_commit.get()
    [due] = claimed.due
    assert orjson.loads(due.payload)["from"] == "jane"
    assert (claimed.drained, claimed.next_due_at_ms) == (True, T0 + 30_000)
    assert db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 60_000, 10)) == []
    # Nothing made ready (or no room at the dispatcher): nothing claimed.
    assert db.run_sync(
        ready_and_claimed, lambda tx: 0, now_ms=T0, lease_until_ms=T0 + 1, limit=10
    ) == (0, None)


def test_lookups_recorded_together_each_fill_their_own_contacts_events(db: Database) -> None:
    channel, _ = setup_org(db)
    apply(db, channel, msg(igsid="111", mid="a"))
    apply(db, channel, msg(igsid="222", mid="b"))
    apply(db, channel, msg(igsid="333", mid="c"))
    waiting = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 10))
    names = {"111": "jane", "222": "joe", "333": "ann"}
    results = [
        ProfileResult(w, CustomerProfile(names[w.contact.igsid], None))
        for w in waiting
        if w.contact.igsid != "333"
    ]
    # The same lookup twice in one batch fills its events once.
    results.append(results[0])
    assert db.run_sync(apply_profile_results, results, T0 + 1) == 2
    claimed = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 1, T0 + 60_000, 10))
    conversations = {
        c.id: c.contact.igsid
        for c in db.run_sync(
            lambda tx: tx.list_conversations(
                channel.org_id, status=None, channel_id=None, contact_id=None, before=None, limit=9
            )
        )
    }
    sent = {conversations[str(d.conversation_id)]: orjson.loads(d.payload)["from"] for d in claimed}
    assert sent == {"111": "jane", "222": "joe"}  # 333's still waits for its own lookup


def test_an_opening_can_be_claimed_for_its_profile_by_the_processor_itself(
    db: Database,
) -> None:
    channel, _ = setup_org(db)
    policy = replace(POLICY, profile_lease_ms=10_000)
    report = ProcessReport()
    db.run_sync(lambda tx: apply_item(tx, channel, msg(), T0, policy, report))
    [handed] = report.awaiting.values()
    assert (handed.contact.igsid, handed.channel_handle, handed.access_token) == (
        "111",
        "acme_store",
        "tok",
    )
    assert handed.deadline_ms == T0 + POLICY.profile_deadline_ms
    # Claimed in the processing transaction: no other lookup takes it until the lease ends.
    assert db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0 + 9_999, T0 + 20_000, 10)) == []
    ready = db.run_sync(
        apply_profile_results, [ProfileResult(handed, CustomerProfile("jane", "Jane"))], T0 + 5
    )
    assert ready == 1
    assert len(db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 5, T0 + 60_000, 10))) == 1


def test_an_unfinished_handoff_is_taken_over_when_its_lease_ends(db: Database) -> None:
    channel, _ = setup_org(db)
    policy = replace(POLICY, profile_lease_ms=10_000)
    db.run_sync(lambda tx: apply_item(tx, channel, msg(), T0, policy, ProcessReport()))
    [waiting] = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0 + 10_000, T0 + 20_000, 10))
    assert waiting.contact.igsid == "111"


def test_profile_failure_retries_until_deadline_then_sends_best_known(db: Database) -> None:
    channel, _ = setup_org(db)
    apply(db, channel, msg(igsid="555"))
    waiting = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 10))[0]
    assert (
        db.run_sync(apply_profile_results, [ProfileResult(waiting, None, retryable=True)], T0) == 0
    )
    assert (
        db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 10)) == []
    )  # postponed
    later = T0 + 61_000
    waiting = db.run_sync(lambda tx: tx.claim_awaiting_profiles(later, later + 10_000, 10))[0]
    assert (
        db.run_sync(apply_profile_results, [ProfileResult(waiting, None, retryable=True)], later)
        == 1
    )
    claimed = db.run_sync(lambda tx: tx.claim_due_deliveries(later, later + 1, 10))
    body = orjson.loads(claimed[0].payload)
    assert body["from"] == "555"
    assert body["customerName"] == "555"


def test_disabled_webhook_deliveries_wait(db: Database) -> None:
    channel, webhook = setup_org(db)
    db.run_sync(lambda tx: tx.get_or_create_contact(channel.org_id, channel.id, "111", T0))
    db.run_sync(
        lambda tx: tx.set_contact_profile(
            tx.get_or_create_contact(channel.org_id, channel.id, "111", T0).id,
            "jane",
            None,
            "ok",
            T0,
        )
    )
    apply(db, channel, msg())
    db.run_sync(lambda tx: tx.disable_webhook(webhook.id, "410 Gone", T0))
    assert db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 1, 10)) == []


@pytest.mark.parametrize("keep_queue", [False, True])
def test_openings_while_disabled_queue_only_for_a_webhook_disabled_for_failing(
    db: Database, keep_queue: bool
) -> None:
    """Disabled by its owner or by a 410, a webhook gets nothing; disabled for failing too long
    (the endpoint is down, not refusing), it gets every new opening, which waits for it."""
    channel, webhook = setup_org(db)

    def known(tx: Transaction) -> None:
        for igsid in ("111", "222"):
            contact = tx.get_or_create_contact(channel.org_id, channel.id, igsid, T0)
            tx.set_contact_profile(contact.id, f"user{igsid}", None, "ok", T0)

    db.run_sync(known)
    db.run_sync(lambda tx: tx.disable_webhook(webhook.id, "off", T0, keep_queue=keep_queue))
    apply(db, channel, msg("222", "m2"))
    waiting = count(db, "SELECT count(*) FROM deliveries")
    assert waiting == (1 if keep_queue else 0)
    assert db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 1, 10)) == []

    def enable(tx: Transaction) -> None:
        current = tx.get_webhook(webhook.org_id, webhook.id)
        assert current is not None
        assert current.queue_while_disabled is keep_queue
        tx.update_webhook(
            replace(current, enabled=True, disabled_reason=None, queue_while_disabled=False)
        )

    db.run_sync(enable)
    assert len(db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 1, 10))) == waiting


def test_many_customers_random_order(db: Database) -> None:
    channel, _ = setup_org(db)
    items = [msg(igsid=str(c), mid=f"{c}-{k}", ts=T0 + k) for c in range(30) for k in range(3)]
    items += items[:20]  # duplicates
    random.Random(7).shuffle(items)
    for item in items:
        apply(db, channel, item)
    assert count(db, "SELECT count(*) FROM conversations") == 30
    assert count(db, "SELECT count(*) FROM events") == 30


def _delivery(tx: Transaction, org_id: str, delivery_id: str) -> Delivery:
    delivery = tx.get_delivery(org_id, delivery_id)
    assert delivery is not None
    return delivery


def _ready_delivery(db: Database) -> tuple[Channel, Webhook]:
    channel, webhook = setup_org(db)

    def known_profile(tx: Transaction) -> None:
        contact = tx.get_or_create_contact(channel.org_id, channel.id, "111", T0)
        tx.set_contact_profile(contact.id, "jane", None, "ok", T0)

    db.run_sync(known_profile)
    apply(db, channel, msg())
    return channel, webhook


def test_attempts_follow_the_schedule_then_fail(db: Database) -> None:
    channel, _ = _ready_delivery(db)
    failure = AttemptResult(500, "boom", 3.0, "HTTP 500", "http")
    now = T0
    statuses = []
    recorded = []
    for _ in range(3):
        [due] = db.run_sync(claim_due_deliveries, now, now + 1_000, 10)
        recorded.append(
            db.run_sync(
                record_attempts,
                [SentAttempt(due, failure, now)],
                now_ms=now,
                schedule=(1.0, 1.0),
                rng=random.Random(1),
            )
        )
        delivery = db.run_sync(_delivery, channel.org_id, due.id)
        statuses.append(delivery.status)
        now += 2_000  # past the retry (1 s ±20%)
    assert statuses == ["pending", "pending", "failed"]
    assert recorded == [Recorded(retries=1), Recorded(retries=1), Recorded(failed=1)]
    assert delivery.attempt_count == 3
    assert [a.status_code for a in delivery.attempts] == [500, 500, 500]
    assert delivery.last_error is not None
    assert "gave up after 3 attempts" in delivery.last_error
    assert db.run_sync(lambda tx: tx.claim_due_deliveries(now, now + 1, 10)) == []
    # a manual retry sends it again
    db.run_sync(retry_now, channel.org_id, delivery.id, now)
    assert len(db.run_sync(lambda tx: tx.claim_due_deliveries(now, now + 1, 10))) == 1


def test_gone_disables_the_webhook(db: Database) -> None:
    channel, webhook = _ready_delivery(db)
    [due] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 1_000, 10))
    gone = AttemptResult(410, "", 1.0, "HTTP 410", "http")
    recorded = db.run_sync(
        record_attempts,
        [SentAttempt(due, gone, T0)],
        now_ms=T0,
        schedule=(1.0,),
        rng=random.Random(1),
    )
    current = db.run_sync(lambda tx: tx.get_webhook(channel.org_id, webhook.id))
    assert current is not None
    assert current.enabled is False
    assert "410" in (current.disabled_reason or "")
    assert recorded == Recorded(failed=1, webhooks_disabled=1)


async def test_parallel_workers_open_one_conversation_per_customer(db: Database) -> None:
    setup_org(db)
    for k in range(40):
        body = n.encode(
            n.notification(
                [n.entry("1784", [n.text_message("777", "1784", f"p{k}", T0 + k, "hi")])]
            )
        )
        db.run_sync(store_notifications, [body], T0)

    async def worker() -> int:
        handled = 0
        while True:
            report = await db.run_retrying(process_pending, now_ms=T0, limit=3, policy=POLICY)
            if report.notifications == 0:
                return handled
            handled += report.notifications

    import asyncio

    handled = await asyncio.gather(*(worker() for _ in range(4)))
    assert sum(handled) == 40  # every notification processed exactly once
    assert count(db, "SELECT count(*) FROM conversations") == 1
    assert count(db, "SELECT count(*) FROM events") == 1
    assert count(db, "SELECT count(*) FROM messages") == 40


def test_profile_lookups_are_claimed_so_workers_share_them(db: Database) -> None:
    channel, _ = setup_org(db)
    for c in range(5):
        apply(db, channel, msg(igsid=f"80{c}", mid=f"pl{c}"))
    first = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 3))
    second = db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0, T0 + 10_000, 10))
    assert len(first) == 3
    assert len(second) == 2
    assert {w.contact.id for w in first}.isdisjoint({w.contact.id for w in second})
    assert db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0 + 1, T0 + 10_000, 10)) == []
    # a worker that died: its claims come back when the lease runs out
    assert (
        len(db.run_sync(lambda tx: tx.claim_awaiting_profiles(T0 + 10_000, T0 + 20_000, 10))) == 5
    )


# --- delivery engine (issue 4), with a controllable clock -----------------------------------

DAY = 86_400_000


def _fail_once(db: Database, now: int, *, disable_after_ms: int = 5 * DAY) -> str:
    [due] = db.run_sync(lambda tx: tx.claim_due_deliveries(now, now + 1_000, 10))
    failure = AttemptResult(None, "", 10.0, "connection refused", "connect")
    db.run_sync(
        record_attempts,
        [SentAttempt(due, failure, now)],
        now_ms=now,
        schedule=(3_600.0,) * 100,
        rng=random.Random(1),
        disable_after_ms=disable_after_ms,
    )
    return due.id


def test_a_webhook_failing_for_five_days_is_disabled_and_recovered(db: Database) -> None:
    channel, webhook = _ready_delivery(db)
    now = T0
    while True:
        delivery_id = _fail_once(db, now)
        current = db.run_sync(lambda tx: tx.get_webhook(channel.org_id, webhook.id))
        assert current is not None
        if not current.enabled:
            break
        assert now - T0 < 5 * DAY + 2 * 3_600_000, "not disabled after five days"
        now += 3_600_000 * 2  # the next retry is due (1 h ±20%)
    assert now - T0 >= 5 * DAY
    assert "failed for 5 days" in (current.disabled_reason or "")
    # Deliveries of a disabled webhook wait.
    assert db.run_sync(lambda tx: tx.claim_due_deliveries(now + DAY, now + DAY, 10)) == []
    # Re-enable, and recover what failed meanwhile.
    db.run_sync(
        lambda tx: tx.update_webhook(
            replace(current, enabled=True, disabled_reason=None, failing_since_ms=None)
        )
    )
    db.run_sync(
        lambda tx: tx.update_delivery(
            delivery_id,
            status="failed",
            attempt_count=99,
            next_attempt_at_ms=None,
            last_status_code=None,
            last_error="gave up",
            now_ms=now,
        )
    )
    assert db.run_sync(recover, channel.org_id, webhook.id, since_ms=T0 + 1, now_ms=now) == 0
    assert db.run_sync(recover, channel.org_id, webhook.id, since_ms=T0, now_ms=now) == 1
    assert len(db.run_sync(lambda tx: tx.claim_due_deliveries(now, now + 1, 10))) == 1


def test_a_success_resets_the_health_window(db: Database) -> None:
    channel, webhook = _ready_delivery(db)
    _fail_once(db, T0)
    assert db.run_sync(lambda tx: tx.get_webhook(channel.org_id, webhook.id)).failing_since_ms == T0  # type: ignore[union-attr]
    [due] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 2 * 3_600_000, T0 + DAY, 10))
    ok = AttemptResult(200, "ok", 5.0, None, None)
    db.run_sync(
        record_attempts,
        [SentAttempt(due, ok, T0 + DAY)],
        now_ms=T0 + DAY,
        schedule=(1.0,),
        rng=random.Random(1),
    )
    assert db.run_sync(get_webhook, channel.org_id, webhook.id).failing_since_ms is None


def test_an_outcome_ends_the_failure_streak_only_when_it_heals(db: Database) -> None:
    """`update_delivery(heals_webhook=…)` (one statement on PostgreSQL) records the outcome
    and ends the streak; without it the streak stands."""
    channel, webhook = _ready_delivery(db)
    delivery_id = _fail_once(db, T0)

    def outcome(heals: str | None) -> Callable[[Transaction], None]:
        return lambda tx: tx.update_delivery(
            delivery_id,
            status="succeeded",
            attempt_count=2,
            next_attempt_at_ms=None,
            last_status_code=200,
            last_error=None,
            now_ms=T0 + 5,
            heals_webhook=heals,
        )

    db.run_sync(outcome(None))
    assert db.run_sync(get_webhook, channel.org_id, webhook.id).failing_since_ms == T0
    db.run_sync(outcome(webhook.id))
    assert db.run_sync(get_webhook, channel.org_id, webhook.id).failing_since_ms is None
    delivery = db.run_sync(lambda tx: tx.get_delivery(channel.org_id, delivery_id))
    assert delivery is not None
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == (
        "succeeded",
        2,
        200,
    )


def test_rotation_signs_with_both_secrets_during_the_grace_period(db: Database) -> None:
    channel, webhook = _ready_delivery(db)
    rotation = db.run_sync(
        rotate_secret, channel.org_id, webhook.id, scheme=None, grace_ms=DAY, now_ms=T0
    )
    assert rotation is not None
    [due] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 1_000, 10))
    assert due.secrets == (rotation.webhook.secret, webhook.secret)
    db.run_sync(lambda tx: tx.reschedule_delivery(due.id, T0 + DAY))
    [later] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + DAY, T0 + DAY + 1, 10))
    assert later.secrets == (rotation.webhook.secret,)


def test_a_dispatchers_claim_carries_every_secret_still_valid_newest_first(
    db: Database,
) -> None:
    channel, webhook = _ready_delivery(db)
    first = db.run_sync(
        rotate_secret, channel.org_id, webhook.id, scheme=None, grace_ms=DAY, now_ms=T0
    )
    second = db.run_sync(
        rotate_secret, channel.org_id, webhook.id, scheme=None, grace_ms=DAY, now_ms=T0 + 1
    )
    assert first is not None
    assert second is not None
    claimed = db.run_sync(claim_deliveries, T0 + 2, T0 + 1_000, 10).get()
    [due] = claimed.due
    assert due.secrets == (second.webhook.secret, first.webhook.secret, webhook.secret)


def test_a_claim_is_read_with_its_commit_on_postgresql(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim, the next due time and the webhooks' previous secrets are the transaction's
    last statements: they go with the COMMIT, one round trip in all, and are read after it."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite's statements are no round trips")
    from convohook.storage import pg_pipeline

    channel, webhook = _ready_delivery(db)
    rotated = db.run_sync(
        rotate_secret, channel.org_id, webhook.id, scheme=None, grace_ms=DAY, now_ms=T0
    )
    assert rotated is not None
    syncs: list[int] = []
    sync = pg_pipeline.Pipeline.sync

    def counted(pipeline: pg_pipeline.Pipeline) -> None:
        syncs.append(1)
        sync(pipeline)

    monkeypatch.setattr(pg_pipeline.Pipeline, "sync", counted)
    at_commit = db.run_sync(claim_deliveries, T0 + 1, T0 + 1_000, 10)
    claimed = at_commit.get()
    assert len(syncs) == 1
    [due] = claimed.due
    assert due.secrets == (rotated.webhook.secret, webhook.secret)
    assert (claimed.drained, claimed.next_due_at_ms) == (True, T0 + 1_000)


def test_min_delay_after_throttling_applies_to_timeouts_and_429() -> None:
    from convohook.delivery.retry import AttemptOutcome, RetryAt, decide_next

    for outcome in (AttemptOutcome(429), AttemptOutcome(None, "timeout")):
        step = decide_next(1, outcome, (1.0,), 0.0, random.Random(1), min_delay_after_throttle=30)
        assert isinstance(step, RetryAt)
        assert step.at >= 30
    step = decide_next(
        1, AttemptOutcome(500, "http"), (1.0,), 0.0, random.Random(1), min_delay_after_throttle=30
    )
    assert isinstance(step, RetryAt)
    assert step.at < 2


def test_retention_removes_old_finished_work_and_keeps_state(db: Database) -> None:
    channel, _ = _ready_delivery(db)  # a pending delivery, from T0
    apply(db, channel, msg(igsid="222", mid="other"))  # waits for a profile: kept
    db.run_sync(lambda tx: tx.insert_notification(b"{}", T0))
    db.run_sync(process_pending, now_ms=T0, limit=10, policy=POLICY)
    [due] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 1_000, 10))
    db.run_sync(
        record_attempts,
        [SentAttempt(due, AttemptResult(200, "", 1.0, None, None), T0)],
        now_ms=T0,
        schedule=(1.0,),
        rng=random.Random(1),
    )
    assert db.run_sync(clean_once, before_ms=T0).total == 0  # nothing is old enough yet
    cleaned = db.run_sync(clean_once, before_ms=T0 + DAY)
    assert cleaned.deliveries == 1
    assert cleaned.events == 1
    assert cleaned.notifications == 1
    assert db.run_sync(clean_once, before_ms=T0 + DAY).total == 0
    assert count(db, "SELECT count(*) FROM attempts") == 0
    assert count(db, "SELECT count(*) FROM events") == 1  # the one still waiting for a profile
    assert count(db, "SELECT count(*) FROM conversations") == 2
    assert count(db, "SELECT count(*) FROM contacts") == 2
    assert count(db, "SELECT count(*) FROM messages") == 2


def _succeeded(db: Database, due: DueDelivery, now_ms: int) -> Recorded:
    """Record one attempt of `due` that the endpoint answered 200."""
    return db.run_sync(
        record_attempts,
        [SentAttempt(due, AttemptResult(200, "", 1.0, None, None), now_ms)],
        now_ms=now_ms,
        schedule=(1.0,),
        rng=random.Random(1),
    )


def test_fifo_webhook_sends_a_conversations_events_in_order(db: Database) -> None:
    channel, webhook = _ready_delivery(db)
    db.run_sync(
        lambda tx: tx.update_webhook(
            replace(webhook, events=("conversation.opened", "conversation.closed"), ordering="fifo")
        )
    )
    [conv] = db.run_sync(
        lambda tx: tx.list_conversations(
            channel.org_id, status="open", channel_id=None, contact_id=None, before=None, limit=5
        )
    )
    db.run_sync(mark_done, channel.org_id, conv.id, clock=lambda: T0 + 1)
    # The opened delivery is first; the closed one waits for it.
    [first] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 2, T0 + 1_000, 10))
    assert db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 2, T0 + 1_000, 10)) == []
    assert first.fifo
    # Its success unblocks the closed one: the dispatcher must look again.
    assert _succeeded(db, first, T0 + 3) == Recorded(succeeded=1, more_due=True)
    [second] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 4, T0 + 1_000, 10))
    assert second.event_type == "conversation.closed"


def test_a_plain_success_makes_nothing_due(db: Database) -> None:
    """After it the dispatcher need not look for work: it had an empty round per opening."""
    _ready_delivery(db)
    [due] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 1_000, 10))
    assert not due.fifo
    assert _succeeded(db, due, T0 + 3) == Recorded(succeeded=1, more_due=False)


def test_deferred_deliveries_come_back_without_an_attempt(db: Database) -> None:
    _ready_delivery(db)
    [due] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 1_000, 10))
    db.run_sync(lambda tx: tx.defer_deliveries([(due.id, T0 + 500)], T0))
    assert db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 499, T0 + 1_000, 10)) == []
    [again] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 500, T0 + 1_000, 10))
    assert again.id == due.id
    assert again.attempt_count == 0


def _ops_webhook(db: Database, org_id: str) -> Webhook:
    ops = Webhook(
        "wh_ops",
        org_id,
        "ops",
        "https://ops.example.com/h",
        "INSTAGRAM",
        (),
        ("webhook.disabled", "delivery.exhausted"),
        True,
        None,
        "whsec_" + "B" * 43,
        T0,
        T0,
    )
    db.run_sync(lambda tx: tx.insert_webhook(ops))
    return ops


def _ops_payloads(db: Database) -> list[dict[str, Any]]:
    with db.storage.transaction() as tx:
        rows = tx._x(  # type: ignore[attr-defined]
            "SELECT e.payload FROM deliveries d JOIN events e ON e.id = d.event_id "
            "WHERE d.webhook_id = 'wh_ops' ORDER BY d.id"
        ).fetchall()
    return [orjson.loads(bytes(r[0])) for r in rows]


def test_exhausted_and_disabled_are_reported_to_the_operations_webhook(db: Database) -> None:
    channel, webhook = _ready_delivery(db)
    _ops_webhook(db, channel.org_id)
    [due] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 1_000, 10))
    db.run_sync(
        record_attempts,
        [SentAttempt(due, AttemptResult(500, "", 1.0, "HTTP 500", "http"), T0)],
        now_ms=T0,
        schedule=(),
        rng=random.Random(1),
    )  # no retries: exhausted at once
    [exhausted] = _ops_payloads(db)
    assert exhausted["type"] == "delivery.exhausted"
    assert exhausted["data"]["deliveryId"] == due.id
    assert exhausted["data"]["webhookId"] == webhook.id
    db.run_sync(retry_now, channel.org_id, due.id, T0 + 1)
    claimed = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 1, T0 + 1_000, 10))
    [due] = [d for d in claimed if d.id == due.id]  # the report itself is due too
    db.run_sync(
        record_attempts,
        [SentAttempt(due, AttemptResult(410, "", 1.0, "HTTP 410", "http"), T0)],
        now_ms=T0 + 2,
        schedule=(1.0,),
        rng=random.Random(1),
    )
    disabled = _ops_payloads(db)[1]
    assert disabled["type"] == "webhook.disabled"
    assert "410" in disabled["data"]["reason"]


def test_failures_of_operational_deliveries_are_not_reported_again(db: Database) -> None:
    channel, _ = _ready_delivery(db)
    _ops_webhook(db, channel.org_id)
    [due] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0, T0 + 1_000, 10))
    db.run_sync(
        record_attempts,
        [SentAttempt(due, AttemptResult(500, "", 1.0, "x", "http"), T0)],
        now_ms=T0,
        schedule=(),
        rng=random.Random(1),
    )
    [ops_due] = db.run_sync(lambda tx: tx.claim_due_deliveries(T0 + 1, T0 + 1_000, 10))
    assert ops_due.event_type == "delivery.exhausted"
    db.run_sync(
        record_attempts,
        [SentAttempt(ops_due, AttemptResult(410, "", 1.0, "x", "http"), T0)],
        now_ms=T0 + 2,
        schedule=(),
        rng=random.Random(1),
    )
    assert len(_ops_payloads(db)) == 1  # no event about the operations webhook's own failure


def test_a_conversations_messages_are_listed_oldest_first_and_only_for_its_org(
    db: Database,
) -> None:
    channel, _ = setup_org(db)
    assert apply(db, channel, msg(mid="m2", ts=T0 + 5)) == "first_message"
    apply(db, channel, msg(mid="m1", ts=T0 + 5))  # same time: the mid breaks the tie
    apply(db, channel, msg(mid="m3", ts=T0 + 9))
    apply(db, channel, msg(igsid="222", mid="other", ts=T0 + 1))  # another customer's

    def read(tx: Transaction) -> Any:
        mine = next(
            c
            for c in tx.list_conversations(
                channel.org_id, status=None, channel_id=None, contact_id=None, before=None, limit=9
            )
            if c.contact.igsid == "111"
        )
        return (
            tx.list_messages(channel.org_id, mine.id, None, 10),
            tx.list_messages(channel.org_id, mine.id, (T0 + 5, "m1"), 1),
            tx.list_messages("org_someone_else", mine.id, None, 10),
        )

    everything, after_first, foreign = db.run_sync(read)
    assert [(m.mid, m.timestamp_ms) for m in everything] == [
        ("m1", T0 + 5),
        ("m2", T0 + 5),
        ("m3", T0 + 9),
    ]
    assert everything[0].text == "hi"
    assert everything[0].kind == "message"
    assert [m.mid for m in after_first] == ["m2"]
    assert foreign == []


def test_bots_are_listed_newest_first_per_org(db: Database) -> None:
    channel, _ = setup_org(db)

    def write(tx: Transaction) -> None:
        other = create_org(tx, "Other", T0).org
        for i, org_id in enumerate([channel.org_id, channel.org_id, other.id]):
            tx.insert_bot(Bot(f"bot_{i}", org_id, f"Bot {i}", "webhook", f"tok{i}", T0 + i))

    db.run_sync(write)
    bots = db.run_sync(lambda tx: tx.list_bots(channel.org_id, None, 10))
    assert [b.id for b in bots] == ["bot_1", "bot_0"]
    assert db.run_sync(lambda tx: tx.list_bots(channel.org_id, "bot_1", 10))[0].id == "bot_0"


def test_contact_for_says_whether_it_created_the_contact(db: Database) -> None:
    channel, _ = setup_org(db)

    def twice(tx: Transaction) -> tuple[Any, Any]:
        first = tx.contact_for(channel.org_id, channel.id, "777", T0)
        return first, tx.contact_for(channel.org_id, channel.id, "777", T0 + 1)

    (created, was_new), (found, again_new) = db.run_sync(twice)
    assert (was_new, again_new) == (True, False)
    assert found == created
    assert db.run_sync(lambda tx: tx.contact_for(channel.org_id, channel.id, "777", T0))[1] is False


def test_notifications_stored_together_are_processed_in_their_order(db: Database) -> None:
    bodies = [orjson.dumps({"object": "instagram", "entry": [], "n": i}) for i in range(5)]
    db.run_sync(lambda tx: tx.insert_notifications(bodies, T0))
    pending = db.run_sync(lambda tx: tx.pending_notifications(10))
    assert [p.body for p in pending] == bodies
    assert {p.received_at_ms for p in pending} == {T0}
