"""What the probes and the metrics read: the schema's version and the backlog."""

from __future__ import annotations

from convohook.domain.model import Backlog
from convohook.storage.base import Transaction


def applied_migrations(tx: Transaction) -> set[int]:
    return tx.applied_migrations()


def backlog(tx: Transaction, now_ms: int) -> Backlog:
    return tx.backlog(now_ms)
