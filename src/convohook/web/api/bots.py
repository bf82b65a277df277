"""/api/v1/bots: Bot Studio. Capture bots (trigger `webhook`), whose URL records whatever is
POSTed to it, and journeys (a trigger, conditions, ordered actions) with their runs."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Response
from pydantic import ConfigDict, Field, field_validator

from convohook.domain.bots import JOURNEY_TRIGGERS, MAX_ACTIONS, action_json, time_zones
from convohook.domain.model import Bot, BotRun, Capture
from convohook.domain.payload import iso_ms
from convohook.domain.replies import MAX_TEXT_BYTES
from convohook.domain.text import NOT_BLANK
from convohook.usecases import bots
from convohook.usecases.bots import UNCHANGED, BotChanges, capture_url
from convohook.usecases.tags import MAX_TAGS, TAG_MAX_LENGTH
from convohook.web.api.common import (
    NO_NUL,
    PREFIX,
    WHOLE,
    Answer,
    Cursor,
    Limit,
    ObjectId,
    OrgDep,
    Page,
    RequestBody,
    StrictBody,
    SvcDep,
    Timestamp,
    errors,
    page,
    refuse_nul,
)
from convohook.web.api.deliveries import json_or_text

Trigger = Literal["webhook", "conversation.opened", "conversation.closed", "message.received"]
Reason = Literal["first_message", "reopened"]
Tag = Annotated[str, Field(min_length=1, max_length=TAG_MAX_LENGTH, pattern=NOT_BLANK)]
Clock = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["09:00"])]
Word = Annotated[str, Field(min_length=1, max_length=100, pattern=NOT_BLANK)]
# The zones this machine knows, as the document's enum: a valid zone is accepted, anything
# else is refused before the bot is stored.
TimeZone = Annotated[str, Field(json_schema_extra={"enum": time_zones()})]
Day = Annotated[int, Field(ge=1, le=7), WHOLE]


class BusinessHoursIn(RequestBody):
    """Local time in `tz`; `from` after `to` spans midnight, `from` equal to `to` is the
    whole day. `inside: false` holds outside these hours instead."""

    model_config = ConfigDict(populate_by_name=True)

    tz: TimeZone = Field(examples=["Europe/Berlin"])
    days: list[Day] = Field(
        min_length=1, max_length=7, description="ISO weekdays: 1 is Monday, 7 Sunday"
    )
    from_: Clock = Field(alias="from")
    to: Clock
    inside: bool = True


class ConditionsIn(RequestBody):
    """All optional; all that are given must hold. A condition on a profile field Instagram did
    not share is false."""

    reason: list[Reason] | None = Field(default=None, min_length=1)
    channel_ids: list[Annotated[str, Field(pattern=NO_NUL)]] | None = Field(
        default=None, min_length=1
    )
    text_contains: list[Word] | None = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="any of them, case-insensitive, in the triggering message",
    )
    min_followers: Annotated[int, Field(ge=0), WHOLE] | None = None
    follows_business: bool | None = None
    verified: bool | None = None
    referral: bool | None = Field(
        default=None, description="the message came from an ad or an ig.me link"
    )
    business_hours: BusinessHoursIn | None = None


# Actions are told apart by `type` (a discriminator), which may carry no validator: each names
# the fields a NUL is refused in.
class SendMessageIn(StrictBody):
    _no_nul = field_validator("text", mode="before")(refuse_nul)

    type: Literal["send_message"]
    text: str = Field(
        min_length=1,
        max_length=MAX_TEXT_BYTES,
        pattern=NOT_BLANK,
        description=f"at most {MAX_TEXT_BYTES} bytes of UTF-8; placeholders {{{{name}}}}, "
        "{{username}}, {{customer_id}}",
    )


class AssignActionIn(StrictBody):
    """`round_robin`: the next available agent in turn; `agent`: that agent."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                # agent_id null counts as left out, as in the rest of the body.
                {
                    "properties": {
                        "strategy": {"const": "round_robin"},
                        "agent_id": {"type": "null"},
                    },
                },
                {
                    "properties": {
                        "strategy": {"const": "agent"},
                        "agent_id": {"type": "string", "minLength": 1},
                    },
                    "required": ["agent_id"],
                },
            ]
        }
    )

    _no_nul = field_validator("agent_id", mode="before")(refuse_nul)

    type: Literal["assign"]
    strategy: Literal["round_robin", "agent"]
    agent_id: str | None = Field(default=None, pattern=NO_NUL)


