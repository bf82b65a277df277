"""/api/v1/channels: an org's Instagram accounts."""

from __future__ import annotations

from typing import Annotated, Literal, cast

from fastapi import APIRouter
from pydantic import Field

from convohook.domain.inactivity import AUTO_DONE_MAX_S, AUTO_DONE_MIN_S
from convohook.domain.model import Channel
from convohook.domain.payload import iso_ms
from convohook.usecases import channels
from convohook.usecases.channels import (
    ACCESS_TOKEN_MAX_LENGTH,
    ACCOUNT_ID_MAX_LENGTH,
    ACCOUNT_ID_PATTERN,
    HANDLE_MAX_LENGTH,
    ChannelChanges,
    NewChannel,
)
from convohook.web.api.common import (
    NO_NUL,
    PREFIX,
    WHOLE,
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


AutoDoneAfter = Annotated[
    int,
    Field(
        ge=AUTO_DONE_MIN_S,
        le=AUTO_DONE_MAX_S,
        description="seconds without a message either way after which convohook marks a "
        "conversation done (closed_reason `inactivity`); null: never",
    ),
    WHOLE,
]


class ChannelPatch(RequestBody):
    """Any of the fields; an absent one is left as it is. `auto_done_after: null` turns the
    inactivity rule off."""

    handle: str | None = Field(
        default=None,
        min_length=1,
        max_length=HANDLE_MAX_LENGTH,
        pattern=NO_NUL,
        description="the business's Instagram handle (a leading @ is dropped)",
    )
    access_token: str | None = Field(
        default=None,
        min_length=1,
        max_length=ACCESS_TOKEN_MAX_LENGTH,
        pattern=NO_NUL,
        description="a new token for profile lookups and replies; never returned",
    )
    auto_done_after: AutoDoneAfter | None = None


class ChannelOut(Answer):
    id: str
    type: ChannelType
    handle: str
    account_id: str
    created_at: Timestamp
    auto_done_after: int | None = Field(
        description="seconds without a message after which conversations are marked done; "
        "null: never"
    )


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
        auto_done_after=c.auto_done_after,
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


@router.patch("/channels/{channel_id}", responses=errors(400, 404))
async def update_channel(
    channel_id: str, body: ChannelPatch, org: OrgDep, svc: SvcDep
) -> ChannelOut:
    # A null handle or token is "leave it"; a null auto_done_after is "turn it off", so only
    # its presence in the body says whether to change it.
    changes = ChannelChanges(
        handle=body.handle,
        access_token=body.access_token,
        auto_done_after=body.auto_done_after,
        change_auto_done_after="auto_done_after" in body.model_fields_set,
    )
    channel = await svc.db.run(channels.update_channel, org.id, channel_id, changes)
    return channel_out(channel)
