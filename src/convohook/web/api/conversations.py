"""/api/v1/conversations: each customer's conversations, their messages both ways, replies
(queued for the sender, sent again by a person's retry), the reply window, marking one done."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Query
from pydantic import ConfigDict, Field, model_validator

from convohook.domain.model import Conversation, Message, OutboundMessage
from convohook.domain.payload import iso_ms
from convohook.domain.replies import SENT_BY_API, ReplyWindow
from convohook.domain.text import NOT_BLANK
from convohook.usecases import assignment, conversations, replies, tags
from convohook.usecases.assignment import BY_API
from convohook.usecases.tags import MAX_TAGS, TAG_MAX_LENGTH
from convohook.web.api.common import (
    NO_NUL,
    PREFIX,
    Answer,
    Cursor,
    Filter,
    Limit,
    ObjectId,
    OrgDep,
    Page,
    RequestBody,
    SvcDep,
    Timestamp,
    errors,
    iso,
    page,
)
from convohook.web.api.contacts import ContactOut, contact_out
from convohook.web.errors import ApiError

ConversationStatus = Literal["open", "done"]
OpeningReason = Literal["first_message", "reopened"]
ClosedReason = Literal["manual", "inactivity", "bot"]


class ConversationOut(Answer):
    id: str
    status: ConversationStatus
    reason: OpeningReason = Field(description="why it opened")
    channel_id: str
    contact: ContactOut
    opened_at: Timestamp
    done_at: Timestamp | None
    assignee_id: str | None = Field(description="the agent (an org user) it is assigned to")
    tags: list[str] = Field(description="sorted")
    closed_reason: ClosedReason | None = Field(
        description="why it was marked done: by a person (manual), for inactivity (the "
        "channel's auto_done_after), or by a bot; null while open"
    )
    last_message_at: Timestamp | None = Field(
        description="the last message either way: Meta's time of the customer's, the time a "
        "reply went out"
    )


class ConversationPage(Page[ConversationOut]):
    pass


# Trimmed before use: at least one character that is not a blank.
Tag = Annotated[str, Field(min_length=1, max_length=TAG_MAX_LENGTH, pattern=NOT_BLANK)]


def _given_or_left_out(schema: dict[str, Any]) -> None:
    """In the document, a field that is given or left out, never null (None only says it was
    left out, and the model refuses an explicit null)."""
    kept = [s for s in schema.pop("anyOf", []) if s.get("type") != "null"]
    schema.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
    schema.pop("default", None)


class AssignIn(RequestBody):
    """Exactly one of `agent_id` (null unassigns) and `strategy`."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["agent_id"]}, {"required": ["strategy"]}]}
    )

    agent_id: str | None = Field(
        default=None,
        pattern=NO_NUL,
        description="an agent of the org (any, available or not); null unassigns",
    )
    strategy: Literal["round_robin"] | None = Field(
        default=None,
        description="round_robin: the next available agent in turn",
        json_schema_extra=_given_or_left_out,
    )

    @model_validator(mode="after")
    def _one_way(self) -> AssignIn:
        given = self.model_fields_set
        if "strategy" in given and self.strategy is None:
            raise ValueError("strategy: must be round_robin (or leave it out and give agent_id)")
        if {"agent_id", "strategy"} <= given:
            raise ValueError("agent_id: give either agent_id or strategy, not both")
        if not given & {"agent_id", "strategy"}:
            raise ValueError(
                "agent_id: required: an agent's id, null to unassign, or "
                'instead "strategy": "round_robin"'
            )
        return self


class TagsIn(RequestBody):
    add: list[Tag] = Field(default=[], max_length=MAX_TAGS)
    remove: list[Tag] = Field(default=[], max_length=MAX_TAGS)


ReplyStatus = Literal["queued", "sending", "sent", "failed", "unknown"]
Direction = Literal["in", "out"]


class MessageOut(Answer):
    id: str = Field(description="the mid of a customer's message; the reply's id for `out`")
    direction: Direction = Field(description="`in` from the customer, `out` from the business")
    mid: str | None = Field(
        description="Meta's message id; null for a reply Meta has not answered yet"
    )
    kind: str = Field(description="message, postback, referral…; `message` for `out`")
    text: str | None = Field(description="null for attachments")
    timestamp: Timestamp = Field(
        description="Meta's time for a customer's message (or an echo); when a reply was written"
    )
    received_at: Timestamp
    status: ReplyStatus | None = Field(
        description="`out` only: queued (or sending), sent, failed, or unknown (may have "
        "reached Instagram: never sent again but by a retry); null for `in`"
    )
    error: str | None = Field(description="`out` only: why it failed or is unknown")
    human_agent: bool | None = Field(description="`out` only: sent with the HUMAN_AGENT tag")
    sent_by: str | None = Field(
        description="`out` only: a user id, `api`, `bot`, or `instagram_app` (written in the "
        "Instagram app, learnt from Meta's echo)"
    )
    sent_at: Timestamp | None = Field(description="`out` only: when Meta took it")


