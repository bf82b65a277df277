"""What /api/v1/webhooks answers: the webhook (with what receivers need to verify it, in the
answers that may show it), pages of them, and how many deliveries a recovery sends again."""

from __future__ import annotations

from typing import Annotated, Any, cast

from pydantic import Field, WithJsonSchema

from convohook.delivery.signing import SECRET_KEY_PREFIX, public_key_of
from convohook.domain.model import Webhook
from convohook.domain.payload import iso_ms
from convohook.web.api.channels import ChannelType
from convohook.web.api.common import Answer, Page, Timestamp, iso
from convohook.web.api.webhook_requests import (
    AuthType,
    EventName,
    Ordering,
    PayloadFormat,
    SignatureScheme,
)


def _absent(value: object) -> bool:
    return value is None


# A key that is left out of the answer (not sent as null) when it has no value.
Sometimes = Annotated[str | None, WithJsonSchema({"type": "string"})]


class WebhookAuthOut(Answer):
    type: AuthType = Field(description="credentials are never returned")


class WebhookOut(Answer):
    id: str
    name: str
    url: str
    channel_type: ChannelType
    channel_ids: list[str]
    events: list[EventName]
    enabled: bool
    disabled_reason: str | None
    failing_since: Timestamp | None
    queue_while_disabled: bool
    format: PayloadFormat
    headers: dict[str, str]
    auth: WebhookAuthOut | None
    timeout_seconds: float | None
    rate_limit_per_second: float | None
    max_concurrency: int | None
    ordering: Ordering
    signature_scheme: SignatureScheme
    created_at: Timestamp
    updated_at: Timestamp
    public_key: Sometimes = Field(
        default=None,
        exclude_if=_absent,
        description="ed25519 webhooks only (always): receivers verify signatures with it",
    )


class NewWebhookOut(WebhookOut):
    """The webhook with what receivers need to verify it: `secret` for an HMAC webhook (only
    in this answer, never again), `public_key` for an ed25519 one."""

    secret: Sometimes = Field(
        default=None, exclude_if=_absent, description="HMAC webhooks only: `whsec_…`"
    )


class RotatedWebhookOut(NewWebhookOut):
    previous_valid_until: Timestamp = Field(
        description="until then, deliveries are signed with the previous secret too"
    )


class WebhookPage(Page[WebhookOut]):
    pass


class RecoveredOut(Answer):
    recovered: int = Field(description="failed deliveries that will be sent again")
    since: Timestamp


def _fields(w: Webhook, *, with_secret: bool) -> dict[str, Any]:
    ed25519 = w.secret.startswith(SECRET_KEY_PREFIX)
    fields: dict[str, Any] = {
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
        "auth": WebhookAuthOut(type=cast(AuthType, w.auth_type)) if w.auth_type else None,
        "timeout_seconds": w.timeout_s,
        "rate_limit_per_second": w.rate_limit_per_s,
        "max_concurrency": w.max_concurrency,
        "ordering": w.ordering,
        "signature_scheme": "ed25519" if ed25519 else "hmac",
        "created_at": iso_ms(w.created_at_ms),
        "updated_at": iso_ms(w.updated_at_ms),
        # Public: receivers verify with it. The private key never leaves the server.
        "public_key": public_key_of(w.secret) if ed25519 else None,
    }
    if with_secret:
        fields["secret"] = None if ed25519 else w.secret
    return fields


def webhook_out(w: Webhook) -> WebhookOut:
    return WebhookOut(**_fields(w, with_secret=False))


def new_webhook_out(w: Webhook) -> NewWebhookOut:
    """One of the only two answers that carry an HMAC secret (with rotation's)."""
    return NewWebhookOut(**_fields(w, with_secret=True))


def rotated_webhook_out(w: Webhook, previous_valid_until_ms: int) -> RotatedWebhookOut:
    return RotatedWebhookOut(
        **_fields(w, with_secret=True), previous_valid_until=iso_ms(previous_valid_until_ms)
    )


def recovered_out(recovered: int, since_ms: int) -> RecoveredOut:
    return RecoveredOut(recovered=recovered, since=iso_ms(since_ms))
