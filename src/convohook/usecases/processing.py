"""From stored Meta notifications to conversations, events and deliveries, in one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from convohook.domain.conversation import CustomerState, Decision, decide
from convohook.domain.ids import new_id
from convohook.domain.inbound import InboundItem, ItemKind, ParsedNotification
from convohook.domain.model import (
    AwaitingProfile,
    Channel,
    Contact,
    KnownCustomers,
    StoredNotification,
)
from convohook.meta.parse import MalformedNotification, parse_notification
from convohook.storage.base import Transaction
from convohook.usecases.bot_triggers import MESSAGE_RECEIVED, message_key, schedule_runs
from convohook.usecases.events import CONVERSATION_OPENED, emit_event, fresh_profile
from convohook.usecases.replies import apply_echo

log = logging.getLogger(__name__)

# Kinds that are messages of their own (with their own mid). Reactions, reads and unsends carry
# the mid of *another* message, so storing them under it would shadow that message. Echoes are
# the business's messages: they go with the replies (usecases/replies.apply_echo).
_STORED_KINDS = frozenset({ItemKind.MESSAGE, ItemKind.POSTBACK, ItemKind.ECHO})


@dataclass(frozen=True, slots=True)
class ProcessingPolicy:
    profile_deadline_ms: int = 60_000
    profile_ttl_ms: int = 7 * 86_400_000
    # Set: openings that need a profile are claimed for this long by the writer, which looks
    # the profiles up at once (`ProcessReport.awaiting`) instead of leaving them to be claimed.
    profile_lease_ms: int | None = None


@dataclass(slots=True)
class ProcessReport:
    notifications: int = 0
    items: int = 0
    openings: int = 0
    reopened: int = 0
    duplicates: int = 0
    deliveries: int = 0
    # Of those, the ones whose payload is complete: due now. The rest wait for a profile, and
    # waking the dispatcher for them only made it look for work and find none.
    deliveries_ready: int = 0
    awaiting_profile: int = 0
    bot_runs: int = 0
    failed: int = 0
    unknown_accounts: set[str] = field(default_factory=set)
    awaiting: dict[str, AwaitingProfile] = field(default_factory=dict)  # claimed, by contact id


def process_pending(
    tx: Transaction, *, now_ms: int, limit: int, policy: ProcessingPolicy
) -> ProcessReport:
    """Apply up to `limit` pending notifications, oldest first, and mark them processed.

    What the batch's items need to know of their customers (contact, open conversation, last
    done, whether the message is stored already) is read for all of them first, in one go
    (`known_customers`): on PostgreSQL every read is a round trip, and item by item they were
    two per message, most of an opening's time (docs/performance.md)."""
    report = ProcessReport()
    # Channels, subscribers and bots as this process read them before, unless changed since:
    # three round trips of six on PostgreSQL (storage/config_cache.py).
    tx.use_cached_config()
    pending = tx.pending_notifications(limit)
    parsed: list[tuple[StoredNotification, ParsedNotification | str]] = []
    for stored in pending:
        try:
            parsed.append((stored, parse_notification(stored.body)))
        except MalformedNotification as exc:
            # Inbound rejects malformed JSON before storing, so only a body stored by another
            # version can get here: keep it, with why, rather than drop it.
            report.failed += 1
            parsed.append((stored, str(exc)))
    channels: dict[str, Channel | None] = {}
    known = _look_up(tx, [n for _, n in parsed if not isinstance(n, str)], channels)
    processed = []
    for stored, notification in parsed:
        if isinstance(notification, str):
            quarantine(tx, stored.id, notification, now_ms)
            continue
        for item in notification.items:
            report.items += 1
            channel = channels[item.account_id]
            if channel is None:
                report.unknown_accounts.add(item.account_id)
                continue
            apply_item(tx, channel, item, now_ms, policy, report, known.get(channel.id))
        processed.append(stored.id)
    tx.mark_notifications_processed(processed, now_ms)
    report.notifications = len(pending)
    return report


def quarantine(tx: Transaction, notification_id: int, error: str, now_ms: int) -> None:
    """Keep a notification we cannot process, with why; it stays in the table for inspection."""
    tx.mark_notifications_processed([notification_id], now_ms, error=error[:2000])


