"""Inactivity (DESIGN section 7): closing the conversations whose channel's `auto_done_after`
has passed without a message either way, a bounded batch per transaction."""

from __future__ import annotations

from dataclasses import dataclass

from convohook.domain.model import Channel
from convohook.storage.base import Transaction
from convohook.usecases.clock import Clock
from convohook.usecases.events import CONVERSATION_CLOSED, emit_conversation_event

INACTIVITY = "inactivity"


@dataclass(frozen=True, slots=True)
class Sweep:
    claimed: int  # due when the batch was claimed
    closed: int  # of those, closed: the others had a message (or a person) come first
    limit: int

    @property
    def full(self) -> bool:
        """Whether the batch was full: more may be due right away."""
        return self.claimed >= self.limit


def close_idle_conversations(
    tx: Transaction, *, clock: Clock, limit: int, profile_deadline_ms: int = 60_000
) -> Sweep:
    """Close up to `limit` overdue open conversations, each with its `conversation.closed`
    event in this same transaction (the outbox).

    Why each is closed once, and never after a message: the claim locks the rows it returns
    (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so other closers take other rows; SQLite: one writer),
    and the close itself is conditional on the conversation being open and still due. A message
    attached before the claim has moved the deadline, so the row is not claimed or the close
    changes nothing; one attached after must first lock the row (`open_conversation_of`), waits
    for this commit, finds the conversation done and opens a new one. The done time is the
    deadline, so a customer who writes after it, even while this batch ran, reopens."""
    now_ms = clock()
    claimed = tx.claim_idle_conversations(now_ms, limit)
    closed = tx.close_idle(claimed, now_ms)
    if len(closed) < len(claimed):
        # Claimed by a deadline a change of the setting has made stale: it gets the current
        # one now, or the next claim would find it again, and again.
        tx.refresh_idle(sorted(set(claimed) - set(closed)))
    channels: dict[str, Channel | None] = {}
    for conversation in tx.conversations_by_id(closed):
        key = conversation.channel_id
        if key not in channels:
            channels[key] = tx.get_channel(conversation.org_id, key)
        channel = channels[key]
        if channel is None:  # a conversation's channel is a foreign key: cannot happen
            continue
        emit_conversation_event(
            tx,
            CONVERSATION_CLOSED,
            conversation,
            channel,
            reason=INACTIVITY,
            now_ms=now_ms,
            profile_deadline_ms=profile_deadline_ms,
        )
    return Sweep(claimed=len(claimed), closed=len(closed), limit=limit)


def reschedule_deadlines(tx: Transaction, *, limit: int) -> bool:
    """After a change of a channel's auto_done_after, recompute up to `limit` of its open
    conversations' deadlines, carrying on where the last batch stopped; returns whether there
    may be more. Until each is done, its stored deadline may be the old setting's: too early
    is harmless (`close_idle` checks the current setting), too late closes it late by the time
    the batches take."""
    pending = tx.claim_rescheduling()
    if pending is None:
        return False
    channel_id, after = pending
    tx.rescheduled(channel_id, tx.reschedule_idle(channel_id, after, limit))
    return True
