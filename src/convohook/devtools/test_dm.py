"""The demo's "Send a test DM" (Settings → Channels): convohook plays Meta, signs a DM
notification and posts it to its own callback URL, exactly as Meta would. Only `convohook demo`
adds this route (`demo_routes`); a real server has none."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from convohook.devtools.simulate import SimulationError, send_dm
from convohook.domain.model import Channel, Session
from convohook.usecases.channels import get_channel
from convohook.usecases.errors import NotFound
from convohook.web.ui.channels import USERNAME, render_channels
from convohook.web.ui.common import form_action, see_other, services_of


@form_action
async def send_test_dm(request: Request, session: Session, form: dict[str, Any]) -> Response:
    """Demo only: sign a Meta-format DM and post it to our own receiver, exactly as Meta would."""
    svc = services_of(request)
    org_id, channel_id = session.user.org_id, form.get("channel_id", "")
    try:
        channel: Channel | None = await svc.db.read(get_channel, org_id, channel_id)
    except NotFound:
        channel = None
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
        return await render_channels(request, session, form, 422, dm_error=problem)
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
        return await render_channels(request, session, form, 502, dm_error=str(exc))
    return see_other(f"/settings/channels?sent={quote(username)}")


demo_routes: list[BaseRoute] = [Route("/settings/channels/test-dm", send_test_dm, methods=["POST"])]
