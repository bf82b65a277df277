"""The web UI, served by convohook itself: sign-in and Settings → Webhooks (DoubleTick's flow).

Server-rendered (Jinja2), htmx vendored from the npm registry, no build step. Every form carries
the session's CSRF token; the sign-in form a double-submit token of its own.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from convohook.domain.ids import new_id
from convohook.runtime.services import Services
from convohook.storage.base import ConflictError, Transaction
from convohook.storage.records import Channel, Session, Webhook
from convohook.usecases.delivery import retry_now
from convohook.usecases.users import session_for, sign_in, sign_out
from convohook.usecases.webhooks import new_secret, rotate_secret
from convohook.web.errors import ApiError
from convohook.web.rules import check_channels, check_webhook_url
from convohook.web.schemas import ChannelIn, iso

HERE = Path(__file__).parent
SESSION_COOKIE = "convohook_session"
LOGIN_CSRF_COOKIE = "convohook_login_csrf"
NOTICES = {
    "saved": "Webhook saved. Reveal its signing secret below to verify deliveries.",
    "retried": "Sent again now.",
    "rotated": "New secret in place; the old one keeps signing for 24 hours. Reveal it below.",
    "enabled": "Webhook enabled.",
    "disabled": "Webhook disabled.",
}
EVENT_LABELS = {
    "conversation.opened": "Conversation Opened",
    "conversation.closed": "Conversation Closed",
    "webhook.disabled": "Webhook disabled",
    "delivery.exhausted": "Delivery exhausted",
}


def _pretty(raw: bytes | None) -> str:
    if raw is None:
        return ""
    try:
        return orjson.dumps(orjson.loads(raw), option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)
templates.filters["event_label"] = lambda name: EVENT_LABELS.get(name, name)
templates.filters["iso"] = iso
templates.filters["pretty"] = _pretty


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


async def _form_with_csrf(request: Request, session: Session) -> dict[str, Any] | None:
    form = await request.form()
    token = str(form.get("csrf_token", ""))
    if not hmac.compare_digest(token.encode(), session.csrf_token.encode()):
        return None
    return {k: form.getlist(k) if k == "events" else str(form.get(k, "")) for k in form}


def _csrf_failed() -> Response:
    return render(
        "base.html", 403, error="The form expired or came from elsewhere: reload and try again."
    )


# sign-in -------------------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    token = secrets.token_urlsafe(24)
    response = render("login.html", login_csrf=token, next=request.query_params.get("next", ""))
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict")
    return response


async def login(request: Request) -> Response:
    svc = services_of(request)
    form = await request.form()
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = str(form.get("csrf_token", ""))
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        return _csrf_failed()
    email = str(form.get("email", ""))
    signed = await svc.db.run(sign_in, email, str(form.get("password", "")), svc.clock())
    if signed is None:
        return render(
            "login.html",
            401,
            error="Wrong email or password.",
            login_csrf=expected,
            email=email,
            next=form.get("next", ""),
        )
    target = str(form.get("next") or "/settings/webhooks")
    if not target.startswith("/") or target.startswith("//"):
        target = "/settings/webhooks"  # never redirect off-site
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=14 * 86400,
        httponly=True,
        samesite="lax",
        secure=svc.settings.public_url.startswith("https://"),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


async def logout(request: Request) -> Response:
    session = await current_session(request)
    if session is not None:
        if await _form_with_csrf(request, session) is None:
            return _csrf_failed()
        svc = services_of(request)
        await svc.db.run(sign_out, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


async def home(request: Request) -> Response:
    return RedirectResponse("/settings/webhooks", status_code=303)


# Settings → Webhooks ---------------------------------------------------------------------------


async def webhooks_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    svc = services_of(request)
    org_id = session.user.org_id

    def load(tx: Transaction) -> dict[str, Any]:
        return {
            "webhooks": tx.list_webhooks(org_id, None, 200),
            "channels": {c.id: c.handle for c in tx.list_channels(org_id, None, 200)},
            "counts": tx.delivery_counts(org_id),
        }

    return render("webhooks.html", session=session, **await svc.db.read(load))


async def new_webhook_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    svc = services_of(request)
    channels = await svc.db.read(lambda tx: tx.list_channels(session.user.org_id, None, 200))
    return render("webhook_new.html", session=session, step=1, form={}, channels=channels)


async def create_webhook(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    form = await _form_with_csrf(request, session)
    if form is None:
        return _csrf_failed()
    svc = services_of(request)
    org_id = session.user.org_id
    channels = await svc.db.read(lambda tx: tx.list_channels(org_id, None, 200))
    name, url, channel_id = (
        form.get("name", "").strip(),
        form.get("url", "").strip(),
        form.get("channel_id", ""),
    )

    def again(step: int, error: str) -> Response:
        return render(
            "webhook_new.html",
            422,
            session=session,
            step=step,
            form=form,
            channels=channels,
            error=error,
        )

    if not name:
        return again(1, "Give the webhook a name.")
    try:
        await check_webhook_url(svc, url)
        await svc.db.read(check_channels, org_id, [channel_id])
    except ApiError as exc:
        return again(1, exc.message)
    if form.get("step") != "2":
        return render("webhook_new.html", session=session, step=2, form=form, channels=channels)
    events = [
        e for e in form.get("events", []) if e in ("conversation.opened", "conversation.closed")
    ]
    if not events:
        return again(2, "Choose at least one event.")
    now = svc.clock()
    webhook = Webhook(
        id=new_id("wh", now),
        org_id=org_id,
        name=name,
        url=url,
        channel_type="INSTAGRAM",
        channel_ids=(channel_id,),
        events=tuple(events),
        enabled=True,
        disabled_reason=None,
        secret=new_secret("hmac"),
        created_at_ms=now,
        updated_at_ms=now,
    )
    await svc.db.run(lambda tx: tx.insert_webhook(webhook))
    return _after_post(webhook.id, "saved")


def _after_post(webhook_id: str, notice: str) -> Response:
    # Post/Redirect/Get: reloading the page never submits the form again.
    return RedirectResponse(f"/settings/webhooks/{webhook_id}?notice={notice}", status_code=303)


async def _deliveries(svc: Services, webhook: Webhook) -> list[Any]:
    return await svc.db.read(lambda tx: tx.list_deliveries(webhook.org_id, webhook.id, None, 50))


def render_webhook_page(
    session: Session, webhook: Webhook, deliveries: list[Any], **extra: Any
) -> Response:
    return render("webhook.html", session=session, webhook=webhook, deliveries=deliveries, **extra)


async def webhook_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    svc = services_of(request)
    webhook_id = request.path_params["webhook_id"]
    webhook = await svc.db.read(lambda tx: tx.get_webhook(session.user.org_id, webhook_id))
    if webhook is None:
        return render("base.html", 404, session=session, error="No such webhook.")
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return render_webhook_page(session, webhook, await _deliveries(svc, webhook), notice=notice)


async def webhook_action(request: Request) -> Response:
    """POST /settings/webhooks/{id}/ACTION: secret, rotate, toggle, delete, deliveries/D/retry."""
    session = await current_session(request)
    if session is None:
        return to_login(request)
    if await _form_with_csrf(request, session) is None:
        return _csrf_failed()
    svc = services_of(request)
    org_id, now = session.user.org_id, svc.clock()
    webhook_id, action = request.path_params["webhook_id"], request.path_params["action"]
    webhook = await svc.db.read(lambda tx: tx.get_webhook(org_id, webhook_id))
    if webhook is None:
        return render("base.html", 404, session=session, error="No such webhook.")
    if action == "secret":  # showing it changes nothing: rendered in place
        deliveries = await _deliveries(svc, webhook)
        return render_webhook_page(session, webhook, deliveries, secret=webhook.secret)
    if action == "rotate":
        await svc.db.run(
            rotate_secret, org_id, webhook_id, scheme=None, grace_ms=86_400_000, now_ms=now
        )
        return _after_post(webhook_id, "rotated")
    if action == "toggle":
        enabled = not webhook.enabled
        changed = replace(
            webhook,
            enabled=enabled,
            updated_at_ms=now,
            disabled_reason=None if enabled else "disabled by user",
            failing_since_ms=None,
        )
        await svc.db.run(lambda tx: tx.update_webhook(changed))
        svc.signals.deliveries.notify()
        return _after_post(webhook_id, "enabled" if enabled else "disabled")
    if action == "delete":
        await svc.db.run(lambda tx: tx.delete_webhook(org_id, webhook_id))
        return RedirectResponse("/settings/webhooks", status_code=303)
    if action.startswith("deliveries/") and action.endswith("/retry"):
        delivery_id = action.split("/")[1]
        if await svc.db.run(retry_now, org_id, delivery_id, now) is None:
            return render("base.html", 404, session=session, error="No such delivery.")
        svc.signals.deliveries.notify()
        return _after_post(webhook_id, "retried")
    return render("base.html", 404, session=session, error="No such action.")


# Channels --------------------------------------------------------------------------------------


async def channels_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    return await _render_channels(request, session, {})


async def _render_channels(
    request: Request, session: Session, form: dict[str, Any], status: int = 200, **extra: Any
) -> Response:
    svc = services_of(request)
    channels = await svc.db.read(lambda tx: tx.list_channels(session.user.org_id, None, 200))
    token = svc.settings.meta_verify_token
    return render(
        "channels.html",
        status,
        session=session,
        channels=channels,
        form=form,
        callback_url=f"{svc.settings.public_url}/webhooks/instagram",
        verify_token=token.get_secret_value() if token else None,
        **extra,
    )


async def connect_channel(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    form = await _form_with_csrf(request, session)
    if form is None:
        return _csrf_failed()
    try:
        data = ChannelIn(
            handle=form.get("handle", ""),
            account_id=form.get("account_id", ""),
            access_token=form.get("access_token", ""),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors())
        return await _render_channels(request, session, form, 422, error=problems)
    svc = services_of(request)
    now = svc.clock()
    channel = Channel(
        id=new_id("ch", now),
        org_id=session.user.org_id,
        type="INSTAGRAM",
        handle=data.handle.removeprefix("@"),
        account_id=data.account_id,
        access_token=data.access_token,
        created_at_ms=now,
    )
    try:
        await svc.db.run(lambda tx: tx.insert_channel(channel))
    except ConflictError:
        return await _render_channels(
            request,
            session,
            form,
            409,
            error=f"Instagram account {data.account_id} is already connected.",
        )
    return RedirectResponse("/settings/channels", status_code=303)


routes = [
    Route("/", home, methods=["GET"]),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/settings/webhooks", webhooks_page, methods=["GET"]),
    Route("/settings/channels", channels_page, methods=["GET"]),
    Route("/settings/channels", connect_channel, methods=["POST"]),
    Route("/settings/webhooks/new", new_webhook_page, methods=["GET"]),
    Route("/settings/webhooks/new", create_webhook, methods=["POST"]),
    Route("/settings/webhooks/{webhook_id}", webhook_page, methods=["GET"]),
    Route("/settings/webhooks/{webhook_id}/{action:path}", webhook_action, methods=["POST"]),
    Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
]