class ReplyIn(RequestBody):
    # The document says what it can (not blank, 1,000 characters at most); 1,000 bytes of
    # UTF-8 is checked by the rule itself (domain/replies.py), with its own message.
    text: str = Field(
        min_length=1,
        max_length=1000,
        pattern=r"\S",
        description="not blank; at most 1,000 bytes of UTF-8",
    )
    human_agent: bool = Field(
        default=False,
        description="a person's reply, sent with Meta's HUMAN_AGENT tag: needed from 24 hours "
        "to 7 days after the customer's last message",
    )


class ReplyAccepted(Answer):
    id: str
    status: ReplyStatus


WindowStateName = Literal["open", "human_agent", "closed"]


class ReplyWindowOut(Answer):
    state: WindowStateName = Field(
        description="open: any reply; human_agent: only a person's, with human_agent true; "
        "closed: none until the customer writes again"
    )
    until: Timestamp | None = Field(description="when this state ends; null once closed")
    last_customer_message_at: Timestamp | None = Field(
        description="Meta's time of the customer's last message on the channel"
    )
    reason: str


class MessagePage(Page[MessageOut]):
    pass


def conversation_out(v: Conversation) -> ConversationOut:
    return ConversationOut(
        id=v.id,
        status=cast(ConversationStatus, v.status),
        reason=cast(OpeningReason, v.reason),
        channel_id=v.channel_id,
        contact=contact_out(v.contact),
        opened_at=iso_ms(v.opened_at_ms),
        done_at=iso(v.done_at_ms),
        assignee_id=v.assignee_id,
        tags=list(v.tags),
        closed_reason=cast(ClosedReason | None, v.closed_reason),
        last_message_at=iso(v.last_message_at_ms),
    )


def message_out(m: Message | OutboundMessage) -> MessageOut:
    if isinstance(m, OutboundMessage):
        return MessageOut(
            id=m.id,
            direction="out",
            mid=m.mid,
            kind="message",
            text=m.text,
            timestamp=iso_ms(m.created_at_ms),
            received_at=iso_ms(m.created_at_ms),
            status=cast(ReplyStatus, m.status),
            error=m.error,
            human_agent=m.human_agent,
            sent_by=m.sent_by,
            sent_at=iso(m.sent_at_ms),
        )
    return MessageOut(
        id=m.mid,
        direction="in",
        mid=m.mid,
        kind=m.kind,
        text=m.text,
        timestamp=iso_ms(m.timestamp_ms),
        received_at=iso_ms(m.received_at_ms),
        status=None,
        error=None,
        human_agent=None,
        sent_by=None,
        sent_at=None,
    )


def message_cursor(m: Message | OutboundMessage) -> str:
    if isinstance(m, OutboundMessage):
        return f"{m.created_at_ms}:{m.id}"
    return f"{m.timestamp_ms}:{m.mid}"


def window_out(w: ReplyWindow) -> ReplyWindowOut:
    return ReplyWindowOut(
        state=w.state.value,
        until=iso(w.until_ms),
        last_customer_message_at=iso(w.last_customer_message_ms),
        reason=w.reason,
    )


# `TIMESTAMP_MS:MID` (a mid may itself hold colons; the timestamp never does). Fifteen digits
# reach past the year 30000 and stay within the databases' 64-bit integers.
MESSAGE_CURSOR = r"^(?:[0-9]{1,15}:[^\x00]*)?$"
MessageCursor = Annotated[
    str | None,
    Query(
        # Published, and checked below with a message that says where a cursor comes from.
        json_schema_extra={"pattern": MESSAGE_CURSOR},
        description="the `next` of the previous page",
    ),
]


def parse_message_cursor(cursor: str | None) -> tuple[int, str] | None:
    if not cursor:
        return None
    if not re.fullmatch(MESSAGE_CURSOR, cursor):
        problem = f"{cursor[:100]!r} is not a cursor from this list's `next`"
        raise ApiError.invalid("cursor", problem)
    ms, _, mid = cursor.partition(":")
    return int(ms), mid


router = APIRouter(prefix=PREFIX, tags=["conversations"])


