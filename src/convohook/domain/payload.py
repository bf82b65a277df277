"""Webhook bodies. The default format is DoubleTick's, byte for byte (DESIGN section 3)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

CHANNEL_TYPE = "INSTAGRAM"


@dataclass(frozen=True, slots=True)
class CustomerProfile:
    """What the Instagram User Profile API told us (or the best we know)."""

    username: str
    name: str | None

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
