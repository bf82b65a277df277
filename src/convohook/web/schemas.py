"""Request bodies of /api/v1 (validated by pydantic) and the JSON shapes of what it returns."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from convohook.delivery.signing import SECRET_KEY_PREFIX, public_key_of
from convohook.domain.model import (
    Attempt,
    Bot,
    Capture,
    Channel,
    Contact,
    Conversation,
    Delivery,
    Message,
    Webhook,
)
from convohook.domain.payload import iso_ms

EventName = Literal[
    "conversation.opened", "conversation.closed", "webhook.disabled", "delivery.exhausted"
]
CONVERSATION_EVENTS = frozenset({"conversation.opened", "conversation.closed"})


NUL_MESSAGE = "must not contain NUL (\\u0000) characters"


def has_nul(value: object) -> bool:
    """A NUL character anywhere in a string, a list's or a mapping's (keys included)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    return False


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL cannot store a NUL in text (SQLite can): it is invalid input on both, not
        # a 500 from the database on one.
        if has_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value


class ChannelIn(_Strict):
    type: Literal["INSTAGRAM"] = "INSTAGRAM"
    handle: str = Field(min_length=1, max_length=100, description="the business's Instagram handle")
    account_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[0-9A-Za-z_-]+$",
        description="Instagram professional account id (entry[].id in Meta's notifications)",
    )
    access_token: str = Field(min_length=1, max_length=2048)


class BasicAuth(_Strict):
    type: Literal["basic"]
    username: str = Field(min_length=1, max_length=200, pattern=r"^[^:\r\n]*$")
    password: str = Field(max_length=500, pattern=r"^[^\r\n]*$")


class BearerAuth(_Strict):
    type: Literal["bearer"]
    token: str = Field(min_length=1, max_length=2000, pattern=r"^[^\s]+$")


Auth = Annotated[BasicAuth | BearerAuth, Field(discriminator="type")]
PayloadFormat = Literal["doubletick", "standard"]
SignatureScheme = Literal["hmac", "ed25519"]
Timeout = Annotated[float, Field(ge=1, le=60, description="seconds before an attempt times out")]
RateLimit = Annotated[float, Field(gt=0, le=10_000, description="attempts per second at most")]
Concurrency = Annotated[int, Field(ge=1, le=1_000, description="attempts in flight at most")]
Ordering = Literal["none", "fifo"]


class WebhookIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=2048)
    channel_type: Literal["INSTAGRAM"] = "INSTAGRAM"
    # Empty only for an operations webhook (webhook.disabled, delivery.exhausted): no channel.
    channel_ids: list[str] = Field(default_factory=list, max_length=100)
    events: list[EventName] = Field(default=["conversation.opened"], min_length=1)
    enabled: bool = True
    format: PayloadFormat = "doubletick"
    headers: dict[str, str] = Field(default_factory=dict)
    auth: Auth | None = None
    timeout_seconds: Timeout | None = None
    signature_scheme: SignatureScheme = "hmac"
    rate_limit_per_second: RateLimit | None = None
    max_concurrency: Concurrency | None = None
    ordering: Ordering = "none"

    @model_validator(mode="after")
    def _channels_for_conversation_events(self) -> WebhookIn:
        if CONVERSATION_EVENTS.intersection(self.events) and not self.channel_ids:
            raise ValueError(
                "channel_ids: conversation events need at least one channel "
                "(only webhook.disabled and delivery.exhausted can go without)"
            )
        return self


