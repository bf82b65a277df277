"""Channels: connect an Instagram account, the values to paste into Meta's app dashboard, and
each channel's inactivity rule.
Under `convohook demo` the page also shows a "Send a test DM" form, whose route the demo adds
(devtools/test_dm.py)."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.domain.inactivity import split_duration
from convohook.domain.model import Session
from convohook.usecases.channels import (
    ChannelChanges,
    NewChannel,
    connect_channel,
    list_channels,
    update_channel,
)
from convohook.usecases.errors import Conflict, Invalid
from convohook.web.ui.common import form_action, page, render, see_other, services_of, templates

USERNAME = re.compile(r"[A-Za-z0-9._]{1,30}")  # Instagram's own rule for usernames
UNIT_SECONDS = {"minutes": 60, "hours": 3600}

templates.filters["duration"] = split_duration


@page
async def channels_page(request: Request, session: Session) -> Response:
    sent, notice = request.query_params.get("sent", ""), None
    if USERNAME.fullmatch(sent):  # only ever a username: nothing else is echoed back
        notice = f"@{sent}'s DM sent. See it in the Inbox, and its webhook in Bot Studio."
    return await render_channels(request, session, {}, notice=notice)


async def render_channels(
    request: Request, session: Session, form: dict[str, Any], status: int = 200, **extra: Any
) -> Response:
    svc = services_of(request)
    channels = await svc.db.read(list_channels, session.user.org_id, None, 200)
    token = svc.settings.meta_verify_token
    return render(
        "channels.html",
        status,
        session=session,
        channels=channels,
        form=form,
        demo=svc.settings.demo,
        callback_url=f"{svc.settings.public_url}/webhooks/instagram",
        verify_token=token.get_secret_value() if token else None,
        **extra,
    )


@form_action
async def connect(request: Request, session: Session, form: dict[str, Any]) -> Response:
    svc = services_of(request)
    new = NewChannel(
        handle=form.get("handle", "").strip(),
        account_id=form.get("account_id", "").strip(),
        access_token=form.get("access_token", "").strip(),
    )
    try:  # the use case checks the fields (connect_channel), as it does for the API
        await svc.db.run(connect_channel, session.user.org_id, new, svc.clock())
    except Invalid as exc:
        return await render_channels(request, session, form, 422, error=exc.message)
    except Conflict as exc:
        return await render_channels(request, session, form, 409, error=exc.message)
    return see_other("/settings/channels")


@form_action
async def set_inactivity(request: Request, session: Session, form: dict[str, Any]) -> Response:
    svc = services_of(request)
    channel_id = request.path_params["channel_id"]
    after, unit = form.get("after", "").strip(), form.get("unit", "hours")

    async def refuse(message: str) -> Response:
        return await render_channels(
            request,
            session,
            form,
            422,
            inactivity_error=message,
            inactivity_channel=channel_id,
        )

    seconds: int | None = None
    if after:
        if not after.isdigit() or unit not in UNIT_SECONDS:
            return await refuse("Enter a whole number of minutes or hours, or leave it empty.")
        seconds = int(after) * UNIT_SECONDS[unit]
    changes = ChannelChanges(auto_done_after=seconds, change_auto_done_after=True)
    try:  # the same use case, and so the same limits, as PATCH /api/v1/channels/{id}
        await svc.db.run(update_channel, session.user.org_id, channel_id, changes)
    except Invalid:
        return await refuse(
            "Not saved: choose between 1 minute and 90 days (2160 hours), or leave it empty."
        )
    return see_other("/settings/channels")


routes = [
    Route("/settings/channels", channels_page, methods=["GET"]),
    Route("/settings/channels", connect, methods=["POST"]),
    Route("/settings/channels/{channel_id}/inactivity", set_inactivity, methods=["POST"]),
]
