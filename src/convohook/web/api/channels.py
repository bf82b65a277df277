"""/api/v1/channels: an org's Instagram accounts."""

from __future__ import annotations

from typing import Literal, cast

from fastapi import APIRouter
from pydantic import Field

from convohook.domain.model import Channel
from convohook.domain.payload import iso_ms
from convohook.usecases import channels
from convohook.usecases.channels import (
    ACCESS_TOKEN_MAX_LENGTH,
    ACCOUNT_ID_MAX_LENGTH,
    ACCOUNT_ID_PATTERN,
    HANDLE_MAX_LENGTH,
    NewChannel,
)
from convohook.web.api.common import (
    NO_NUL,
    PREFIX,
    Answer,
    Cursor,
    Limit,
    OrgDep,
    Page,
    RequestBody,
    SvcDep,
    Timestamp,
    errors,
    page,
)

ChannelType = Literal["INSTAGRAM"]


class ChannelIn(RequestBody):
    type: ChannelType = "INSTAGRAM"
    handle: str = Field(
        min_length=1,
        max_length=HANDLE_MAX_LENGTH,
        pattern=NO_NUL,
        description="the business's Instagram handle (a leading @ is dropped)",
    )
    account_id: str = Field(
        min_length=1,
        max_length=ACCOUNT_ID_MAX_LENGTH,
        pattern=ACCOUNT_ID_PATTERN,
        description="Instagram professional account id (entry[].id in Meta's notifications)",
    )
    access_token: str = Field(
        min_length=1,
        max_length=ACCESS_TOKEN_MAX_LENGTH,
        pattern=NO_NUL,
        description="used for profile lookups; never returned",
    )


class ChannelOut(Answer):
    id: str
    type: ChannelType
    handle: str
    account_id: str
    created_at: Timestamp


class ChannelPage(Page[ChannelOut]):
    pass


def channel_out(c: Channel) -> ChannelOut:
    # The access token is a secret: accepted, never returned.
    return ChannelOut(
        id=c.id,
        type=cast(ChannelType, c.type),
        handle=c.handle,
        account_id=c.account_id,
        created_at=iso_ms(c.created_at_ms),
    )


router = APIRouter(prefix=PREFIX, tags=["channels"])


@router.post("/channels", status_code=201, responses=errors(400, 409))
async def create_channel(body: ChannelIn, org: OrgDep, svc: SvcDep) -> ChannelOut:
    new = NewChannel(body.handle, body.account_id, body.access_token)
    channel = await svc.db.run(channels.connect_channel, org.id, new, svc.clock())
    return channel_out(channel)


@router.get("/channels")
async def list_channels(
    org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: Cursor = None
) -> ChannelPage:
    rows = await svc.db.read(channels.list_channels, org.id, cursor, limit + 1)
    return page(ChannelPage, rows, limit, channel_out, lambda c: c.id)
