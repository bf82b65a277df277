"""/api/v1/contacts: the customers who wrote to the org's channels."""

from __future__ import annotations

from typing import Literal, cast

from fastapi import APIRouter
from pydantic import Field

from convohook.domain.model import Contact
from convohook.domain.payload import iso_ms
from convohook.usecases import contacts
from convohook.web.api.common import (
    PREFIX,
    Answer,
    Cursor,
    Filter,
    Limit,
    OrgDep,
    Page,
    SvcDep,
    Timestamp,
    page,
)

ProfileStatus = Literal["unknown", "ok", "fallback"]


class ContactOut(Answer):
    id: str
    customer_id: str = Field(description="the payload's `dtCustomerId`, stable for ever")
    handle: str | None = Field(description="the Instagram username, once known")
    name: str | None = Field(description="the display name, or the username when it has none")
    igsid: str = Field(description="the customer's Instagram-scoped id")
    channel_id: str
    profile_status: ProfileStatus = Field(
        description="ok: from Instagram; fallback: Instagram said nothing in time, the IGSID "
        "stands in; unknown: not looked up yet"
    )
    created_at: Timestamp
    follower_count: int | None = Field(
        description="from Instagram's User Profile API; null when Instagram does not share it"
    )
    is_user_follow_business: bool | None = Field(
        description="whether the customer follows the business; null when not shared"
    )
    is_verified_user: bool | None = Field(
        description="whether the customer's account is verified; null when not shared"
    )


class ContactPage(Page[ContactOut]):
    pass


def contact_out(c: Contact) -> ContactOut:
    return ContactOut(
        id=c.id,
        customer_id=c.customer_id,
        handle=c.username,
        name=c.name or c.username,
        igsid=c.igsid,
        channel_id=c.channel_id,
        profile_status=cast(ProfileStatus, c.profile_status),
        created_at=iso_ms(c.created_at_ms),
        follower_count=c.follower_count,
        is_user_follow_business=c.is_user_follow_business,
        is_verified_user=c.is_verified_user,
    )


router = APIRouter(prefix=PREFIX, tags=["contacts"])


@router.get("/contacts")
async def list_contacts(
    org: OrgDep,
    svc: SvcDep,
    handle: Filter = None,
    channel_id: Filter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> ContactPage:
    rows = await svc.db.read(
        contacts.list_contacts,
        org.id,
        handle=handle,
        channel_id=channel_id,
        cursor=cursor,
        limit=limit + 1,
    )
    return page(ContactPage, rows, limit, contact_out, lambda c: c.id)
