"""The web UI, served by convohook itself: server-rendered (Jinja2), htmx vendored from the npm
registry, no build step. Every form carries the session's CSRF token."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from convohook.web.ui import agents, auth, bots, channels, inbox, webhooks
from convohook.web.ui.common import HERE

routes: list[BaseRoute] = [
    *auth.routes,
    *inbox.routes,
    *bots.routes,
    *webhooks.routes,
    *channels.routes,
    *agents.routes,
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]
