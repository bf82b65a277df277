"""Secrets encrypted at rest: what convohook must use again (a webhook's signing secret, a
channel's access token, a webhook's Authorization value) cannot be hashed, so it is sealed with
AES-256-GCM under a key the operator keeps outside the database (`CONVOHOOK_ENCRYPTION_KEY`).

A copy of the database, a backup or a read-only SQL injection then reveals no secret. Pure: no
I/O; the storage calls `seal` on the way in and `open` on the way out.

Stored form: `$convohook-sealed$v1$<key id>$<base64url(nonce ‖ ciphertext ‖ tag)>`. The key id
(the first 8 hex digits of the key's SHA-256) says which key sealed it, so keys can be rotated:
the new key seals, old keys still open (`CONVOHOOK_ENCRYPTION_OLD_KEYS`) until `convohook secrets
seal` has sealed everything again with the new one. The column's name is authenticated with each
value, so a sealed value copied into another column does not open. Values written before a key
was configured are read as they are, and sealed by that command.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from convohook.storage.errors import StorageError

PREFIX = "$convohook-sealed$v1$"
KEY_BYTES = 32
NONCE_BYTES = 12


class SealError(StorageError):
    """A sealed value that cannot be opened: no key, the wrong key, or a damaged value. A
    storage error, so the workers log it and try again rather than stop; `serve` and `worker`
    refuse to start while a key in use is missing."""


def new_key() -> str:
    """A fresh key, as `CONVOHOOK_ENCRYPTION_KEY` takes it (base64url, 32 bytes)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode().rstrip("=")


def parse_key(text: str, name: str = "CONVOHOOK_ENCRYPTION_KEY") -> bytes:
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ValueError(
            f"{name} must be {KEY_BYTES} random bytes in base64url (43 characters); make one "
            "with `convohook secrets new-key`"
        )
    return key


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def is_sealed(stored: str | None) -> bool:
    return stored is not None and stored.startswith(PREFIX)


@dataclass(frozen=True)
class Sealer:
    """Seals with `key` (None: stores as given) and opens with it or any of `old_keys`."""

    key: bytes | None = None
    old_keys: Sequence[bytes] = ()
    _by_id: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys = ([self.key] if self.key is not None else []) + list(self.old_keys)
        object.__setattr__(self, "_by_id", {key_id(k): AESGCM(k) for k in keys})

    def can_open(self, kid: str) -> bool:
        return kid in self._by_id

    @property
    def current_id(self) -> str | None:
        return key_id(self.key) if self.key is not None else None

    def seal(self, column: str, value: str) -> str:
        if self.key is None:
            return value
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._by_id[key_id(self.key)].encrypt(nonce, value.encode(), column.encode())
        token = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{PREFIX}{key_id(self.key)}${token}"

    def open(self, column: str, stored: str) -> str:
        if not stored.startswith(PREFIX):
            return stored  # written before a key was configured
        kid, _, token = stored.removeprefix(PREFIX).partition("$")
        aead = self._by_id.get(kid)
        if aead is None:
            raise SealError(
                f"a secret in {column} is encrypted with key {kid}, which is not configured: set "
                "CONVOHOOK_ENCRYPTION_KEY (or CONVOHOOK_ENCRYPTION_OLD_KEYS) to that key"
            )
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], column.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise SealError(
                f"a secret in {column} does not open with key {kid}: it was damaged or moved"
            ) from exc

    def open_optional(self, column: str, stored: str | None) -> str | None:
        return None if stored is None else self.open(column, stored)

    def needs_sealing(self, stored: str | None) -> bool:
        """Whether `convohook secrets seal` has work on this value: not sealed with the key."""
        if stored is None or self.key is None:
            return False
        return not stored.startswith(f"{PREFIX}{self.current_id}$")


PLAIN = Sealer()


def sealed_with(stored: str) -> str | None:
    """The id of the key a stored value was sealed with; None if it is stored as given."""
    if not stored.startswith(PREFIX):
        return None
    return stored.removeprefix(PREFIX).partition("$")[0]
