"""An org's users: passwords (scrypt), sessions (random tokens stored hashed) and CSRF tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from convohook.domain.ids import new_id
from convohook.domain.model import Session, User
from convohook.storage.base import Transaction

# scrypt, RFC 7914: memory-hard, in the standard library. n=2**15 costs ~50 ms and 32 MiB.
_N, _R, _P = 2**15, 8, 1
_MAXMEM = 64 * 1024 * 1024
SESSION_TTL_MS = 14 * 86_400_000
MIN_PASSWORD = 10


class WeakPassword(ValueError):
    pass


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return scheme == "scrypt" and hmac.compare_digest(actual, expected)


# Checking a password for an unknown email costs as much as for a known one: no user enumeration.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def create_user(
    tx: Transaction,
    org_id: str,
    email: str,
    password: str,
    now_ms: int,
    name: str | None = None,
) -> User:
    """Someone who signs in to the UI, and an agent of the org (named after their email when
    no name is given)."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"the password must have at least {MIN_PASSWORD} characters")
    cleaned = email.strip().lower()
    user = User(
        new_id("usr", now_ms),
        org_id,
        cleaned,
        hash_password(password),
        now_ms,
        name=(name or "").strip() or cleaned,
    )
    tx.insert_user(user)
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str  # goes into the cookie; only its hash is stored
    session: Session


def sign_in(tx: Transaction, email: str, password: str, now_ms: int) -> SignedIn | None:
    user = tx.user_by_email(email.strip().lower())
    if not verify_password(password, user.password_hash if user else _DUMMY_HASH) or not user:
        return None
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires = now_ms + SESSION_TTL_MS
    tx.insert_session(_token_hash(token), user.id, csrf, now_ms, expires)
    return SignedIn(token=token, session=Session(user, csrf, expires))


def session_for(tx: Transaction, token: str, now_ms: int) -> Session | None:
    return tx.session_by_hash(_token_hash(token), now_ms) if token else None


def sign_out(tx: Transaction, token: str) -> None:
    tx.delete_session(_token_hash(token))
