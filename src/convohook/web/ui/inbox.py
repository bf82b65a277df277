"""Inbox: conversations by status with their messages, Mark as done, and the contact's details
with the `dtCustomerId` that every webhook for them carries."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.storage.base import Transaction
from convohook.usecases.conversations import mark_done
from convohook.web.ui.common import (
    csrf_failed,
    current_session,
    form_with_csrf,
    not_found,
    render,
    see_other,
    services_of,
    to_login,
)

STATUSES = {"open": "Open", "done": "Done", "all": "All"}
REASONS = {"first_message": "First message", "reopened": "Reopened"}
SHOWN = 100
MESSAGES_SHOWN = 500
NOTICES = {"done": "Marked as done. The customer's next message opens a new conversation."}


async def inbox_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    status = request.query_params.get("status", "open")
    if status not in STATUSES:
        status = "open"
    svc = services_of(request)
    org_id = session.user.org_id

    def load(tx: Transaction) -> dict[str, Any]:
        return {
            "conversations": tx.list_conversations(
                org_id,
                status=None if status == "all" else status,
                channel_id=None,
                contact_id=None,
                before=None,
                limit=SHOWN,
            ),
            "channels": {c.id: c.handle for c in tx.list_channels(org_id, None, 200)},
        }

    return render(
        "inbox.html",
        session=session,
        shown=status,
        statuses=STATUSES,
        reasons=REASONS,
        **await svc.db.read(load),
    )


async def conversation_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    svc = services_of(request)
    org_id, conversation_id = session.user.org_id, request.path_params["conversation_id"]

    def load(tx: Transaction) -> dict[str, Any] | None:
        conversation = tx.get_conversation(org_id, conversation_id)
        if conversation is None:
            return None
        channel = tx.get_channel(org_id, conversation.channel_id)
        return {
            "conversation": conversation,
            "channel_handle": channel.handle if channel else conversation.channel_id,
            "messages": tx.list_messages(org_id, conversation_id, None, MESSAGES_SHOWN),
            "history": tx.list_conversations(
                org_id,
                status=None,
                channel_id=conversation.channel_id,
                contact_id=conversation.contact.id,
                before=None,
                limit=50,
            ),
        }

    context = await svc.db.read(load)
    if context is None:
        return not_found(session, "conversation")
    return render(
        "conversation.html",
        session=session,
        reasons=REASONS,
        notice=NOTICES.get(request.query_params.get("notice", "")),
        **context,
    )


async def mark_conversation_done(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    if await form_with_csrf(request, session) is None:
        return csrf_failed(session)
    svc = services_of(request)
    conversation_id = request.path_params["conversation_id"]
    conversation = await svc.db.run(
        mark_done,
        session.user.org_id,
        conversation_id,
        clock=svc.clock,
        profile_deadline_ms=int(svc.settings.profile_deadline * 1000),
    )
    if conversation is None:
        return not_found(session, "conversation")
    svc.signals.deliveries.notify()
    svc.signals.profiles.notify()
    return see_other(f"/inbox/{conversation_id}?notice=done")


routes = [
    Route("/inbox", inbox_page, methods=["GET"]),
    Route("/inbox/{conversation_id}", conversation_page, methods=["GET"]),
    Route("/inbox/{conversation_id}/done", mark_conversation_done, methods=["POST"]),
]
