"""What every page needs: templates, the signed-in session, CSRF checks, redirects."""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from convohook.domain.model import Session
from convohook.domain.payload import iso_ms
from convohook.runtime.services import Services
from convohook.usecases.errors import NotFound
from convohook.usecases.users import session_for

HERE = Path(__file__).parent
# fields a form may send more than once
LIST_FIELDS = frozenset({"events", "channel_ids", "reason", "days"})
SESSION_COOKIE = "convohook_session"
EVENT_LABELS = {
    "conversation.opened": "Conversation Opened",
    "conversation.closed": "Conversation Closed",
    "conversation.assigned": "Conversation Assigned",
    "webhook.disabled": "Webhook disabled",
    "delivery.exhausted": "Delivery exhausted",
}


def when(ms: int | None) -> str:
    """For people: whole seconds, UTC said out loud (the API keeps ISO 8601 with milliseconds)."""
    if ms is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms // 1000))


def pretty_json(raw: bytes | str | None) -> str:
    if raw is None:
        return ""
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace") if isinstance(raw, bytes) else raw


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)
templates.filters["event_label"] = lambda name: EVENT_LABELS.get(name, name)
templates.filters["iso"] = lambda ms: None if ms is None else iso_ms(ms)
templates.filters["when"] = when
templates.filters["pretty"] = pretty_json


def render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**context), status_code=status)


def services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def current_session(request: Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        return None
    svc = services_of(request)
    return await svc.db.read(session_for, token, svc.clock())


def to_login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def see_other(url: str) -> Response:
    # Post/Redirect/Get: reloading the page never submits the form again.
    return RedirectResponse(url, status_code=303)


async def form_with_csrf(request: Request, session: Session) -> dict[str, Any] | None:
    """The submitted form, or None when its CSRF token is not this session's."""
    form = await request.form()
    token = str(form.get("csrf_token", ""))
    if not hmac.compare_digest(token.encode(), session.csrf_token.encode()):
        return None
    return {k: form.getlist(k) if k in LIST_FIELDS else str(form.get(k, "")) for k in form}


def csrf_failed(session: Session | None = None) -> Response:
    return render(
        "base.html",
        403,
        session=session,
        error="The form expired or came from elsewhere: reload and try again.",
    )


def not_found(session: Session, what: str) -> Response:
    return render("base.html", 404, session=session, error=f"No such {what}.")


Page = Callable[[Request, Session], Awaitable[Response]]
FormAction = Callable[[Request, Session, dict[str, Any]], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def page(handler: Page) -> Endpoint:
    """A page for a signed-in person: anyone else is sent to sign in first, and an object that
    is not their org's (or not there) is a 404 page."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        session = await current_session(request)
        if session is None:
            return to_login(request)
        try:
            return await handler(request, session)
        except NotFound as exc:
            return not_found(session, exc.kind)

    return endpoint


def form_action(handler: FormAction) -> Endpoint:
    """A form's POST: signed in, and carrying this session's CSRF token (403 otherwise)."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        session = await current_session(request)
        if session is None:
            return to_login(request)
        form = await form_with_csrf(request, session)
        if form is None:
            return csrf_failed(session)
        try:
            return await handler(request, session, form)
        except NotFound as exc:
            return not_found(session, exc.kind)

    return endpoint