def _is_customer_message(channel: Channel, item: InboundItem) -> bool:
    """Stored as a customer's message (and so possibly opening a conversation)."""
    return (
        item.kind in _STORED_KINDS
        and item.kind is not ItemKind.ECHO
        and item.customer_igsid != channel.account_id
    )


def _mid(item: InboundItem) -> str:
    # Items without a mid cannot be deduplicated by Meta's id; the (kind, customer, time)
    # triple is what identifies a redelivery of the same item then.
    return item.mid or f"{item.kind}:{item.customer_igsid}:{item.timestamp_ms}"


def _look_up(
    tx: Transaction,
    notifications: list[ParsedNotification],
    channels: dict[str, Channel | None],
) -> dict[str, KnownCustomers]:
    """The channels of these notifications (into `channels`) and, per channel, what is stored
    of their customers and messages."""
    wanted: dict[str, tuple[set[str], set[str]]] = {}
    for notification in notifications:
        for item in notification.items:
            if item.account_id not in channels:
                channels[item.account_id] = tx.channel_by_account(item.account_id)
            channel = channels[item.account_id]
            if channel is not None and _is_customer_message(channel, item):
                igsids, mids = wanted.setdefault(channel.id, (set(), set()))
                igsids.add(item.customer_igsid)
                mids.add(_mid(item))
    return {
        channel_id: tx.known_customers(channel_id, sorted(igsids), sorted(mids))
        for channel_id, (igsids, mids) in wanted.items()
    }


@dataclass(slots=True)
class _Customers:
    """An item's questions about its customer: answered from what the batch read beforehand
    (kept current by the batch's own writes) where that covers them, else by the database."""

    tx: Transaction
    known: KnownCustomers | None

    def _covers(self, igsid: str) -> KnownCustomers | None:
        known = self.known
        return known if known is not None and igsid in known.igsids else None

    def contact(self, channel: Channel, igsid: str, now_ms: int) -> tuple[Contact, bool]:
        known = self._covers(igsid)
        if known is None:
            return self.tx.contact_for(channel.org_id, channel.id, igsid, now_ms)
        contact = known.contacts.get(igsid)
        if contact is not None:
            return contact, False
        contact = self.tx.create_contact(channel.org_id, channel.id, igsid, now_ms)
        known.contacts[igsid] = contact
        return contact, True

    def open_conversation(self, contact: Contact) -> str | None:
        known = self._covers(contact.igsid)
        if known is None:
            return self.tx.open_conversation_of(contact.channel_id, contact.id)
        return known.open_conversations.get(contact.id)

    def last_done_at(self, contact: Contact) -> int | None:
        known = self._covers(contact.igsid)
        if known is None:
            return self.tx.last_done_at(contact.channel_id, contact.id)
        return known.last_done_at_ms.get(contact.id)

    def store_message(
        self,
        contact: Contact,
        mid: str,
        item: InboundItem,
        now_ms: int,
        conversation_id: str | None,
    ) -> bool:
        """Store the customer's message with its conversation; False if it was stored already
        (Meta's redelivery)."""
        known = self._covers(contact.igsid)
        fields = (item.kind.value, item.text, item.timestamp_ms, now_ms)
        if known is None or mid not in known.mids_looked_up:
            stored = self.tx.insert_message(
                contact.channel_id, mid, contact.id, *fields, conversation_id=conversation_id
            )
        elif mid in known.mids_stored:
            stored = False
        else:
            self.tx.add_message(
                contact.channel_id, mid, contact.id, *fields, conversation_id=conversation_id
            )
            stored = True
        if stored and self.known is not None:
            self.known.mids_stored.add(mid)
        return stored

    def opened(self, contact: Contact, conversation_id: str) -> None:
        if self.known is not None:
            self.known.open_conversations[contact.id] = conversation_id

    def forget(self, igsid: str) -> None:
        """Something else (an echo) wrote about this customer: ask the database from now on."""
        if self.known is not None:
            self.known.igsids.discard(igsid)