class AddTagsIn(StrictBody):
    _no_nul = field_validator("tags", mode="before")(refuse_nul)

    type: Literal["add_tags"]
    tags: list[Tag] = Field(min_length=1, max_length=MAX_TAGS)


class MarkDoneIn(StrictBody):
    type: Literal["mark_done"]


ActionIn = Annotated[
    SendMessageIn | AssignActionIn | AddTagsIn | MarkDoneIn, Field(discriminator="type")
]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NOT_BLANK)]


class BotIn(RequestBody):
    """A capture bot (`trigger` webhook, the default: nothing else) or a journey (one of the
    other triggers, with at least one action)."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {
                    # null as a form sends an empty field; anything else, even {} or [], is a
                    # definition a capture bot cannot have (usecases/bots.create_bot).
                    "properties": {
                        "trigger": {"const": "webhook"},
                        "conditions": {"type": "null"},
                        "actions": {"type": "null"},
                    },
                },
                {
                    "properties": {
                        "trigger": {"enum": list(JOURNEY_TRIGGERS)},
                        "actions": {"type": "array", "minItems": 1},
                    },
                    "required": ["trigger", "actions"],
                },
            ]
        }
    )

    name: Name
    trigger: Trigger = "webhook"
    conditions: ConditionsIn | None = None
    actions: list[ActionIn] | None = Field(default=None, max_length=MAX_ACTIONS)
    enabled: bool = True


class BotPatch(RequestBody):
    """Any of these; the trigger cannot change (a bot of another trigger is another bot)."""

    name: Name | None = None
    conditions: ConditionsIn | None = None
    actions: list[ActionIn] | None = Field(default=None, min_length=1, max_length=MAX_ACTIONS)
    enabled: bool | None = None


class ConditionsOut(Answer):
    """Every condition, null where the bot has none."""

    reason: list[Reason] | None
    channel_ids: list[str] | None
    text_contains: list[str] | None
    min_followers: int | None
    follows_business: bool | None
    verified: bool | None
    referral: bool | None
    business_hours: BusinessHoursOut | None


class BusinessHoursOut(Answer):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    tz: str
    days: list[int]
    from_: str = Field(alias="from")
    to: str
    inside: bool


class ActionOut(Answer):
    """An action; the keys another type has are null."""

    type: Literal["send_message", "assign", "add_tags", "mark_done"]
    text: str | None
    strategy: Literal["round_robin", "agent"] | None
    agent_id: str | None
    tags: list[str] | None


def _all_keys(model: type[Answer], given: dict[str, Any]) -> dict[str, Any]:
    return {**dict.fromkeys(model.model_fields, None), **given}


class BotOut(Answer):
    id: str
    name: str
    trigger: Trigger
    webhook_url: str | None = Field(
        description="a capture bot's URL: whatever is POSTed there is recorded; null for a journey"
    )
    enabled: bool
    conditions: ConditionsOut
    actions: list[ActionOut] = Field(description="run in this order")
    created_at: Timestamp
    updated_at: Timestamp


class BotPage(Page[BotOut]):
    pass


class CaptureOut(Answer):
    id: str
    received_at: Timestamp
    method: str
    headers: dict[str, str]
    body: Any = Field(description="parsed when it is JSON, the text otherwise")
    raw_body: str


class CapturePage(Page[CaptureOut]):
    pass


RunStatus = Literal["pending", "done", "skipped", "failed"]
OutcomeStatus = Literal["done", "skipped", "failed"]


class OutcomeOut(Answer):
    type: str = Field(description="the action's type")
    status: OutcomeStatus
    detail: str | None = Field(description="what it did, or why it was skipped or failed")


class RunOut(Answer):
    id: str
    bot_id: str
    trigger: Trigger
    conversation_id: str
    text: str | None = Field(description="the triggering message's text")
    referral: bool
    status: RunStatus = Field(
        description="pending; done (its actions ran: see each one's outcome); skipped (a "
        "condition did not hold, or the bot was disabled: see detail); failed"
    )
    detail: str | None
    actions: list[OutcomeOut] = Field(description="each action's outcome, in order")
    created_at: Timestamp
    finished_at: Timestamp | None


class RunPage(Page[RunOut]):
    pass


def bot_out(b: Bot, public_url: str) -> BotOut:
    return BotOut(
        id=b.id,
        name=b.name,
        trigger=cast(Trigger, b.trigger),
        webhook_url=capture_url(public_url, b) if b.trigger == "webhook" else None,
        enabled=b.enabled,
        conditions=ConditionsOut.model_validate(_all_keys(ConditionsOut, b.conditions.to_json())),
        actions=[ActionOut.model_validate(_all_keys(ActionOut, action_json(a))) for a in b.actions],
        created_at=iso_ms(b.created_at_ms),
        updated_at=iso_ms(b.updated_at_ms or b.created_at_ms),
    )


def run_out(r: BotRun) -> RunOut:
    return RunOut(
        id=r.id,
        bot_id=r.bot_id,
        trigger=cast(Trigger, r.trigger),
        conversation_id=r.conversation_id,
        text=r.text,
        referral=r.referral,
        status=cast(RunStatus, r.status),
        detail=r.detail,
        actions=[
            OutcomeOut(type=o.type, status=cast(OutcomeStatus, o.status), detail=o.detail)
            for o in r.outcomes
        ],
        created_at=iso_ms(r.created_at_ms),
        finished_at=iso_ms(r.finished_at_ms) if r.finished_at_ms is not None else None,
    )


def capture_out(c: Capture) -> CaptureOut:
    return CaptureOut(
        id=c.id,
        received_at=iso_ms(c.received_at_ms),
        method=c.method,
        headers=c.headers,
        body=json_or_text(c.body),
        raw_body=c.body,
    )


def _raw(model: StrictBody | None) -> Any:
    return None if model is None else model.model_dump(by_alias=True, exclude_none=True)


router = APIRouter(prefix=PREFIX, tags=["bots"])


@router.post("/bots", status_code=201, responses=errors(400))
async def create_bot(body: BotIn, org: OrgDep, svc: SvcDep) -> BotOut:
    bot = await svc.db.run(
        bots.create_bot,
        org.id,
        body.name,
        body.trigger,
        svc.clock(),
        conditions=_raw(body.conditions),
        actions=None if body.actions is None else [_raw(a) for a in body.actions],
        enabled=body.enabled,
    )
    return bot_out(bot, svc.settings.public_url)


@router.get("/bots")
async def list_bots(org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: Cursor = None) -> BotPage:
    """Newest first."""
    rows = await svc.db.read(bots.list_bots, org.id, cursor, limit + 1)
    return page(BotPage, rows, limit, lambda b: bot_out(b, svc.settings.public_url), lambda b: b.id)


@router.get("/bots/{bot_id}", responses=errors(404))
async def get_bot(bot_id: ObjectId, org: OrgDep, svc: SvcDep) -> BotOut:
    bot = await svc.db.read(bots.get_bot, org.id, bot_id)
    return bot_out(bot, svc.settings.public_url)


@router.patch("/bots/{bot_id}", responses=errors(400, 404, 409))
async def update_bot(bot_id: ObjectId, body: BotPatch, org: OrgDep, svc: SvcDep) -> BotOut:
    """A change applies to the runs that have not run yet. A capture bot takes only `name` and
    `enabled` (409 otherwise)."""
    given = body.model_fields_set
    changes = BotChanges(
        name=body.name if "name" in given and body.name is not None else UNCHANGED,
        conditions=_raw(body.conditions) if "conditions" in given else UNCHANGED,
        actions=[_raw(a) for a in body.actions]
        if "actions" in given and body.actions is not None
        else UNCHANGED,
        enabled=body.enabled if "enabled" in given and body.enabled is not None else UNCHANGED,
    )
    bot = await svc.db.run(bots.update_bot, org.id, bot_id, changes, svc.clock())
    return bot_out(bot, svc.settings.public_url)


@router.delete("/bots/{bot_id}", status_code=204, responses=errors(404))
async def delete_bot(bot_id: ObjectId, org: OrgDep, svc: SvcDep) -> Response:
    """With its captures and runs; a run it had pending does not happen."""
    await svc.db.run(bots.delete_bot, org.id, bot_id)
    return Response(status_code=204)


@router.get("/bots/{bot_id}/runs", responses=errors(404))
async def list_runs(
    bot_id: ObjectId, org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: Cursor = None
) -> RunPage:
    """Newest first: each run's trigger, conversation and the outcome of each action."""
    rows = await svc.db.read(bots.list_runs, org.id, bot_id, cursor, limit + 1)
    return page(RunPage, rows, limit, run_out, lambda r: r.id)


@router.get("/bots/{bot_id}/captures", responses=errors(404))
async def list_captures(
    bot_id: ObjectId, org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: Cursor = None
) -> CapturePage:
    """Newest first."""
    rows = await svc.db.read(bots.list_captures, org.id, bot_id, cursor, limit + 1)
    return page(CapturePage, rows, limit, capture_out, lambda c: c.id)
