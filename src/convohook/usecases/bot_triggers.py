"""Deciding bots' runs (DESIGN section 7) in the transaction that writes what triggers them:
an event (conversation.opened, conversation.closed) or a customer's message
(message.received). A crash before that commit loses the trigger and its runs together; after
it, the runs are on disk and `usecases/bot_runs.py` carries each out once."""

from __future__ import annotations

from convohook.domain.bots import JOURNEY_TRIGGERS
from convohook.domain.ids import new_id
from convohook.domain.model import BotRun
from convohook.storage.base import Transaction

MESSAGE_RECEIVED = "message.received"


def message_key(channel_id: str, mid: str) -> str:
    """What names a customer's message as a trigger: Meta's mid, unique per channel."""
    return f"msg:{channel_id}:{mid}"


def schedule_runs(
    tx: Transaction,
    trigger: str,
    *,
    org_id: str,
    trigger_key: str,
    conversation_id: str,
    contact_id: str,
    text: str | None,
    referral: bool,
    open_reason: str | None,
    happened_at_ms: int,
    now_ms: int,
) -> int:
    """A pending run for each of the org's enabled bots on `trigger`, in the bots' order (oldest
    first, the order they run in). Their conditions are read when they run: the customer's
    profile may not be known yet."""
    if trigger not in JOURNEY_TRIGGERS:
        return 0
    bots = tx.bots_for(org_id, trigger)
    if not bots:
        return 0
    tx.insert_bot_runs(
        [
            BotRun(
                # Ids sort in creation order within a millisecond too (new_id's counter), so
                # the runs of one event run in the bots' order.
                id=new_id("run", now_ms),
                org_id=org_id,
                bot_id=bot.id,
                trigger=trigger,
                trigger_key=trigger_key,
                conversation_id=conversation_id,
                contact_id=contact_id,
                text=text,
                referral=referral,
                reason=open_reason,
                happened_at_ms=happened_at_ms,
                status="pending",
                detail=None,
                outcomes=(),
                created_at_ms=now_ms,
                finished_at_ms=None,
            )
            for bot in bots
        ]
    )
    return len(bots)
