"""Assigning a conversation to one of the org's agents, by hand or in turn (round robin), and
the `conversation.assigned` event every change of assignee fires (DESIGN section 7)."""

from __future__ import annotations

from convohook.domain.model import Conversation, User
from convohook.storage.base import Transaction
from convohook.usecases.agents import get_agent
from convohook.usecases.clock import Clock
from convohook.usecases.conversations import get_conversation
from convohook.usecases.errors import Invalid, NotFound
from convohook.usecases.events import CONVERSATION_ASSIGNED, emit_conversation_event

# Who assigned, when not a signed-in person (whose user id is said instead).
BY_API = "api"
BY_BOT = "bot"


def _agent_fields(agent: User | None) -> dict[str, str] | None:
    return None if agent is None else {"id": agent.id, "name": agent.name, "email": agent.email}


def assign(
    tx: Transaction,
    org_id: str,
    conversation_id: str,
    agent_id: str | None,
    *,
    by: str,
    clock: Clock,
    profile_deadline_ms: int = 60_000,
) -> Conversation:
    """Assign it to `agent_id` (any agent of the org, available or not), or unassign it (None).
    Assigning the agent it already has changes nothing and fires nothing. `by`: the user id of
    the person who assigned, BY_API or BY_BOT."""
    get_conversation(tx, org_id, conversation_id)
    agent = None if agent_id is None else get_agent(tx, org_id, agent_id)
    return _change_assignee(tx, org_id, conversation_id, agent, by, clock, profile_deadline_ms)


def assign_round_robin(
    tx: Transaction,
    org_id: str,
    conversation_id: str,
    *,
    by: str,
    clock: Clock,
    profile_deadline_ms: int = 60_000,
) -> Conversation:
    """Hand it to the next available agent in turn. The turn is taken in this transaction: if
    it rolls back, the turn is not used up, and concurrent callers (other workers, other
    processes) each get a different one."""
    get_conversation(tx, org_id, conversation_id)
    agent = tx.take_round_robin_turn(org_id)
    if agent is None:
        raise Invalid(
            "strategy", "round_robin found no available agent: make an agent available first"
        )
    return _change_assignee(tx, org_id, conversation_id, agent, by, clock, profile_deadline_ms)


def _change_assignee(
    tx: Transaction,
    org_id: str,
    conversation_id: str,
    agent: User | None,
    by: str,
    clock: Clock,
    profile_deadline_ms: int,
) -> Conversation:
    # Read again under the lock: a concurrent assignment has committed or waits for us, so the
    # previous assignee the event names is the one this change replaces.
    tx.lock_conversation(conversation_id)
    current = get_conversation(tx, org_id, conversation_id)
    new_id = None if agent is None else agent.id
    if current.assignee_id == new_id:
        return current
    previous = None
    if current.assignee_id is not None:
        previous = tx.get_agent(org_id, current.assignee_id)
    tx.set_assignee(conversation_id, new_id)
    channel = tx.get_channel(org_id, current.channel_id)
    if channel is None:  # deleted meanwhile; the conversation goes with it
        raise NotFound("conversation", conversation_id)
    now_ms = clock()
    emit_conversation_event(
        tx,
        CONVERSATION_ASSIGNED,
        current,
        channel,
        reason=None,
        now_ms=now_ms,
        profile_deadline_ms=profile_deadline_ms,
        details={
            "assignee": _agent_fields(agent),
            "previousAssignee": _agent_fields(previous),
            "assignedBy": by,
        },
    )
    return get_conversation(tx, org_id, conversation_id)
