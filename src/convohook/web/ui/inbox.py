"""Inbox: conversations by status with their messages, Mark as done, and the contact's details
with the `dtCustomerId` that every webhook for them carries."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.domain.model import Session
from convohook.usecases.conversations import conversation_detail, inbox, mark_done
from convohook.web.ui.common import form_action, page, render, see_other, services_of

STATUSES = {"open": "Open", "done": "Done", "all": "All"}
REASONS = {"first_message": "First message", "reopened": "Reopened"}
SHOWN = 100
MESSAGES_SHOWN = 500
HISTORY_SHOWN = 50
NOTICES = {"done": "Marked as done. The customer's next message opens a new conversation."}


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
    svc = services_of(request)
    detail = await svc.db.read(
        conversation_detail,
        session.user.org_id,
        request.path_params["conversation_id"],
        messages=MESSAGES_SHOWN,
        history=HISTORY_SHOWN,
    )

    return render(
        "conversation.html",
        session=session,
        reasons=REASONS,
        notice=NOTICES.get(request.query_params.get("notice", "")),
        conversation=detail.conversation,
        channel_handle=detail.channel_handle,
        messages=detail.messages,
        history=detail.history,
    )


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
]
