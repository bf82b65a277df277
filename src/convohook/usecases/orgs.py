"""Organisations and their API keys (stored hashed, shown once)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from convohook.domain.ids import BASE62, new_id
from convohook.domain.model import Org
from convohook.storage.base import Transaction

API_KEY_PREFIX = "chk_"


@dataclass(frozen=True, slots=True)
class NewOrg:
    org: Org
    api_key: str  # the only time the plain key exists outside the caller's hands


def hash_api_key(api_key: str) -> str:
    # Keys are 190 bits of randomness: a fast hash is enough (no dictionary to attack), and it
    # keeps authentication to one indexed lookup.
    return hashlib.sha256(api_key.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + "".join(secrets.choice(BASE62) for _ in range(32))


def create_org(tx: Transaction, name: str, now_ms: int) -> NewOrg:
    org = Org(id=new_id("org", now_ms), name=name, created_at_ms=now_ms)
    api_key = new_api_key()
    tx.insert_org(org)
    tx.insert_api_key(new_id("key", now_ms), org.id, hash_api_key(api_key), now_ms)
    return NewOrg(org=org, api_key=api_key)


def org_for_api_key(tx: Transaction, api_key: str) -> Org | None:
    if not api_key.startswith(API_KEY_PREFIX):
        return None
    return tx.org_for_key_hash(hash_api_key(api_key))
