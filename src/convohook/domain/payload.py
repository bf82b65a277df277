"""Webhook bodies. The default format is DoubleTick's, byte for byte (DESIGN section 3)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

CHANNEL_TYPE = "INSTAGRAM"


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """What the Instagram User Profile API told us (or the best we know)."""

    username: str
    name: str | None
    # Fetched with them, for bots' conditions; None when Instagram does not share them.
    follower_count: int | None = None
    is_user_follow_business: bool | None = None
    is_verified_user: bool | None = None

    @property
    def display_name(self) -> str:
        # DESIGN: the display name falls back to the username when Instagram has none.
        return self.name if self.name else self.username


def _doubletick_fields(
    *, business_handle: str, profile: CustomerProfile, customer_id: str
) -> dict[str, object]:
    # Key order is part of the contract: dicts keep insertion order and orjson keeps it too.
    return {
        "to": business_handle,
        "from": profile.username,
        "handle": profile.username,
        "contact": {"name": profile.display_name},
        "channelType": CHANNEL_TYPE,
        "customerName": profile.display_name,
        "dtCustomerId": customer_id,
        "channelHandle": business_handle,
        "customerPhone": profile.username,
        "integrationType": CHANNEL_TYPE,
    }


def conversation_opened_body(
    *, business_handle: str, profile: CustomerProfile, customer_id: str
) -> bytes:
    """The exact DoubleTick "Instagram Conversation Opened" body (compact JSON, UTF-8)."""
    fields = _doubletick_fields(
        business_handle=business_handle, profile=profile, customer_id=customer_id
    )
    fields["conversationOpened"] = True
    return orjson.dumps(fields)


def conversation_closed_body(
    *, business_handle: str, profile: CustomerProfile, customer_id: str
) -> bytes:
    """DoubleTick has no closed event; ours mirrors the opened body so one parser reads both."""
    fields = _doubletick_fields(
        business_handle=business_handle, profile=profile, customer_id=customer_id
    )
    fields["conversationOpened"] = False
    fields["conversationClosed"] = True
    return orjson.dumps(fields)


def conversation_assigned_body(
    *,
    business_handle: str,
    profile: CustomerProfile,
    customer_id: str,
    assignee: dict[str, str] | None,
) -> bytes:
    """Ours too (DESIGN section 7): the opened body's keys, not an opening, then to whom the
    conversation is now assigned ({"id","name","email"}, or null once unassigned)."""
    fields = _doubletick_fields(
        business_handle=business_handle, profile=profile, customer_id=customer_id
    )
    fields["conversationOpened"] = False
    fields["assignee"] = assignee
    return orjson.dumps(fields)


@dataclass(frozen=True, slots=True)
class EventFacts:
    """What the extended format adds to the DoubleTick fields."""

    event_id: str
    event_type: str
    created_at_ms: int
    reason: str | None
    conversation_id: str | None
    igsid: str | None
    first_message_text: str | None
    first_message_at_ms: int | None
    # The event's own extras beyond the DoubleTick fields (conversation.assigned: the previous
    # assignee and who assigned), already in the order they are sent.
    details: dict[str, object] | None = None


def iso_ms(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds: 2026-11-25T09:50:00.000Z."""
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def standard_envelope(doubletick_body: bytes, facts: EventFacts) -> bytes:
    """The opt-in extended format: a Standard Webhooks envelope {type, timestamp, data} whose
    data is the DoubleTick fields plus the event's own (deterministic: same bytes every retry)."""
    data: dict[str, object] = orjson.loads(doubletick_body)
    data["eventId"] = facts.event_id
    data["reason"] = facts.reason
    data["conversationId"] = facts.conversation_id
    data["igsid"] = facts.igsid
    data["firstMessage"] = (
        {"text": facts.first_message_text, "timestamp": iso_ms(facts.first_message_at_ms)}
        if facts.first_message_at_ms is not None
        else None
    )
    for key, value in (facts.details or {}).items():
        data.setdefault(key, value)
    return orjson.dumps(
        {"type": facts.event_type, "timestamp": iso_ms(facts.created_at_ms), "data": data}
    )
