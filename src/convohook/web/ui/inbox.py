"""Inbox: conversations by status, assignee and tag, with their messages; Mark as done, assign,
tag, and the contact's details with the `dtCustomerId` that every webhook for them carries."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.domain.model import Session
from convohook.domain.text import trimmed
from convohook.usecases.assignment import assign
from convohook.usecases.conversations import InboxFilter, conversation_detail, inbox, mark_done
from convohook.usecases.errors import Conflict, Invalid
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
}
TAG_SHOWN = 50  # longest tag (usecases/tags.py); a longer filter matches nothing anyway


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
    request: Request, session: Session, error: str | None = None
) -> Response:
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
        422 if error else 200,
        session=session,
        reasons=REASONS,
        notice=NOTICES.get(request.query_params.get("notice", "")),
        conversation=detail.conversation,
        channel_handle=detail.channel_handle,
        messages=detail.messages,
        history=detail.history,
        agents=detail.agents,
        error=error,
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
]
