"""Inbox: conversations by status with their messages both ways, replies (the window, the
composer, each reply's status, Retry), Mark as done, and the contact's details with the
`dtCustomerId` that every webhook for them carries."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.domain.model import Session
from convohook.domain.replies import MAX_TEXT_BYTES, WindowState
from convohook.usecases.conversations import conversation_detail, inbox, mark_done
from convohook.usecases.errors import Conflict, Invalid
from convohook.usecases.replies import conversation_window, queue_reply, retry_reply
from convohook.web.ui.common import form_action, page, render, see_other, services_of

STATUSES = {"open": "Open", "done": "Done", "all": "All"}
REASONS = {"first_message": "First message", "reopened": "Reopened"}
SHOWN = 100
MESSAGES_SHOWN = 500
HISTORY_SHOWN = 50
NOTICES = {
    "done": "Marked as done. The customer's next message opens a new conversation.",
    "queued": "Reply queued: it is sent in a moment.",
    "retry": "Sending again.",
}
REPLY_STATUSES = {
    "queued": "Queued",
    "sending": "Sending",
    "sent": "Sent",
    "failed": "Failed",
    "unknown": "Unknown: may have reached Instagram",
}


@page
async def inbox_page(request: Request, session: Session) -> Response:
    status = request.query_params.get("status", "open")
    if status not in STATUSES:
        status = "open"
    svc = services_of(request)
    shown = await svc.db.read(
        inbox, session.user.org_id, None if status == "all" else status, SHOWN
    )
    return render(
        "inbox.html",
        session=session,
        shown=status,
        statuses=STATUSES,
        reasons=REASONS,
        conversations=shown.conversations,
        channels=shown.channels,
    )


@page
async def conversation_page(request: Request, session: Session) -> Response:
    return await _conversation(request, session)


async def _conversation(
    request: Request,
    session: Session,
    *,
    error: str | None = None,
    draft: str = "",
    status: int = 200,
) -> Response:
    svc = services_of(request)
    conversation_id = request.path_params["conversation_id"]
    detail = await svc.db.read(
        conversation_detail,
        session.user.org_id,
        conversation_id,
        messages=MESSAGES_SHOWN,
        history=HISTORY_SHOWN,
    )
    now = svc.clock()
    window = await svc.db.read(conversation_window, session.user.org_id, conversation_id, now)
    return render(
        "conversation.html",
        status,
        session=session,
        reasons=REASONS,
        notice=None if error else NOTICES.get(request.query_params.get("notice", "")),
        error=error,
        draft=draft,
        conversation=detail.conversation,
        channel_handle=detail.channel_handle,
        messages=detail.messages,
        history=detail.history,
        window=window,
        window_states=WindowState,
        time_left=_time_left(window.until_ms - now) if window.until_ms is not None else "",
        reply_statuses=REPLY_STATUSES,
        max_text_bytes=MAX_TEXT_BYTES,
        # Live until every reply has settled: statuses change without a reload.
        pending=any(getattr(m, "status", None) in ("queued", "sending") for m in detail.messages),
    )


def _time_left(ms: int) -> str:
    minutes = max(0, ms) // 60_000
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


@form_action
async def send_reply(request: Request, session: Session, form: dict[str, Any]) -> Response:
    svc = services_of(request)
    conversation_id = request.path_params["conversation_id"]
    text = form.get("text", "")
    try:
        await svc.db.run(
            queue_reply,
            session.user.org_id,
            conversation_id,
            text=text,
            human_agent=form.get("human_agent") == "1",
            sent_by=session.user.id,
            now_ms=svc.clock(),
        )
    except Invalid as exc:
        # Said on the page, with what was typed kept.
        return await _conversation(request, session, error=exc.message, draft=text, status=422)
    svc.signals.replies.notify()
    return see_other(f"/inbox/{conversation_id}?notice=queued#composer")


@form_action
async def retry_send(request: Request, session: Session, form: dict[str, Any]) -> Response:
    svc = services_of(request)
    conversation_id = request.path_params["conversation_id"]
    try:
        await svc.db.run(
            retry_reply,
            session.user.org_id,
            conversation_id,
            request.path_params["message_id"],
            svc.clock(),
        )
    except Invalid as exc:
        return await _conversation(request, session, error=exc.message, status=422)
    except Conflict as exc:
        return await _conversation(request, session, error=exc.message, status=409)
    svc.signals.replies.notify()
    return see_other(f"/inbox/{conversation_id}?notice=retry")


@form_action
async def mark_conversation_done(
    request: Request, session: Session, form: dict[str, Any]
) -> Response:
    svc = services_of(request)
    conversation_id = request.path_params["conversation_id"]
    await svc.db.run(
        mark_done,
        session.user.org_id,
        conversation_id,
        clock=svc.clock,
        profile_deadline_ms=int(svc.settings.profile_deadline * 1000),
    )
    svc.signals.deliveries.notify()
    svc.signals.profiles.notify()
    return see_other(f"/inbox/{conversation_id}?notice=done")


routes = [
    Route("/inbox", inbox_page, methods=["GET"]),
    Route("/inbox/{conversation_id}", conversation_page, methods=["GET"]),
    Route("/inbox/{conversation_id}/done", mark_conversation_done, methods=["POST"]),
    Route("/inbox/{conversation_id}/messages", send_reply, methods=["POST"]),
    Route("/inbox/{conversation_id}/messages/{message_id}/retry", retry_send, methods=["POST"]),
]
