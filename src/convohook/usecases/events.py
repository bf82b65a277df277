"""Writing an event into the outbox: the event row and one delivery per matching webhook."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from convohook.domain.ids import new_id
from convohook.domain.model import Channel, Contact, Conversation
from convohook.domain.payload import (
    CustomerProfile,
    conversation_assigned_body,
    conversation_closed_body,
    conversation_opened_body,
)
from convohook.storage.base import Transaction
from convohook.usecases.bot_triggers import schedule_runs

CONVERSATION_OPENED = "conversation.opened"
CONVERSATION_CLOSED = "conversation.closed"
CONVERSATION_ASSIGNED = "conversation.assigned"
EVENT_TYPES = (CONVERSATION_OPENED, CONVERSATION_CLOSED, CONVERSATION_ASSIGNED)


@dataclass(frozen=True, slots=True)
class EmittedEvent:
    event_id: str
    deliveries: int
    ready: bool  # False: waiting for the customer's profile before it can be sent
    runs: int = 0  # bots' runs it triggered


def cached_profile(contact: Contact) -> CustomerProfile | None:
    """Whatever we know, fresh or not."""
    if contact.username is None:
        return None
    return CustomerProfile(
        username=contact.username,
        name=contact.name,
        follower_count=contact.follower_count,
        is_user_follow_business=contact.is_user_follow_business,
        is_verified_user=contact.is_verified_user,
    )


def fresh_profile(contact: Contact, now_ms: int, ttl_ms: int) -> CustomerProfile | None:
    """A profile good enough to send without asking Instagram again."""
    if contact.profile_status != "ok" or contact.profile_fetched_at_ms is None:
        return None
    if now_ms - contact.profile_fetched_at_ms > ttl_ms:
        return None
    return cached_profile(contact)


def build_body(
    event_type: str,
    *,
    business_handle: str,
    profile: CustomerProfile,
    customer_id: str,
    details: str | None = None,
) -> bytes:
    """The default (DoubleTick) body; `details` is the event's JSON extras, as stored."""
    if event_type == CONVERSATION_ASSIGNED:
        extras = orjson.loads(details) if details else {}
        return conversation_assigned_body(
            business_handle=business_handle,
            profile=profile,
            customer_id=customer_id,
            assignee=extras.get("assignee"),
        )
    builder = (
        conversation_opened_body if event_type == CONVERSATION_OPENED else conversation_closed_body
    )
    return builder(business_handle=business_handle, profile=profile, customer_id=customer_id)


def emit_event(
    tx: Transaction,
    *,
    event_type: str,
    org_id: str,
    channel_id: str,
    channel_handle: str,
    contact: Contact,
    conversation_id: str,
    reason: str | None,
    now_ms: int,
    profile: CustomerProfile | None,
    profile_deadline_ms: int,
    first_message_text: str | None = None,
    first_message_at_ms: int | None = None,
    profile_claimed_until_ms: int = 0,
    details: dict[str, object] | None = None,
    open_reason: str | None = None,
    referral: bool = False,
) -> EmittedEvent:
    """One event, its deliveries and the runs of the bots it triggers, in the caller's
    transaction (the transactional outbox). `details`: what the event says beyond the
    DoubleTick fields, kept with it so that a body built later (once the profile is known) and
    the extended format say the same. `open_reason`: how the conversation opened (a closing
    event's `reason` is why it closed); `referral`: its first message came from an ad or an
    ig.me link."""
    stored_details = orjson.dumps(details).decode() if details is not None else None
    payload = (
        build_body(
            event_type,
            business_handle=channel_handle,
            profile=profile,
            customer_id=contact.customer_id,
            details=stored_details,
        )
        if profile is not None
        else None
    )
    event_id = new_id("evt", now_ms)
    tx.insert_event(
        event_id=event_id,
        org_id=org_id,
        channel_id=channel_id,
        event_type=event_type,
        conversation_id=conversation_id,
        contact_id=contact.id,
        reason=reason,
        payload=payload,
        profile_deadline_ms=now_ms + profile_deadline_ms,
        first_message_text=first_message_text,
        first_message_at_ms=first_message_at_ms,
        now_ms=now_ms,
        profile_claimed_until_ms=profile_claimed_until_ms if payload is None else 0,
        details=stored_details,
    )
    subscribers = tx.subscriber_ids(channel_id, event_type)
    tx.insert_deliveries(
        [(new_id("msg", now_ms), webhook_id) for webhook_id in subscribers],
        event_id,
        org_id,
        now_ms,
        ready=payload is not None,  # else scheduled when the profile comes
    )
    runs = schedule_runs(
        tx,
        event_type,
        org_id=org_id,
        trigger_key=event_id,
        conversation_id=conversation_id,
        contact_id=contact.id,
        text=first_message_text,
        referral=referral,
        open_reason=reason if event_type == CONVERSATION_OPENED else open_reason,
        happened_at_ms=first_message_at_ms if first_message_at_ms is not None else now_ms,
        now_ms=now_ms,
    )
    return EmittedEvent(
        event_id=event_id, deliveries=len(subscribers), ready=payload is not None, runs=runs
    )


def emit_conversation_event(
    tx: Transaction,
    event_type: str,
    conversation: Conversation,
    channel: Channel,
    *,
    reason: str | None,
    now_ms: int,
    profile_deadline_ms: int,
    details: dict[str, object] | None = None,
) -> EmittedEvent:
    """An event about a conversation that exists already (closed, assigned): its customer's
    profile as cached, no first message."""
    return emit_event(
        tx,
        event_type=event_type,
        org_id=conversation.org_id,
        channel_id=channel.id,
        channel_handle=channel.handle,
        contact=conversation.contact,
        conversation_id=conversation.id,
        reason=reason,
        now_ms=now_ms,
        profile=cached_profile(conversation.contact),
        profile_deadline_ms=profile_deadline_ms,
        details=details,
        open_reason=conversation.reason,
    )
