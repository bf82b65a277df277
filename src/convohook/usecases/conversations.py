"""Marking a conversation done, which fires Conversation Closed."""

from __future__ import annotations

from convohook.domain.model import Conversation
from convohook.storage.base import Transaction
from convohook.usecases.clock import Clock
from convohook.usecases.events import CONVERSATION_CLOSED, cached_profile, emit_event


def mark_done(
    tx: Transaction,
    org_id: str,
    conversation_id: str,
    *,
    clock: Clock,
    profile_deadline_ms: int = 60_000,
) -> Conversation | None:
    """Close an open conversation; marking a done one again changes nothing (idempotent)."""
    conversation = tx.get_conversation(org_id, conversation_id)
    if conversation is None:
        return None
    if conversation.status == "done":
        return conversation
    # The done time is read only once the conversation is locked: a worker attaching a message
    # to it commits first, so every message attached to it was written before the mark, and a
    # message written after the mark always finds it done (and reopens).
    tx.lock_conversation(conversation_id)
    now_ms = clock()
    if not tx.mark_done(conversation_id, now_ms):
        return tx.get_conversation(org_id, conversation_id)
    channel = tx.get_channel(org_id, conversation.channel_id)
    if channel is not None:
        emit_event(
            tx,
            event_type=CONVERSATION_CLOSED,
            org_id=org_id,
            channel_id=channel.id,
            channel_handle=channel.handle,
            contact=conversation.contact,
            conversation_id=conversation_id,
            reason=None,
            now_ms=now_ms,
            profile=cached_profile(conversation.contact),
            profile_deadline_ms=profile_deadline_ms,
        )
    return tx.get_conversation(org_id, conversation_id)
