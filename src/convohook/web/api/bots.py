"""/api/v1/bots: capture bots, whose URL records whatever is POSTed to it, and what it got."""

from __future__ import annotations

from typing import Any, Literal, cast

from fastapi import APIRouter
from pydantic import Field

from convohook.domain.model import Bot, Capture
from convohook.domain.payload import iso_ms
from convohook.usecases import bots
from convohook.usecases.bots import capture_url
from convohook.web.api.common import (
    NO_NUL,
    PREFIX,
    Answer,
    Cursor,
    Limit,
    ObjectId,
    OrgDep,
    Page,
    RequestBody,
    SvcDep,
    Timestamp,
    errors,
    page,
)
from convohook.web.api.deliveries import json_or_text

Trigger = Literal["webhook"]


class BotIn(RequestBody):
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    trigger: Trigger = "webhook"


class BotOut(Answer):
    id: str
    name: str
    trigger: Trigger
    webhook_url: str = Field(description="whatever is POSTed here is recorded (the capture URL)")
    created_at: Timestamp


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


def bot_out(b: Bot, public_url: str) -> BotOut:
    return BotOut(
        id=b.id,
        name=b.name,
        trigger=cast(Trigger, b.trigger),
        webhook_url=capture_url(public_url, b),
        created_at=iso_ms(b.created_at_ms),
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


router = APIRouter(prefix=PREFIX, tags=["bots"])


@router.post("/bots", status_code=201, responses=errors(400))
async def create_bot(body: BotIn, org: OrgDep, svc: SvcDep) -> BotOut:
    bot = await svc.db.run(bots.create_bot, org.id, body.name, body.trigger, svc.clock())
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


@router.get("/bots/{bot_id}/captures", responses=errors(404))
async def list_captures(
    bot_id: ObjectId, org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: Cursor = None
) -> CapturePage:
    """Newest first."""
    rows = await svc.db.read(bots.list_captures, org.id, bot_id, cursor, limit + 1)
    return page(CapturePage, rows, limit, capture_out, lambda c: c.id)
