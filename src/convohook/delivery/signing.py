"""Standard Webhooks `v1` (HMAC-SHA256) signatures for outbound deliveries.

Receivers verify these with the public `standardwebhooks` or `svix` libraries unchanged, so the
secret format, the signed content and the header layout follow that spec to the byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
_SECRET_BYTES = 32


class InvalidSecret(ValueError):
    """A signing secret that is not `whsec_` followed by non-empty base64."""


def generate_secret() -> str:
    """A new secret: `whsec_` + base64 of 32 random bytes (the spec recommends 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    # The reference libraries accept the secret with or without its prefix and with or without
    # base64 padding; accepting the same keeps secrets copied from other tools working.
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        # Strict decoding: the reference libraries silently skip stray characters, which would
        # turn a mistyped secret into a different key instead of an error.
        raise InvalidSecret(
            "webhook secret must be 'whsec_' followed by base64 (e.g. one made by "
            f"generate_secret()), got a value of {len(secret)} characters that is not valid base64"
        ) from None
    if not key:
        raise InvalidSecret("webhook secret is empty: expected 'whsec_' followed by base64")
    return key


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `{msg_id}.{timestamp}.{body}` with the decoded secret."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per secret, space-separated: during a rotation the receiver may still hold
    the old secret or already the new one, and verifiers accept any matching entry."""
    if isinstance(secrets, str):
        # A bare string is a Sequence[str] too; iterating it would sign with each character.
        raise TypeError("signature_header() takes a sequence of secrets, not a single string")
    if not secrets:
        raise InvalidSecret("no signing secret: a webhook needs at least one secret")
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets)


def webhook_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The Standard Webhooks request headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        "content-type": "application/json",
    }
