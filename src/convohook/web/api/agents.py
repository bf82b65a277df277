"""/api/v1/agents: an org's people, whom conversations are assigned to (DESIGN section 7)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import Field

from convohook.domain.model import User
from convohook.domain.text import NOT_BLANK
from convohook.usecases import agents
from convohook.usecases.agents import (
    EMAIL_MAX_LENGTH,
    EMAIL_PATTERN,
    NAME_MAX_LENGTH,
    AgentChanges,
    NewAgent,
)
from convohook.web.api.common import (
    PREFIX,
    Answer,
    Cursor,
    Limit,
    ObjectId,
    OrgDep,
    Page,
    RequestBody,
    SvcDep,
    errors,
    page,
)

# Trimmed before use: at least one character that is not a blank.
AgentName = Annotated[str, Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NOT_BLANK)]


class AgentIn(RequestBody):
    name: AgentName
    email: str = Field(
        max_length=EMAIL_MAX_LENGTH,
        pattern=EMAIL_PATTERN,
        description="unique: no two agents (of any org) share one; stored in lower case",
    )
    available: bool = Field(default=True, description="whether round robin picks them")


class AgentPatch(RequestBody):
    """Any of the fields; absent or null leaves one as it is."""

    name: AgentName | None = None
    available: bool | None = None


class AgentOut(Answer):
    id: str
    name: str
    email: str
    available: bool = Field(description="whether round robin hands them conversations")


class AgentPage(Page[AgentOut]):
    pass


def agent_out(a: User) -> AgentOut:
    return AgentOut(id=a.id, name=a.name, email=a.email, available=a.available)


router = APIRouter(prefix=PREFIX, tags=["agents"])


@router.post("/agents", status_code=201, responses=errors(400, 409))
async def create_agent(body: AgentIn, org: OrgDep, svc: SvcDep) -> AgentOut:
    """An agent signs in to the UI only once given a password (`convohook users create`)."""
    new = NewAgent(name=body.name, email=body.email, available=body.available)
    return agent_out(await svc.db.run(agents.create_agent, org.id, new, svc.clock()))


@router.get("/agents")
async def list_agents(
    org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: Cursor = None
) -> AgentPage:
    """Newest first."""
    rows = await svc.db.read(agents.list_agents, org.id, cursor, limit + 1)
    return page(AgentPage, rows, limit, agent_out, lambda a: a.id)


@router.patch("/agents/{agent_id}", responses=errors(400, 404))
async def update_agent(agent_id: ObjectId, body: AgentPatch, org: OrgDep, svc: SvcDep) -> AgentOut:
    changes = AgentChanges(name=body.name, available=body.available)
    return agent_out(await svc.db.run(agents.update_agent, org.id, agent_id, changes))
