"""Retention: payloads and attempt logs are kept for a number of days, then deleted.

What is deleted: finished deliveries (succeeded or failed) and their attempts, events with no
delivery left, processed notifications, bot captures and finished bot runs, once older than the
retention window.
What is kept: contacts, conversations and messages: the state that decides the next opening
(and the `dtCustomerId` that must stay stable for ever). Pending work is never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from convohook.storage.base import Transaction

BATCH = 1_000  # rows per statement: short transactions, no long write locks


@dataclass(frozen=True, slots=True)
class Cleaned:
    deliveries: int
    events: int
    notifications: int
    captures: int
    bot_runs: int = 0

    @property
    def total(self) -> int:
        return self.deliveries + self.events + self.notifications + self.captures + self.bot_runs


def clean_once(tx: Transaction, *, before_ms: int) -> Cleaned:
    """One bounded batch of deletions; call until it returns a total of 0."""
    return Cleaned(
        deliveries=tx.delete_finished_deliveries(before_ms, BATCH),
        events=tx.delete_orphan_events(before_ms, BATCH),
        notifications=tx.delete_processed_notifications(before_ms, BATCH),
        captures=tx.delete_captures(before_ms, BATCH),
        bot_runs=tx.delete_finished_bot_runs(before_ms, BATCH),
    )
