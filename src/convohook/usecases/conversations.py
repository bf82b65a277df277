"""Conversations: marking one done (which fires Conversation Closed), and the Inbox's reads."""

from __future__ import annotations

from dataclasses import dataclass

from convohook.domain.model import Conversation, Message, OutboundMessage, User
from convohook.storage.base import Transaction
from convohook.usecases.channels import channel_handles
from convohook.usecases.clock import Clock
from convohook.usecases.errors import NotFound
from convohook.usecases.events import CONVERSATION_CLOSED, emit_conversation_event


def mark_done(
    tx: Transaction,
    org_id: str,
    conversation_id: str,
    *,
    clock: Clock,
    profile_deadline_ms: int = 60_000,
    reason: str = "manual",
) -> Conversation:
    """Close an open conversation; marking a done one again changes nothing (idempotent).
    `reason`: manual (a person), inactivity, or bot."""
    conversation = get_conversation(tx, org_id, conversation_id)
    if conversation.status == "done":
        return conversation
    # The done time is read only once the conversation is locked: a worker attaching a message
    # to it commits first, so every message attached to it was written before the mark, and a
    # message written after the mark always finds it done (and reopens).
    tx.lock_conversation(conversation_id)
    now_ms = clock()
    if not tx.mark_done(conversation_id, now_ms, reason):
        return get_conversation(tx, org_id, conversation_id)
    channel = tx.get_channel(org_id, conversation.channel_id)
    if channel is not None:
        # The extended format says why it closed (manual, inactivity, bot).
        emit_conversation_event(
            tx,
            CONVERSATION_CLOSED,
            conversation,
            channel,
            reason=reason,
            now_ms=now_ms,
            profile_deadline_ms=profile_deadline_ms,
        )
    return get_conversation(tx, org_id, conversation_id)


# reads ----------------------------------------------------------------------------------------


def list_conversations(
    tx: Transaction,
    org_id: str,
    *,
    status: str | None = None,
    channel_id: str | None = None,
    contact_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    assignee_id: str | None = None,
    unassigned: bool = False,
    tag: str | None = None,
) -> list[Conversation]:
    """Newest first; `unassigned`: only those with no assignee."""
    return tx.list_conversations(
        org_id,
        status=status,
        channel_id=channel_id,
        contact_id=contact_id,
        before=cursor,
        limit=limit,
        assignee_id=assignee_id,
        unassigned=unassigned,
        tag=tag,
    )


def get_conversation(tx: Transaction, org_id: str, conversation_id: str) -> Conversation:
    conversation = tx.get_conversation(org_id, conversation_id)
    if conversation is None:
        raise NotFound("conversation", conversation_id)
    return conversation


@dataclass(frozen=True, slots=True)
class Inbox:
    conversations: list[Conversation]
    channels: dict[str, str]  # handle by channel id
    agents: dict[str, User]  # by id: whom conversations are assigned to


@dataclass(frozen=True, slots=True)
class InboxFilter:
    status: str | None = None
    assignee_id: str | None = None
    unassigned: bool = False
    tag: str | None = None


def inbox(tx: Transaction, org_id: str, shown: InboxFilter, limit: int) -> Inbox:
    return Inbox(
        conversations=list_conversations(
            tx,
            org_id,
            status=shown.status,
            assignee_id=shown.assignee_id,
            unassigned=shown.unassigned,
            tag=shown.tag,
            limit=limit,
        ),
        channels=channel_handles(tx, org_id),
        agents=agents_by_id(tx, org_id),
    )


AGENTS_SHOWN = 500  # an org's people: a select lists them all


def agents_by_id(tx: Transaction, org_id: str) -> dict[str, User]:
    """Oldest first (the order people joined), for selects and names."""
    return {a.id: a for a in reversed(tx.list_agents(org_id, None, AGENTS_SHOWN))}


@dataclass(frozen=True, slots=True)
class ConversationDetail:
    conversation: Conversation
    channel_handle: str
    messages: list[Message | OutboundMessage]  # both directions, oldest first
    history: list[Conversation]  # the customer's conversations on this channel, newest first
    agents: dict[str, User]  # whom it can be assigned to


def conversation_detail(
    tx: Transaction, org_id: str, conversation_id: str, *, messages: int, history: int
) -> ConversationDetail:
    conversation = get_conversation(tx, org_id, conversation_id)
    channel = tx.get_channel(org_id, conversation.channel_id)
    return ConversationDetail(
        conversation=conversation,
        channel_handle=channel.handle if channel else conversation.channel_id,
        messages=tx.list_conversation_messages(org_id, conversation_id, None, messages),
        history=list_conversations(
            tx,
            org_id,
            channel_id=conversation.channel_id,
            contact_id=conversation.contact.id,
            limit=history,
        ),
        agents=agents_by_id(tx, org_id),
    )
