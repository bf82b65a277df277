"""Replies to customers (DESIGN section 7): queued by a person or the API after the window and
size rules, sent by the sender worker at most once, matched with Meta's echoes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from convohook.delivery.retry import AttemptOutcome, RetryAt, decide_next, parse_retry_after
from convohook.domain.ids import new_id
from convohook.domain.inbound import InboundItem
from convohook.domain.model import Channel, Conversation, DueReply, Message, OutboundMessage
from convohook.domain.replies import (
    RETRYABLE_STATUSES,
    SENT_BY_INSTAGRAM_APP,
    ReplyRefused,
    ReplyWindow,
    check_reply,
    reply_window,
)
from convohook.meta.send import Refused, SendOutcome, Sent, TryAgain, Unknown
from convohook.storage.base import Transaction
from convohook.usecases.conversations import get_conversation
from convohook.usecases.errors import Conflict, Invalid, NotFound

# What a claim whose worker vanished mid-call becomes: it may have reached Meta.
LEASE_EXPIRED = (
    "the sender stopped (a crash or restart) while sending: the reply may have reached "
    "Instagram; check with the customer, then retry if it did not"
)


def window_of(tx: Transaction, channel_id: str, contact_id: str, now_ms: int) -> ReplyWindow:
    return reply_window(tx.last_customer_message_at(channel_id, contact_id), now_ms)


def conversation_window(
    tx: Transaction, org_id: str, conversation_id: str, now_ms: int
) -> ReplyWindow:
    conversation = get_conversation(tx, org_id, conversation_id)
    return window_of(tx, conversation.channel_id, conversation.contact.id, now_ms)


def _check(text: str, human_agent: bool, window: ReplyWindow) -> None:
    try:
        check_reply(text, human_agent=human_agent, window=window)
    except ReplyRefused as refused:
        raise Invalid(refused.field, refused.message) from None


def queue_reply(
    tx: Transaction,
    org_id: str,
    conversation_id: str,
    *,
    text: str,
    human_agent: bool,
    sent_by: str,
    now_ms: int,
) -> OutboundMessage:
    """A reply, queued for the sender once the window and the size allow it (Invalid if not:
    nothing is sent)."""
    conversation = get_conversation(tx, org_id, conversation_id)
    window = window_of(tx, conversation.channel_id, conversation.contact.id, now_ms)
    return queue_reply_to(
        tx, conversation, window, text=text, human_agent=human_agent, sent_by=sent_by, now_ms=now_ms
    )


def queue_reply_to(
    tx: Transaction,
    conversation: Conversation,
    window: ReplyWindow,
    *,
    text: str,
    human_agent: bool,
    sent_by: str,
    now_ms: int,
) -> OutboundMessage:
    """queue_reply for a caller that has read the conversation and its window in this
    transaction already (a bot's run): the same rules, without reading them again."""
    _check(text, human_agent, window)
    message = OutboundMessage(
        id=new_id("out", now_ms),
        org_id=conversation.org_id,
        channel_id=conversation.channel_id,
        contact_id=conversation.contact.id,
        conversation_id=conversation.id,
        recipient_igsid=conversation.contact.igsid,
        text=text,
        human_agent=human_agent,
        status="queued",
        attempts=0,
        next_attempt_at_ms=now_ms,
        error=None,
        mid=None,
        sent_by=sent_by,
        created_at_ms=now_ms,
        sent_at_ms=None,
        updated_at_ms=now_ms,
    )
    tx.insert_outbound(message)
    return message


def retry_reply(
    tx: Transaction, org_id: str, conversation_id: str, message_id: str, now_ms: int
) -> OutboundMessage:
    """A person's decision to send a failed or unknown reply again (Conflict otherwise)."""
    conversation = get_conversation(tx, org_id, conversation_id)
    message = tx.get_outbound(org_id, message_id)
    if message is None or message.conversation_id != conversation.id:
        raise NotFound("message", message_id)
    if message.status not in RETRYABLE_STATUSES:
        raise Conflict(
            f"message {message_id!r} is {message.status}: only a failed or unknown reply can be "
            "sent again"
        )
    _check(
        message.text,
        message.human_agent,
        window_of(tx, message.channel_id, message.contact_id, now_ms),
    )
    tx.requeue_reply(org_id, message_id, now_ms)
    found = tx.get_outbound(org_id, message_id)
    assert found is not None
    return found


def conversation_messages(
    tx: Transaction,
    org_id: str,
    conversation_id: str,
    after: tuple[int, str] | None,
    limit: int,
) -> list[Message | OutboundMessage]:
    """Both directions, oldest first."""
    get_conversation(tx, org_id, conversation_id)
    return tx.list_conversation_messages(org_id, conversation_id, after, limit)


# the sender ---------------------------------------------------------------------------------


def claim_replies(
    tx: Transaction, now_ms: int, lease_until_ms: int, limit: int
) -> tuple[list[DueReply], int]:
    """Due replies, claimed (`sending`) in this durable commit before any call is made; and
    how many claims of dead workers became `unknown`."""
    expired = tx.expire_reply_leases(now_ms, LEASE_EXPIRED)
    return tx.claim_due_replies(now_ms, lease_until_ms, limit), expired


def next_reply_due_at(tx: Transaction) -> int | None:
    return tx.next_reply_due_at()


@dataclass(frozen=True, slots=True)
class SentReply:
    due: DueReply
    outcome: SendOutcome


@dataclass(slots=True)
class RecordedReplies:
    sent: int = 0
    retries: int = 0
    failed: int = 0
    unknown: int = 0
    stale: int = 0  # the claim was no longer ours (its lease ran out meanwhile)


def record_replies(
    tx: Transaction,
    results: Sequence[SentReply],
    *,
    now_ms: int,
    schedule: Sequence[float],
    rng: random.Random,
) -> RecordedReplies:
    recorded = RecordedReplies()
    for item in results:
        due, outcome = item.due, item.outcome
        status: str
        error: str | None = None
        mid: str | None = None
        next_at: int | None = None
        if isinstance(outcome, Sent):
            status, mid = "sent", outcome.mid
            # Its echo may have come first and been kept as written in the app.
            tx.delete_echo_copy(due.channel_id, mid, due.id)
        elif isinstance(outcome, TryAgain):
            now_s = now_ms / 1000
            step = decide_next(
                due.attempts,
                AttemptOutcome(
                    status_code=outcome.status_code,
                    error_class=None if outcome.status_code else "connect",
                    retry_after=parse_retry_after(outcome.retry_after, now_s),
                ),
                schedule,
                now_s,
                rng,
            )
            if isinstance(step, RetryAt):
                status, error, next_at = "queued", outcome.reason, int(step.at * 1000)
            else:
                status = "failed"
                error = f"gave up after {due.attempts} attempts: {outcome.reason}"
        elif isinstance(outcome, Refused):
            status, error = "failed", outcome.reason
        else:
            assert isinstance(outcome, Unknown)
            status, error = "unknown", outcome.reason
        if not tx.finish_reply(
            due.id,
            due.attempts,
            status=status,
            error=error,
            mid=mid,
            next_attempt_at_ms=next_at,
            now_ms=now_ms,
        ):
            recorded.stale += 1
            continue
        if status == "sent" and due.conversation_id is not None:
            # The "either way" clock (inactivity), not the customer's reply window.
            tx.touch_conversation(due.conversation_id, now_ms)
        recorded.sent += status == "sent"
        recorded.retries += status == "queued"
        recorded.failed += status == "failed"
        recorded.unknown += status == "unknown"
    return recorded


# echoes -------------------------------------------------------------------------------------


def apply_echo(tx: Transaction, channel: Channel, item: InboundItem, now_ms: int) -> bool:
    """Meta's echo of a message the business sent: a reply of ours (same mid) is already
    stored; anything else was written elsewhere (the Instagram app) and is stored as sent.
    Never opens or reopens a conversation. True when something new was stored.

    An echo may come before the Send API's answer is recorded, or instead of it (a timeout):
    then the reply still `sending` or `unknown` to the same customer with the same text is the
    one echoed, and is sent. Should that guess be wrong (the same words typed in the app at
    that moment), each message is still shown once: the reply's own echo then finds nothing to
    adopt and is kept as written in the app. Nothing is sent again either way."""
    if item.mid is None:
        return False
    if tx.outbound_by_mid(channel.id, item.mid) is not None:
        return False
    adopted = tx.adopt_echo(
        channel.id, item.customer_igsid, item.text or "", item.mid, item.timestamp_ms
    )
    if adopted is not None:
        if adopted:
            tx.touch_conversation(adopted, item.timestamp_ms)
        return False
    contact, _ = tx.contact_for(channel.org_id, channel.id, item.customer_igsid, now_ms)
    conversation_id = tx.latest_conversation_of(channel.id, contact.id)
    stored = tx.insert_outbound(
        OutboundMessage(
            id=new_id("out", item.timestamp_ms),
            org_id=channel.org_id,
            channel_id=channel.id,
            contact_id=contact.id,
            conversation_id=conversation_id,
            recipient_igsid=item.customer_igsid,
            text=item.text or "",
            human_agent=False,
            status="sent",
            attempts=0,
            next_attempt_at_ms=None,
            error=None,
            mid=item.mid,
            sent_by=SENT_BY_INSTAGRAM_APP,
            created_at_ms=item.timestamp_ms,
            sent_at_ms=item.timestamp_ms,
            updated_at_ms=now_ms,
        )
    )
    if stored and conversation_id is not None:
        tx.touch_conversation(conversation_id, item.timestamp_ms)
    return stored
