"""A webhook as its owner sets it up and changes it, and the rules that go with a change (pure).

The API and the UI both build a `WebhookSpec` or a `WebhookChanges`; the use case applies it
in the transaction that holds the webhook's row, so a change made meanwhile by someone else
(a secret rotated, the webhook disabled for failing) is never written over.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from convohook.domain.model import Webhook

DISABLED_BY_USER = "disabled by user"
# Events with a channel (the conversation's); operations events go to the org's webhooks.
CONVERSATION_EVENTS = frozenset(
    {"conversation.opened", "conversation.closed", "conversation.assigned"}
)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the receiver asked for in `Authorization`: `basic` ("user:password") or `bearer`."""

    type: str
    value: str


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    name: str
    url: str
    channel_ids: tuple[str, ...]
    events: tuple[str, ...]
    enabled: bool = True
    format: str = "doubletick"  # doubletick | standard
    headers: dict[str, str] = field(default_factory=dict)
    auth: Credentials | None = None
    timeout_s: float | None = None
    signature_scheme: str = "hmac"  # hmac | ed25519
    rate_limit_per_s: float | None = None
    max_concurrency: int | None = None
    ordering: str = "none"  # none | fifo


@dataclass(frozen=True, slots=True)
class WebhookChanges:
    """What a person asked to change; None leaves a field as it is."""

    name: str | None = None
    url: str | None = None
    channel_ids: tuple[str, ...] | None = None
    events: tuple[str, ...] | None = None
    # When set, `events` replaces only the events in this set and keeps the others: the UI
    # offers the conversation events and must not drop operations events set through the API.
    events_offered: frozenset[str] | None = None
    enabled: bool | None = None
    format: str | None = None
    headers: dict[str, str] | None = None
    auth: Credentials | None = None
    remove_auth: bool = False
    timeout_s: float | None = None
    rate_limit_per_s: float | None = None
    max_concurrency: int | None = None
    remove_limits: bool = False
    ordering: str | None = None


def new_webhook(
    spec: WebhookSpec, *, webhook_id: str, org_id: str, secret: str, now_ms: int
) -> Webhook:
    return Webhook(
        id=webhook_id,
        org_id=org_id,
        name=spec.name,
        url=spec.url,
        channel_type="INSTAGRAM",
        channel_ids=tuple(sorted(set(spec.channel_ids))),
        events=tuple(dict.fromkeys(spec.events)),
        enabled=spec.enabled,
        disabled_reason=None if spec.enabled else DISABLED_BY_USER,
        secret=secret,
        created_at_ms=now_ms,
        updated_at_ms=now_ms,
        format=spec.format,
        headers=dict(spec.headers),
        auth_type=spec.auth.type if spec.auth else None,
        auth_value=spec.auth.value if spec.auth else None,
        timeout_s=spec.timeout_s,
        rate_limit_per_s=spec.rate_limit_per_s,
        max_concurrency=spec.max_concurrency,
        ordering=spec.ordering,
    )


def follows_no_channel(webhook: Webhook) -> bool:
    """Subscribed to conversation events with no channel to follow: nothing would ever come.
    Only the operations events (webhook.disabled, delivery.exhausted) go without a channel."""
    return bool(CONVERSATION_EVENTS.intersection(webhook.events)) and not webhook.channel_ids


def _events(current: tuple[str, ...], changes: WebhookChanges) -> tuple[str, ...]:
    if not changes.events:
        return current
    if changes.events_offered is None:
        return tuple(dict.fromkeys(changes.events))
    kept = (e for e in current if e not in changes.events_offered)
    return tuple(dict.fromkeys((*changes.events, *kept)))


def apply_changes(current: Webhook, changes: WebhookChanges, now_ms: int) -> Webhook:
    """The webhook after `changes`. Enabling or disabling by hand starts a fresh health window
    and ends the queue kept while it was disabled for failing; otherwise a webhook disabled
    for failing keeps queueing its openings until someone says what to do."""
    enabled = current.enabled if changes.enabled is None else changes.enabled
    auth_type, auth_value = current.auth_type, current.auth_value
    if changes.remove_auth:
        auth_type, auth_value = None, None
    if changes.auth is not None:
        auth_type, auth_value = changes.auth.type, changes.auth.value
    return replace(
        current,
        name=current.name if changes.name is None else changes.name,
        url=current.url if changes.url is None else changes.url,
        channel_ids=current.channel_ids
        if changes.channel_ids is None
        else tuple(sorted(set(changes.channel_ids))),
        events=_events(current.events, changes),
        enabled=enabled,
        disabled_reason=None if enabled else (current.disabled_reason or DISABLED_BY_USER),
        failing_since_ms=current.failing_since_ms if enabled == current.enabled else None,
        queue_while_disabled=current.queue_while_disabled
        and not enabled
        and changes.enabled is None,
        format=changes.format or current.format,
        headers=current.headers if changes.headers is None else dict(changes.headers),
        auth_type=auth_type,
        auth_value=auth_value,
        timeout_s=current.timeout_s if changes.timeout_s is None else changes.timeout_s,
        rate_limit_per_s=None
        if changes.remove_limits
        else (changes.rate_limit_per_s or current.rate_limit_per_s),
        max_concurrency=None
        if changes.remove_limits
        else (changes.max_concurrency or current.max_concurrency),
        ordering=changes.ordering or current.ordering,
        updated_at_ms=now_ms,
    )
