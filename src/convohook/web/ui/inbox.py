"""Inbox: conversations by status, assignee and tag, with their messages both ways; replies (the
window, the composer, each reply's status, Retry), Mark as done, assign, tag, and the contact's
details with the `dtCustomerId` that every webhook for them carries."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.domain.model import Session
from convohook.domain.replies import MAX_TEXT_BYTES, WindowState
from convohook.domain.text import trimmed
from convohook.usecases.assignment import assign
from convohook.usecases.conversations import InboxFilter, conversation_detail, inbox, mark_done
from convohook.usecases.errors import Conflict, Invalid
from convohook.usecases.replies import conversation_window, queue_reply, retry_reply
from convohook.usecases.tags import change_tags
from convohook.web.ui.common import form_action, page, render, see_other, services_of

STATUSES = {"open": "Open", "done": "Done", "all": "All"}
WHOSE = {"all": "Everyone's", "mine": "Mine", "unassigned": "Unassigned"}
REASONS = {"first_message": "First message", "reopened": "Reopened"}
SHOWN = 100
MESSAGES_SHOWN = 500
HISTORY_SHOWN = 50
NOTICES = {
    "done": "Marked as done. The customer's next message opens a new conversation.",
    "assigned": "Assigned.",
    "unassigned": "Unassigned.",
    "tagged": "Tags saved.",
    "queued": "Reply queued: it is sent in a moment.",
    "retry": "Sending again.",
}
TAG_SHOWN = 50  # longest tag (usecases/tags.py); a longer filter matches nothing anyway
REPLY_STATUSES = {
    "queued": "Queued",
    "sending": "Sending",
    "sent": "Sent",
    "failed": "Failed",
    "unknown": "Unknown: may have reached Instagram",
}


@page
async def inbox_page(request: Request, session: Session) -> Response:
    query = request.query_params
    status = query.get("status", "open")
    if status not in STATUSES:
        status = "open"
    whose = query.get("whose", "all")
    if whose not in WHOSE:
        whose = "all"
    # Typed by a person: a NUL (which PostgreSQL cannot compare) cannot be in any tag anyway.
    tag = trimmed(query.get("tag", "").replace("\x00", ""))[:TAG_SHOWN]
    shown = InboxFilter(
        status=None if status == "all" else status,
        assignee_id=session.user.id if whose == "mine" else None,
        unassigned=whose == "unassigned",
        tag=tag or None,
    )
    svc = services_of(request)
    found = await svc.db.read(inbox, session.user.org_id, shown, SHOWN)

    def link(**changes: str) -> str:
        params = {"status": status, "whose": whose, "tag": tag, **changes}
        return "/inbox?" + urlencode({k: v for k, v in params.items() if v})

    return render(
        "inbox.html",
        session=session,
        shown=status,
        whose=whose,
        tag=tag,
        link=link,
        statuses=STATUSES,
        whose_labels=WHOSE,
        reasons=REASONS,
        conversations=found.conversations,
        channels=found.channels,
        agents=found.agents,
    )


@page
async def conversation_page(request: Request, session: Session) -> Response:
    return await render_conversation(request, session)


async def render_conversation(
    request: Request,
    session: Session,
    *,
    error: str | None = None,
    draft: str = "",
    status: int | None = None,
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
        status or (422 if error else 200),
        session=session,
        reasons=REASONS,
        notice=None if error else NOTICES.get(request.query_params.get("notice", "")),
        error=error,
        draft=draft,
        conversation=detail.conversation,
        channel_handle=detail.channel_handle,
        messages=detail.messages,
        history=detail.history,
        agents=detail.agents,
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
        return await render_conversation(
            request, session, error=exc.message, draft=text, status=422
        )
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
        return await render_conversation(request, session, error=exc.message, status=422)
    except Conflict as exc:
        return await render_conversation(request, session, error=exc.message, status=409)
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
    svc.signals.bots.notify()  # bots on conversation.closed
    return see_other(f"/inbox/{conversation_id}?notice=done")


@form_action
async def assign_conversation(request: Request, session: Session, form: dict[str, Any]) -> Response:
    """The form's `agent_id`: an agent, or empty to unassign. The event says who assigned."""
    svc = services_of(request)
    conversation_id = request.path_params["conversation_id"]
    agent_id = form.get("agent_id") or None
    await svc.db.run(
        assign,
        session.user.org_id,
        conversation_id,
        agent_id,
        by=session.user.id,
        clock=svc.clock,
        profile_deadline_ms=int(svc.settings.profile_deadline * 1000),
    )
    svc.signals.deliveries.notify()
    svc.signals.profiles.notify()
    notice = "assigned" if agent_id else "unassigned"
    return see_other(f"/inbox/{conversation_id}?notice={notice}")


@form_action
async def tag_conversation(request: Request, session: Session, form: dict[str, Any]) -> Response:
    """`add`: one tag, or several separated by commas; `remove`: one tag (its button)."""
    svc = services_of(request)
    conversation_id = request.path_params["conversation_id"]
    add = [t for t in form.get("add", "").split(",") if t.strip()]
    remove = [form["remove"]] if form.get("remove") else []
    try:
        await svc.db.run(
            change_tags,
            session.user.org_id,
            conversation_id,
            add=add,
            remove=remove,
            now_ms=svc.clock(),
        )
    except Invalid as exc:
        return await render_conversation(request, session, error=exc.problem)
    except Conflict as exc:
        return await render_conversation(request, session, error=exc.message.removeprefix("add: "))
    return see_other(f"/inbox/{conversation_id}?notice=tagged")


routes = [
    Route("/inbox", inbox_page, methods=["GET"]),
    Route("/inbox/{conversation_id}", conversation_page, methods=["GET"]),
    Route("/inbox/{conversation_id}/done", mark_conversation_done, methods=["POST"]),
    Route("/inbox/{conversation_id}/assign", assign_conversation, methods=["POST"]),
    Route("/inbox/{conversation_id}/tags", tag_conversation, methods=["POST"]),
    Route("/inbox/{conversation_id}/messages", send_reply, methods=["POST"]),
    Route("/inbox/{conversation_id}/messages/{message_id}/retry", retry_send, methods=["POST"]),
]
