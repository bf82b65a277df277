"""/api/v1: thin routes, one module per resource. Each parses its input, calls one use case and
renders a typed answer; every object is scoped to the caller's org (others' ids answer 404).
`common` holds what they share; `docs` serves the interactive documentation."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from convohook.web.api import (
    agents,
    bots,
    channels,
    contacts,
    conversations,
    deliveries,
    webhooks,
)
from convohook.web.api.common import check_parameters, errors

# Every route authenticates and validates its input; each adds the errors of its own.
router = APIRouter(dependencies=[Depends(check_parameters)], responses=errors(401, 422))
for resource in (channels, webhooks, deliveries, conversations, contacts, agents, bots):
    router.include_router(resource.router)
