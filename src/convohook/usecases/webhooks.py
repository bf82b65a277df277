"""Webhook secrets and recovery: rotation with a grace period, resending what failed."""

from __future__ import annotations

from dataclasses import dataclass, replace

from convohook.delivery.signing import (
    SECRET_KEY_PREFIX,
    generate_secret,
    generate_signing_keypair,
    public_key_of,
)
from convohook.domain.model import Webhook
from convohook.storage.base import Transaction

HMAC = "hmac"
ED25519 = "ed25519"


def scheme_of(secret: str) -> str:
    return ED25519 if secret.startswith(SECRET_KEY_PREFIX) else HMAC


def new_secret(scheme: str) -> str:
    """A new signing secret: `whsec_…` (HMAC, shared with the receiver) or `whsk_…` (ed25519,
    kept here; receivers verify with its public key `whpk_…`)."""
    return generate_signing_keypair()[0] if scheme == ED25519 else generate_secret()


def what_receivers_need(secret: str) -> dict[str, str]:
    if scheme_of(secret) == ED25519:
        return {"public_key": public_key_of(secret)}
    return {"secret": secret}


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
) -> Rotation | None:
    """Replace the signing secret. During the grace period deliveries carry signatures by the
    old and the new secret, so receivers can switch over without dropping any."""
    current = tx.get_webhook(org_id, webhook_id)
    if current is None:
        return None
    if grace_ms > 0:
        tx.keep_previous_secret(webhook_id, current.secret, now_ms + grace_ms, now_ms)
    rotated = replace(
        current, secret=new_secret(scheme or scheme_of(current.secret)), updated_at_ms=now_ms
    )
    tx.update_webhook(rotated)
    return Rotation(webhook=rotated, previous_valid_until_ms=now_ms + grace_ms)


def recover(
    tx: Transaction, org_id: str, webhook_id: str, *, since_ms: int, now_ms: int
) -> int | None:
    """Send again every failed delivery of this webhook created since `since_ms`."""
    if tx.get_webhook(org_id, webhook_id) is None:
        return None
    return tx.recover_deliveries(webhook_id, since_ms, now_ms)
