"""Settings → Agents: the org's people, whom conversations are assigned to; add one, and say
whether round robin hands them conversations (available) or passes them by (away)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.domain.model import Session
from convohook.usecases.agents import AgentChanges, NewAgent, create_agent, update_agent
from convohook.usecases.conversations import agents_by_id
from convohook.usecases.errors import Conflict, Invalid
from convohook.web.ui.common import form_action, page, render, see_other, services_of


@page
async def agents_page(request: Request, session: Session) -> Response:
    return await render_agents(request, session, {})


async def render_agents(
    request: Request, session: Session, form: dict[str, Any], status: int = 200, **extra: Any
) -> Response:
    svc = services_of(request)
    agents = await svc.db.read(agents_by_id, session.user.org_id)
    return render(
        "agents.html", status, session=session, agents=list(agents.values()), form=form, **extra
    )


@form_action
async def add_agent(request: Request, session: Session, form: dict[str, Any]) -> Response:
    svc = services_of(request)
    new = NewAgent(
        name=form.get("name", ""),
        email=form.get("email", ""),
        available=form.get("available") == "on",
    )
    try:
        await svc.db.run(create_agent, session.user.org_id, new, svc.clock())
    except Invalid as exc:
        return await render_agents(request, session, form, 422, error=exc.message)
    except Conflict as exc:
        return await render_agents(request, session, form, 409, error=exc.message)
    return see_other("/settings/agents")


@form_action
async def set_available(request: Request, session: Session, form: dict[str, Any]) -> Response:
    # The button says which state it asks for, so a second click (or another tab) repeats it
    # rather than flipping it back.
    svc = services_of(request)
    changes = AgentChanges(available=form.get("available") == "true")
    await svc.db.run(update_agent, session.user.org_id, request.path_params["agent_id"], changes)
    return see_other("/settings/agents")


routes = [
    Route("/settings/agents", agents_page, methods=["GET"]),
    Route("/settings/agents", add_agent, methods=["POST"]),
    Route("/settings/agents/{agent_id}/available", set_available, methods=["POST"]),
]