@router.get("/conversations")
async def list_conversations(
    org: OrgDep,
    svc: SvcDep,
    status: ConversationStatus | None = None,
    channel_id: Filter = None,
    contact_id: Filter = None,
    assignee_id: Filter = None,
    unassigned: Annotated[bool, Query(description="only those assigned to nobody")] = False,
    tag: Filter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ConversationPage:
    """Newest first."""
    rows = await svc.db.read(
        conversations.list_conversations,
        org.id,
        status=status,
        channel_id=channel_id,
        contact_id=contact_id,
        assignee_id=assignee_id,
        unassigned=unassigned,
        tag=tag,
        cursor=cursor,
        limit=limit + 1,
    )
    return page(ConversationPage, rows, limit, conversation_out, lambda v: v.id)


@router.get("/conversations/{conversation_id}", responses=errors(404))
async def get_conversation(conversation_id: ObjectId, org: OrgDep, svc: SvcDep) -> ConversationOut:
    conversation = await svc.db.read(conversations.get_conversation, org.id, conversation_id)
    return conversation_out(conversation)


@router.get("/conversations/{conversation_id}/messages", responses=errors(404))
async def list_messages(
    conversation_id: ObjectId,
    org: OrgDep,
    svc: SvcDep,
    limit: Limit = 50,
    cursor: MessageCursor = None,
) -> MessagePage:
    """Both directions, oldest first: the customer's messages, and the business's (replies
    through convohook with their status, and what was written in the Instagram app)."""
    after = parse_message_cursor(cursor)
    rows = await svc.db.read(
        replies.conversation_messages, org.id, conversation_id, after, limit + 1
    )
    return page(MessagePage, rows, limit, message_out, message_cursor)


@router.post("/conversations/{conversation_id}/messages", status_code=202, responses=errors(404))
async def send_reply(
    conversation_id: ObjectId, body: ReplyIn, org: OrgDep, svc: SvcDep
) -> ReplyAccepted:
    """Queue a reply to the customer; the workers send it through Instagram's Send API, at
    most once. Refused with 422, before anything is sent, when it is empty or over 1,000
    bytes, or when Instagram's window does not allow it (more than 24 hours after the
    customer's last message: only with `human_agent`; more than 7 days: not at all)."""
    message = await svc.db.run(
        replies.queue_reply,
        org.id,
        conversation_id,
        text=body.text,
        human_agent=body.human_agent,
        sent_by=SENT_BY_API,
        now_ms=svc.clock(),
    )
    svc.signals.replies.notify()
    return ReplyAccepted(id=message.id, status=cast(ReplyStatus, message.status))


@router.post(
    "/conversations/{conversation_id}/messages/{message_id}/retry",
    status_code=202,
    responses=errors(404, 409),
)
async def retry_reply(
    conversation_id: ObjectId, message_id: ObjectId, org: OrgDep, svc: SvcDep
) -> ReplyAccepted:
    """Send a `failed` or `unknown` reply again (409 for any other): a person's decision,
    since an `unknown` one may have reached the customer already. The window is checked again."""
    message = await svc.db.run(
        replies.retry_reply, org.id, conversation_id, message_id, svc.clock()
    )
    svc.signals.replies.notify()
    return ReplyAccepted(id=message.id, status=cast(ReplyStatus, message.status))


@router.get("/conversations/{conversation_id}/reply-window", responses=errors(404))
async def reply_window(conversation_id: ObjectId, org: OrgDep, svc: SvcDep) -> ReplyWindowOut:
    """Whether a reply may be sent now, until when, and why."""
    window = await svc.db.read(replies.conversation_window, org.id, conversation_id, svc.clock())
    return window_out(window)


@router.post("/conversations/{conversation_id}/done", responses=errors(404))
async def mark_conversation_done(
    conversation_id: ObjectId, org: OrgDep, svc: SvcDep
) -> ConversationOut:
    """Fires `conversation.closed`; marking a done conversation again changes nothing."""
    conversation = await svc.db.run(
        conversations.mark_done,
        org.id,
        conversation_id,
        clock=svc.clock,
        profile_deadline_ms=int(svc.settings.profile_deadline * 1000),
    )
    svc.signals.deliveries.notify()
    svc.signals.profiles.notify()
    svc.signals.bots.notify()  # bots on conversation.closed
    return conversation_out(conversation)


@router.post("/conversations/{conversation_id}/assign", responses=errors(400, 404))
async def assign_conversation(
    conversation_id: ObjectId, body: AssignIn, org: OrgDep, svc: SvcDep
) -> ConversationOut:
    """`{"agent_id": …}` (null unassigns) or `{"strategy": "round_robin"}`. Fires
    `conversation.assigned` when the assignee changes; assigning the agent it already has
    changes nothing."""
    deadline_ms = int(svc.settings.profile_deadline * 1000)
    if body.strategy == "round_robin":
        conversation = await svc.db.run(
            assignment.assign_round_robin,
            org.id,
            conversation_id,
            by=BY_API,
            clock=svc.clock,
            profile_deadline_ms=deadline_ms,
        )
    else:
        conversation = await svc.db.run(
            assignment.assign,
            org.id,
            conversation_id,
            body.agent_id,
            by=BY_API,
            clock=svc.clock,
            profile_deadline_ms=deadline_ms,
        )
    svc.signals.deliveries.notify()
    svc.signals.profiles.notify()
    return conversation_out(conversation)


@router.post("/conversations/{conversation_id}/tags", responses=errors(400, 404, 409))
async def change_tags(
    conversation_id: ObjectId, body: TagsIn, org: OrgDep, svc: SvcDep
) -> ConversationOut:
    """Adds, then removes; tags are trimmed, at most 20 per conversation (409 if the change
    would leave more)."""
    conversation = await svc.db.run(
        tags.change_tags,
        org.id,
        conversation_id,
        add=body.add,
        remove=body.remove,
        now_ms=svc.clock(),
    )
    return conversation_out(conversation)