def apply_item(
    tx: Transaction,
    channel: Channel,
    item: InboundItem,
    now_ms: int,
    policy: ProcessingPolicy,
    report: ProcessReport,
    known: KnownCustomers | None = None,
) -> Decision:
    """Apply one item; `known`: what its batch read of the channel's customers beforehand."""
    if item.kind not in _STORED_KINDS:
        return Decision.IGNORE
    if item.customer_igsid == channel.account_id:
        # The business as its own "customer": an echo that lost its is_echo flag.
        return Decision.IGNORE
    customers = _Customers(tx, known)
    if item.kind is ItemKind.ECHO:
        apply_echo(tx, channel, item, now_ms)
        customers.forget(item.customer_igsid)
        return Decision.IGNORE
    contact, new = customers.contact(channel, item.customer_igsid, now_ms)
    mid = _mid(item)
    # Decided before the message is stored, so that it is stored with its conversation in one
    # statement; a duplicate then changes nothing (its insert is a no-op, and we stop there).
    # A contact this transaction created has no conversation yet: nothing to look up.
    open_id = None if new else customers.open_conversation(contact)
    state = CustomerState(
        has_open_conversation=open_id is not None,
        last_done_at_ms=None if open_id or new else customers.last_done_at(contact),
    )
    decision = decide(state, item)
    conversation_id = open_id or (new_id("conv", now_ms) if decision.opens else None)
    if not customers.store_message(contact, mid, item, now_ms, conversation_id):
        report.duplicates += 1
        return Decision.IGNORE
    if decision is Decision.CONTINUE and open_id is not None:
        tx.touch_conversation(open_id, item.timestamp_ms)
    if not decision.opens or conversation_id is None:
        if conversation_id is not None:
            report.bot_runs += _message_received(
                tx, channel, item, mid, conversation_id, contact.id, now_ms, None
            )
        return decision

    tx.insert_conversation(
        conversation_id,
        channel.org_id,
        channel.id,
        contact.id,
        decision.value,
        now_ms,
        last_message_at_ms=item.timestamp_ms,
    )
    customers.opened(contact, conversation_id)
    emitted = emit_event(
        tx,
        event_type=CONVERSATION_OPENED,
        org_id=channel.org_id,
        channel_id=channel.id,
        channel_handle=channel.handle,
        contact=contact,
        conversation_id=conversation_id,
        reason=decision.value,
        now_ms=now_ms,
        profile=fresh_profile(contact, now_ms, policy.profile_ttl_ms),
        profile_deadline_ms=policy.profile_deadline_ms,
        first_message_text=item.text,
        first_message_at_ms=item.timestamp_ms,
        profile_claimed_until_ms=now_ms + policy.profile_lease_ms if policy.profile_lease_ms else 0,
        referral=item.referral,
    )
    # After the opening's: its bots run first.
    report.bot_runs += emitted.runs + _message_received(
        tx, channel, item, mid, conversation_id, contact.id, now_ms, decision.value
    )
    if not emitted.ready and policy.profile_lease_ms:
        report.awaiting[contact.id] = AwaitingProfile(
            contact=contact,
            channel_handle=channel.handle,
            access_token=channel.access_token,
            attempts=0,
            deadline_ms=now_ms + policy.profile_deadline_ms,
            events=1,
        )
    report.openings += 1
    report.reopened += decision is Decision.REOPEN
    report.deliveries += emitted.deliveries
    report.deliveries_ready += emitted.deliveries if emitted.ready else 0
    report.awaiting_profile += 0 if emitted.ready else 1
    return decision


def _message_received(
    tx: Transaction,
    channel: Channel,
    item: InboundItem,
    mid: str,
    conversation_id: str,
    contact_id: str,
    now_ms: int,
    open_reason: str | None,
) -> int:
    """The runs of the bots on every customer message (keyword bots)."""
    if open_reason is None and tx.bots_for(channel.org_id, MESSAGE_RECEIVED):
        open_reason = tx.conversation_reason(conversation_id)
    return schedule_runs(
        tx,
        MESSAGE_RECEIVED,
        org_id=channel.org_id,
        trigger_key=message_key(channel.id, mid),
        conversation_id=conversation_id,
        contact_id=contact_id,
        text=item.text,
        referral=item.referral,
        open_reason=open_reason,
        happened_at_ms=item.timestamp_ms,
        now_ms=now_ms,
    )


def store_notifications(tx: Transaction, bodies: list[bytes], now_ms: int) -> None:
    """Meta's notifications as received, in order: Meta gets its 200 once this commits."""
    tx.insert_notifications(bodies, now_ms)


def quarantine_oldest(tx: Transaction, error: str, now_ms: int) -> None:
    """Set aside the oldest pending notification: it failed alone, again and again."""
    for stored in tx.pending_notifications(1):
        quarantine(tx, stored.id, error, now_ms)
