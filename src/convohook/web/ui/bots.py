"""Bot Studio: capture bots with the "On Webhook" trigger. Create one, copy its URL, then
Capture Response → View Response Data: requests appear live over server-sent events. Journeys
(the other triggers) are built and shown by journeys.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.domain.model import Bot, Capture, Session
from convohook.runtime.services import Services
from convohook.usecases.bots import capture_url, create_bot, get_bot, list_bots, list_captures
from convohook.usecases.errors import NotFound
from convohook.web.ui import journeys
from convohook.web.ui.common import (
    EVENT_LABELS,
    current_session,
    form_action,
    page,
    render,
    see_other,
    services_of,
    templates,
    when,
)
from convohook.web.ui.live import Quiet, event_stream, sse
from convohook.web.ui.payload_tree import event_of, json_tree

TRIGGERS = {"webhook": "On Webhook", **journeys.TRIGGER_LABELS}
LIST_NOTICES = {"deleted": "Bot deleted, with its runs and captures."}
SHOWN = 20  # captures on the page; older ones stay reachable through the API
HANDLE_SHOWN = 40  # characters; Instagram's usernames have at most 30


def bot_url(svc: Services, bot: Bot) -> str:
    return capture_url(svc.settings.public_url, bot)


def capture_heading(capture: Capture) -> str:
    """What arrived, at a glance: "Conversation Opened · @jane.doe · <time>" for convohook's
    payloads, "POST · <time>" for anything else."""
    event = event_of(capture.body, EVENT_LABELS)
    if event is None:
        what = [capture.method]
    else:
        what = [EVENT_LABELS.get(event.type, event.type)]
        if event.handle is not None:
            handle = event.handle.removeprefix("@")
            # anyone can POST to a capture URL: a heading stays a heading
            what.append(
                "@" + (handle if len(handle) <= HANDLE_SHOWN else handle[:HANDLE_SHOWN] + "…")
            )
    return " · ".join([*what, when(capture.received_at_ms)])


def render_capture(capture: Capture) -> str:
    # Collapsed on arrival too: the heading says what came, and the guide's next step, clicking
    # View Response Data, opens the payload (it would close one that arrived open).
    return templates.get_template("_capture.html").render(
        capture=capture, heading=capture_heading(capture), tree=json_tree(capture.body)
    )


@page
async def bots_page(request: Request, session: Session) -> Response:
    notice = LIST_NOTICES.get(request.query_params.get("notice", ""))
    return await _render_bots(request, session, {}, notice=notice)


async def _render_bots(
    request: Request, session: Session, form: dict[str, Any], status: int = 200, **extra: Any
) -> Response:
    svc = services_of(request)
    bots = await svc.db.read(list_bots, session.user.org_id, None, 200)
    return render(
        "bots.html",
        status,
        session=session,
        bots=[(b, bot_url(svc, b)) for b in bots],
        triggers=TRIGGERS,
        form=form,
        **extra,
    )


@form_action
async def create(request: Request, session: Session, form: dict[str, Any]) -> Response:
    name, trigger = form.get("name", "").strip(), form.get("trigger", "")
    if not name or len(name) > 200:
        return await _render_bots(request, session, form, 422, error="Give the bot a name.")
    if trigger not in TRIGGERS:
        choices = ", ".join(TRIGGERS.values())
        return await _render_bots(
            request, session, form, 422, error=f"Choose the trigger: {choices}."
        )
    if trigger != "webhook":
        return await journeys.create_journey(request, session, form)
    svc = services_of(request)
    bot = await svc.db.run(create_bot, session.user.org_id, name, trigger, svc.clock())
    return see_other(f"/bots/{bot.id}")


@page
async def bot_page(request: Request, session: Session) -> Response:
    svc = services_of(request)
    org_id, bot_id = session.user.org_id, request.path_params["bot_id"]
    bot = await svc.db.read(get_bot, org_id, bot_id)
    if bot.trigger != "webhook":
        return await journeys.journey_page(request, session, bot)
    captures = await svc.db.read(list_captures, org_id, bot_id, None, SHOWN)
    return render(
        "bot.html",
        session=session,
        bot=bot,
        trigger=TRIGGERS.get(bot.trigger, bot.trigger),
        url=bot_url(svc, bot),
        demo=svc.settings.demo,
        captures=[render_capture(c) for c in captures],
    )


@page
async def listen(request: Request, session: Session) -> Response:
    """The Capture Response button: swaps itself for the element that opens the live stream."""
    svc = services_of(request)
    bot = await svc.db.read(get_bot, session.user.org_id, request.path_params["bot_id"])
    return render("_listen.html", bot=bot)


async def stream(request: Request) -> Response:
    """GET /bots/{id}/captures/stream: every capture received from now on, as an SSE `capture`
    event holding its rendered HTML. A reconnecting browser sends Last-Event-ID and gets what
    arrived after it, so a dropped connection loses nothing."""
    session = await current_session(request)
    if session is None:
        return Response("sign in again", status_code=401)
    svc = services_of(request)
    org_id = session.user.org_id
    try:
        bot = await svc.db.read(get_bot, org_id, request.path_params["bot_id"])
    except NotFound:
        return Response("no such bot", status_code=404)
    resume_after = request.headers.get("last-event-id")

    async def events() -> AsyncIterator[bytes]:
        latest = await svc.db.read(list_captures, org_id, bot.id, None, 50)
        seen = {c.id for c in latest if resume_after is None or c.id <= resume_after}
        yield b"retry: 2000\n\n"
        yield sse("listening", templates.get_template("_listening.html").render())
        quiet = Quiet(svc.signals.captures)
        while True:
            change = svc.signals.captures.current()
            latest = await svc.db.read(list_captures, org_id, bot.id, None, 50)
            for capture in reversed(latest):  # oldest first, so the newest ends on top
                if capture.id not in seen:
                    seen.add(capture.id)
                    quiet.sent()
                    yield sse("capture", render_capture(capture), capture.id)
            seen = {c.id for c in latest}  # older ones never come back into the window
            if keepalive := await quiet.wait(change):
                yield keepalive

    return event_stream(events())


routes = [
    Route("/bots", bots_page, methods=["GET"]),
    Route("/bots", create, methods=["POST"]),
    Route("/bots/{bot_id}", bot_page, methods=["GET"]),
    Route("/bots/{bot_id}/listen", listen, methods=["GET"]),
    Route("/bots/{bot_id}/captures/stream", stream, methods=["GET"]),
    Route("/bots/{bot_id}/edit", journeys.edit_page, methods=["GET"]),
    Route("/bots/{bot_id}/edit", journeys.edit, methods=["POST"]),
    Route("/bots/{bot_id}/enabled", journeys.set_enabled, methods=["POST"]),
    Route("/bots/{bot_id}/delete", journeys.delete, methods=["POST"]),
    Route("/bots/{bot_id}/runs/stream", journeys.runs_stream, methods=["GET"]),
]