class WebhookPatch(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    channel_ids: list[str] | None = Field(default=None, min_length=1, max_length=100)
    events: list[EventName] | None = Field(default=None, min_length=1)
    enabled: bool | None = None
    format: PayloadFormat | None = None
    headers: dict[str, str] | None = None
    auth: Auth | None = None
    remove_auth: bool = False
    timeout_seconds: Timeout | None = None
    rate_limit_per_second: RateLimit | None = None
    max_concurrency: Concurrency | None = None
    remove_limits: bool = False
    ordering: Ordering | None = None


class RotateIn(_Strict):
    grace_seconds: int = Field(default=86_400, ge=0, le=7 * 86_400)
    signature_scheme: SignatureScheme | None = None


class RecoverIn(_Strict):
    since: datetime = Field(description="resend failed deliveries created at or after this time")


class BotIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    trigger: Literal["webhook"] = "webhook"


def iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def channel_json(c: Channel) -> dict[str, Any]:
    # The access token is a secret: accepted, never returned.
    return {
        "id": c.id,
        "type": c.type,
        "handle": c.handle,
        "account_id": c.account_id,
        "created_at": iso(c.created_at_ms),
    }


def webhook_json(w: Webhook, *, with_secret: bool = False) -> dict[str, Any]:
    ed25519 = w.secret.startswith(SECRET_KEY_PREFIX)
    body: dict[str, Any] = {
        "id": w.id,
        "name": w.name,
        "url": w.url,
        "channel_type": w.channel_type,
        "channel_ids": list(w.channel_ids),
        "events": list(w.events),
        "enabled": w.enabled,
        "disabled_reason": w.disabled_reason,
        "failing_since": iso(w.failing_since_ms),
        "queue_while_disabled": w.queue_while_disabled,
        "format": w.format,
        "headers": w.headers,
        "auth": {"type": w.auth_type} if w.auth_type else None,  # credentials never returned
        "timeout_seconds": w.timeout_s,
        "rate_limit_per_second": w.rate_limit_per_s,
        "max_concurrency": w.max_concurrency,
        "ordering": w.ordering,
        "signature_scheme": "ed25519" if ed25519 else "hmac",
        "created_at": iso(w.created_at_ms),
        "updated_at": iso(w.updated_at_ms),
    }
    if ed25519:
        body["public_key"] = public_key_of(w.secret)  # public: receivers verify with it
    elif with_secret:
        body["secret"] = w.secret
    return body


def contact_json(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "customer_id": c.customer_id,
        "handle": c.username,
        "name": c.name or c.username,
        "igsid": c.igsid,
        "channel_id": c.channel_id,
        "profile_status": c.profile_status,
        "created_at": iso(c.created_at_ms),
    }


def conversation_json(v: Conversation) -> dict[str, Any]:
    return {
        "id": v.id,
        "status": v.status,
        "reason": v.reason,
        "channel_id": v.channel_id,
        "contact": contact_json(v.contact),
        "opened_at": iso(v.opened_at_ms),
        "done_at": iso(v.done_at_ms),
    }


def message_json(m: Message) -> dict[str, Any]:
    return {
        "mid": m.mid,
        "kind": m.kind,
        "text": m.text,
        "timestamp": iso(m.timestamp_ms),
        "received_at": iso(m.received_at_ms),
    }


def message_cursor(m: Message) -> str:
    return f"{m.timestamp_ms}:{m.mid}"


def parse_message_cursor(cursor: str | None) -> tuple[int, str] | None:
    """`TIMESTAMP_MS:MID` (a mid may itself hold colons; the timestamp never does)."""
    if not cursor:
        return None
    ms, sep, mid = cursor.partition(":")
    if not sep or not ms.isdigit():
        raise ValueError(f"cursor: {cursor!r} is not a cursor from this list's `next`")
    return int(ms), mid


def attempt_json(a: Attempt) -> dict[str, Any]:
    return {
        "attempt": a.attempt_number,
        "attempted_at": iso(a.attempted_at_ms),
        "url": a.url,
        "status_code": a.status_code,
        "response_body": a.response_body,
        "duration_ms": round(a.duration_ms, 3),
        "error": a.error,
        "error_class": a.error_class,
        "request_headers": a.request_headers,  # as sent; Authorization masked
        "request_body": a.request_body,  # null: the delivery's payload was sent as it is
    }


def _json_or_text(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


def delivery_json(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "webhook_id": d.webhook_id,
        "status": d.status,
        "attempt_count": d.attempt_count,
        "next_attempt_at": iso(d.next_attempt_at_ms) if d.status == "pending" else None,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "payload": _json_or_text(d.payload),
        "created_at": iso(d.created_at_ms),
        "updated_at": iso(d.updated_at_ms),
        "attempts": [attempt_json(a) for a in d.attempts],
    }


def bot_json(b: Bot, public_url: str) -> dict[str, Any]:
    return {
        "id": b.id,
        "name": b.name,
        "trigger": b.trigger,
        "webhook_url": f"{public_url}/hooks/bots/{b.token}",
        "created_at": iso(b.created_at_ms),
    }


def capture_json(c: Capture) -> dict[str, Any]:
    return {
        "id": c.id,
        "received_at": iso(c.received_at_ms),
        "method": c.method,
        "headers": c.headers,
        "body": _json_or_text(c.body),
        "raw_body": c.body,
    }
