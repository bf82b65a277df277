"""Secrets at rest: what is sealed with which key, and sealing everything with the current one."""

from __future__ import annotations

from dataclasses import dataclass

from convohook.storage.base import Transaction
from convohook.storage.sealing import Sealer, sealed_with


@dataclass(frozen=True)
class SecretsAtRest:
    plain: int  # stored as given
    sealed: int  # sealed with a key the configuration has
    unknown_keys: tuple[str, ...]  # ids of keys some secrets are sealed with, not configured


def survey(tx: Transaction, sealer: Sealer) -> SecretsAtRest:
    plain = sealed = 0
    unknown: set[str] = set()
    for _, _, stored in tx.secrets_at_rest():
        kid = sealed_with(stored)
        if kid is None:
            plain += 1
        elif sealer.can_open(kid):
            sealed += 1
        else:
            unknown.add(kid)
    return SecretsAtRest(plain, sealed, tuple(sorted(unknown)))


def seal_all(tx: Transaction, sealer: Sealer) -> int:
    """Seal with the current key every secret stored as given or under an older key; returns
    how many were sealed. Raises SealError for a secret no configured key opens."""
    done = 0
    for column, row_id, stored in tx.secrets_at_rest():
        if sealer.needs_sealing(stored):
            value = sealer.open(column, stored)
            done += tx.reseal_secret(column, row_id, stored, value)
    return done
