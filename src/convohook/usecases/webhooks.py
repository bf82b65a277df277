"""Webhooks: created, changed, enabled or disabled, deleted, their secrets rotated, what failed
sent again; and the reads of the delivery log.

A change holds the webhook's row for the whole transaction (`lock_webhook`): whatever else
changes the webhook meanwhile (a rotation in another tab, the dispatcher disabling it for
failing) is either seen by this change or waits for it, and is never written over.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from convohook.delivery.signing import (
    SECRET_KEY_PREFIX,
    generate_secret,
    generate_signing_keypair,
)
from convohook.domain.ids import new_id
from convohook.domain.model import Channel, Delivery, Webhook
from convohook.domain.webhooks import (
    WebhookChanges,
    WebhookSpec,
    apply_changes,
    follows_no_channel,
    new_webhook,
)
from convohook.storage.base import Transaction
from convohook.usecases.bots import capture_url
from convohook.usecases.channels import channel_handles, check_channels
from convohook.usecases.errors import Invalid, NotFound

HMAC = "hmac"
ED25519 = "ed25519"


def scheme_of(secret: str) -> str:
    return ED25519 if secret.startswith(SECRET_KEY_PREFIX) else HMAC


def new_secret(scheme: str) -> str:
    """A new signing secret: `whsec_…` (HMAC, shared with the receiver) or `whsk_…` (ed25519,
    kept here; receivers verify with its public key `whpk_…`)."""
    return generate_signing_keypair()[0] if scheme == ED25519 else generate_secret()


def create_webhook(tx: Transaction, org_id: str, spec: WebhookSpec, now_ms: int) -> Webhook:
    """The new webhook, with the only copy of its secret that ever leaves the server."""
    check_channels(tx, org_id, spec.channel_ids)
    webhook = new_webhook(
        spec,
        webhook_id=new_id("wh", now_ms),
        org_id=org_id,
        secret=new_secret(spec.signature_scheme),
        now_ms=now_ms,
    )
    _check_channels_followed(webhook)
    tx.insert_webhook(webhook)
    return webhook


def _check_channels_followed(webhook: Webhook) -> None:
    if follows_no_channel(webhook):
        raise Invalid(
            "channel_ids",
            "conversation events need at least one channel "
            "(only webhook.disabled and delivery.exhausted can go without)",
        )


def _locked(tx: Transaction, org_id: str, webhook_id: str) -> Webhook:
    webhook = tx.lock_webhook(org_id, webhook_id)
    if webhook is None:
        raise NotFound("webhook", webhook_id)
    return webhook


def change_webhook(
    tx: Transaction, org_id: str, webhook_id: str, changes: WebhookChanges, now_ms: int
) -> Webhook:
    current = _locked(tx, org_id, webhook_id)
    if changes.channel_ids is not None:
        check_channels(tx, org_id, changes.channel_ids)
    changed = apply_changes(current, changes, now_ms)
    _check_channels_followed(changed)
    tx.update_webhook(changed)
    return changed


def delete_webhook(tx: Transaction, org_id: str, webhook_id: str) -> None:
    if not tx.delete_webhook(org_id, webhook_id):
        raise NotFound("webhook", webhook_id)


@dataclass(frozen=True, slots=True)
class Rotation:
    webhook: Webhook
    previous_valid_until_ms: int


def rotate_secret(
    tx: Transaction,
    org_id: str,
    webhook_id: str,
    *,
    scheme: str | None,
    grace_ms: int,
    now_ms: int,
) -> Rotation:
    """Replace the signing secret. During the grace period deliveries carry signatures by the
    old and the new secret, so receivers can switch over without dropping any."""
    current = _locked(tx, org_id, webhook_id)
    if grace_ms > 0:
        tx.keep_previous_secret(webhook_id, current.secret, now_ms + grace_ms, now_ms)
    rotated = replace(
        current, secret=new_secret(scheme or scheme_of(current.secret)), updated_at_ms=now_ms
    )
    tx.update_webhook(rotated)
    return Rotation(webhook=rotated, previous_valid_until_ms=now_ms + grace_ms)


def recover(tx: Transaction, org_id: str, webhook_id: str, *, since_ms: int, now_ms: int) -> int:
    """Send again every failed delivery of this webhook created since `since_ms`."""
    get_webhook(tx, org_id, webhook_id)
    return tx.recover_deliveries(webhook_id, since_ms, now_ms)


# reads ----------------------------------------------------------------------------------------


def get_webhook(tx: Transaction, org_id: str, webhook_id: str) -> Webhook:
    webhook = tx.get_webhook(org_id, webhook_id)
    if webhook is None:
        raise NotFound("webhook", webhook_id)
    return webhook


def list_webhooks(tx: Transaction, org_id: str, cursor: str | None, limit: int) -> list[Webhook]:
    return tx.list_webhooks(org_id, cursor, limit)


def list_deliveries(
    tx: Transaction, org_id: str, webhook_id: str, cursor: str | None, limit: int
) -> list[Delivery]:
    """Newest first, each with its attempts."""
    get_webhook(tx, org_id, webhook_id)
    return tx.list_deliveries(org_id, webhook_id, cursor, limit)


@dataclass(frozen=True, slots=True)
class WebhooksOverview:
    webhooks: list[Webhook]
    channels: dict[str, str]  # handle by channel id
    counts: dict[str, tuple[int, int]]  # per webhook: (delivered, failing)


def webhooks_overview(tx: Transaction, org_id: str, limit: int = 200) -> WebhooksOverview:
    return WebhooksOverview(
        webhooks=tx.list_webhooks(org_id, None, limit),
        channels=channel_handles(tx, org_id),
        counts=tx.delivery_counts(org_id),
    )


@dataclass(frozen=True, slots=True)
class WebhookDetail:
    webhook: Webhook
    deliveries: list[Delivery]  # the newest
    channels: dict[str, str]


def webhook_detail(
    tx: Transaction, org_id: str, webhook_id: str, deliveries: int = 50
) -> WebhookDetail:
    webhook = get_webhook(tx, org_id, webhook_id)
    return WebhookDetail(
        webhook=webhook,
        deliveries=tx.list_deliveries(org_id, webhook_id, None, deliveries),
        channels=channel_handles(tx, org_id),
    )


@dataclass(frozen=True, slots=True)
class WebhookFormChoices:
    channels: list[Channel]  # the channels a webhook can follow
    capture_urls: list[str]  # the org's capture bots, offered as the URL


def webhook_form_choices(tx: Transaction, org_id: str, public_url: str) -> WebhookFormChoices:
    return WebhookFormChoices(
        channels=tx.list_channels(org_id, None, 1000),
        capture_urls=[capture_url(public_url, b) for b in tx.list_bots(org_id, None, 50)],
    )
