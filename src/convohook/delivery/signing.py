"""Standard Webhooks signatures for outbound deliveries: `v1` (HMAC-SHA256) and `v1a` (ed25519).

Receivers verify `v1` with the public `standardwebhooks` or `svix` libraries unchanged, so the
secret format, the signed content and the header layout follow that spec to the byte. `v1a` is
the asymmetric scheme of the Svix server: the sender holds a `whsk_` secret key, receivers hold
only the matching `whpk_` public key, and the keys are encoded exactly as Svix encodes them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
SECRET_KEY_PREFIX = "whsk_"  # noqa: S105 - the format's prefix, not a secret
PUBLIC_KEY_PREFIX = "whpk_"
_SECRET_BYTES = 32
_ED25519_SEED_BYTES = 32
_ED25519_PUBLIC_BYTES = 32
# Svix's layout for a `whsk_` key: the 32-byte seed followed by the 32-byte public key.
_ED25519_SECRET_KEY_BYTES = _ED25519_SEED_BYTES + _ED25519_PUBLIC_BYTES
_ED25519_SIGNATURE_BYTES = 64


class InvalidSecret(ValueError):
    """A malformed signing secret or key: a `whsec_` secret that is not non-empty base64, or a
    `whsk_` / `whpk_` ed25519 key that is not base64 of the expected bytes. The message never
    contains the value itself."""


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


def _signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def _strict_b64decode(encoded: str) -> bytes | None:
    """Strict base64 (missing padding tolerated), or None when `encoded` is not base64."""
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _private_key(secret_key: str) -> Ed25519PrivateKey:
    """The ed25519 key of a `whsk_` secret key (the prefix may be left off, as with `whsec_`)."""
    what = (
        "ed25519 secret key must be 'whsk_' followed by base64 of 64 bytes (the 32-byte seed "
        "then the 32-byte public key, as made by generate_signing_keypair() or the Svix server)"
    )
    raw = _strict_b64decode(secret_key.removeprefix(SECRET_KEY_PREFIX))
    if raw is None:
        raise InvalidSecret(
            f"{what}, got a value of {len(secret_key)} characters that is not valid base64"
        )
    if len(raw) != _ED25519_SECRET_KEY_BYTES:
        raise InvalidSecret(f"{what}, got base64 of {len(raw)} bytes")
    private = Ed25519PrivateKey.from_private_bytes(raw[:_ED25519_SEED_BYTES])
    # A key whose second half is not the seed's public key would sign for a public key other
    # than the one it advertises; receivers holding that `whpk_` would reject every delivery.
    if not hmac.compare_digest(_raw_public(private.public_key()), raw[_ED25519_SEED_BYTES:]):
        raise InvalidSecret(
            f"{what}, got 64 bytes whose public half does not belong to its seed (corrupted key?)"
        )
    return private


def _public_key(public_key: str) -> Ed25519PublicKey:
    """The ed25519 key of a `whpk_` public key (the prefix may be left off)."""
    what = "ed25519 public key must be 'whpk_' followed by base64 of 32 bytes"
    raw = _strict_b64decode(public_key.removeprefix(PUBLIC_KEY_PREFIX))
    if raw is None:
        raise InvalidSecret(
            f"{what}, got a value of {len(public_key)} characters that is not valid base64"
        )
    if len(raw) != _ED25519_PUBLIC_BYTES:
        raise InvalidSecret(f"{what}, got base64 of {len(raw)} bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def _encode_public(public: Ed25519PublicKey) -> str:
    return PUBLIC_KEY_PREFIX + base64.b64encode(_raw_public(public)).decode("ascii")


def generate_signing_keypair() -> tuple[str, str]:
    """A new ed25519 key pair `(secret_key, public_key)` in the Svix server's encoding:
    `whsk_` + base64(32-byte seed || 32-byte public key) and `whpk_` + base64(public key)."""
    private = Ed25519PrivateKey.generate()
    public = _raw_public(private.public_key())
    seed = private.private_bytes_raw()
    secret_key = SECRET_KEY_PREFIX + base64.b64encode(seed + public).decode("ascii")
    return secret_key, PUBLIC_KEY_PREFIX + base64.b64encode(public).decode("ascii")


def public_key_of(secret_key: str) -> str:
    """The `whpk_` public key that receivers need to verify what `secret_key` signs."""
    return _encode_public(_private_key(secret_key).public_key())


def sign_v1a(secret_key: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1a,<base64 ed25519 signature>` of `{msg_id}.{timestamp}.{body}` with a `whsk_` key.
    Ed25519 signatures are deterministic: the same key and content always give the same value."""
    signature = _private_key(secret_key).sign(_signed_content(msg_id, timestamp, body))
    return "v1a," + base64.b64encode(signature).decode("ascii")


def verify_v1a(
    public_key: str, msg_id: str, timestamp: int, body: bytes, signature_header: str
) -> bool:
    """Whether any `v1a` entry of a `webhook-signature` header is a valid ed25519 signature of
    `{msg_id}.{timestamp}.{body}` under the `whpk_` public key. Entries of other versions and
    malformed entries are skipped. Only the signature is checked: a receiver must also reject
    timestamps too far from its clock (the reference libraries allow 300 s either way).

    Raises InvalidSecret for a malformed public key. Nothing secret is compared here: verifying
    needs only public values, so stopping at the first matching entry leaks nothing."""
    public = _public_key(public_key)
    content = _signed_content(msg_id, timestamp, body)
    for entry in signature_header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1a":
            continue
        signature = _strict_b64decode(encoded)
        if signature is None or len(signature) != _ED25519_SIGNATURE_BYTES:
            continue
        try:
            public.verify(signature, content)
        except InvalidSignature:
            continue
        return True
    return False


def _sign_any(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    if secret.startswith(SECRET_KEY_PREFIX):
        return sign_v1a(secret, msg_id, timestamp, body)
    if secret.startswith(PUBLIC_KEY_PREFIX):
        raise InvalidSecret(
            "a 'whpk_' public key cannot sign: configure the matching 'whsk_' secret key and "
            "give receivers the public key"
        )
    return sign(secret, msg_id, timestamp, body)


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """One signature per secret, space-separated and in the order given: during a rotation the
    receiver may still hold the old secret or already the new one, and verifiers accept any
    matching entry. A `whsk_` secret key gives a `v1a` (ed25519) entry; anything else is an HMAC
    secret (with or without its `whsec_` prefix) and gives a `v1` entry."""
    if isinstance(secrets, str):
        # A bare string is a Sequence[str] too; iterating it would sign with each character.
        raise TypeError("signature_header() takes a sequence of secrets, not a single string")
    if not secrets:
        raise InvalidSecret("no signing secret: a webhook needs at least one secret")
    return " ".join(_sign_any(secret, msg_id, timestamp, body) for secret in secrets)


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
