"""Channels: connect an Instagram account, the values to paste into Meta's app dashboard, and in
`convohook demo` a "Send a test DM" form that plays Meta."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.devtools.simulate import SimulationError, send_dm
from convohook.domain.ids import new_id
from convohook.domain.model import Channel, Session
from convohook.storage.base import ConflictError
from convohook.web.schemas import ChannelIn
from convohook.web.ui.common import (
    csrf_failed,
    current_session,
    form_with_csrf,
    render,
    see_other,
    services_of,
    to_login,
)

USERNAME = re.compile(r"[A-Za-z0-9._]{1,30}")  # Instagram's own rule for usernames


async def channels_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    sent, notice = request.query_params.get("sent", ""), None
    if USERNAME.fullmatch(sent):  # only ever a username: nothing else is echoed back
        notice = f"@{sent}'s DM sent. See it in the Inbox, and its webhook in Bot Studio."
    return await _render(request, session, {}, notice=notice)


async def _render(
    request: Request, session: Session, form: dict[str, Any], status: int = 200, **extra: Any
) -> Response:
    svc = services_of(request)
    channels = await svc.db.read(lambda tx: tx.list_channels(session.user.org_id, None, 200))
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


async def connect_channel(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    form = await form_with_csrf(request, session)
    if form is None:
        return csrf_failed(session)
    try:
        data = ChannelIn(
            handle=form.get("handle", ""),
            account_id=form.get("account_id", ""),
            access_token=form.get("access_token", ""),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
        return await _render(request, session, form, 422, error=problems)
    svc = services_of(request)
    now = svc.clock()
    channel = Channel(
        id=new_id("ch", now),
        org_id=session.user.org_id,
        type="INSTAGRAM",
        handle=data.handle.removeprefix("@"),
        account_id=data.account_id,
        access_token=data.access_token,
        created_at_ms=now,
    )
    try:
        await svc.db.run(lambda tx: tx.insert_channel(channel))
    except ConflictError:
        return await _render(
            request,
            session,
            form,
            409,
            error=f"Instagram account {data.account_id} is already connected.",
        )
    return see_other("/settings/channels")


async def send_test_dm(request: Request) -> Response:
    """Demo only: sign a Meta-format DM and post it to our own receiver, exactly as Meta would."""
    session = await current_session(request)
    if session is None:
        return to_login(request)
    form = await form_with_csrf(request, session)
    if form is None:
        return csrf_failed(session)
    svc = services_of(request)
    if not svc.settings.demo:
        return render(
            "base.html",
            404,
            session=session,
            error="Test DMs are a demo feature: start convohook with `convohook demo`.",
        )
    org_id, channel_id = session.user.org_id, form.get("channel_id", "")
    channel = await svc.db.read(lambda tx: tx.get_channel(org_id, channel_id))
    username = form.get("username", "").strip().removeprefix("@")
    text = form.get("text", "").strip()
    problem = (
        "Pick the channel that receives the DM."
        if channel is None
        else "Give the customer an Instagram username: letters, digits, dots, underscores."
        if not USERNAME.fullmatch(username)
        else "Write the message."
        if not text
        else None
    )
    secret = svc.settings.meta_app_secret
    if problem is None and secret is None:
        problem = "CONVOHOOK_META_APP_SECRET is not set, so no notification can be signed."
    if problem is not None or channel is None or secret is None:
        return await _render(request, session, form, 422, dm_error=problem)
    try:
        await send_dm(
            server=svc.settings.public_url,
            username=username,
            name=form.get("name", "").strip() or None,
            text=text,
            account_id=channel.account_id,
            app_secret=secret.get_secret_value(),
            graph_url=svc.settings.graph_api_url,
            register=True,
            mid=None,
            timestamp_ms=svc.clock(),
        )
    except SimulationError as exc:
        return await _render(request, session, form, 502, dm_error=str(exc))
    return see_other(f"/settings/channels?sent={quote(username)}")


routes = [
    Route("/settings/channels", channels_page, methods=["GET"]),
    Route("/settings/channels", connect_channel, methods=["POST"]),
    Route("/settings/channels/test-dm", send_test_dm, methods=["POST"]),
]
