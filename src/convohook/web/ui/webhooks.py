"""Settings → Webhooks: the list, DoubleTick's two-step New Webhook flow, edit, and a webhook's
page with its deliveries, attempts and actions (retry, enable/disable, delete, secret)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.domain.ids import new_id
from convohook.domain.model import Channel, Session, Webhook
from convohook.runtime.services import Services
from convohook.storage.base import Transaction
from convohook.usecases.delivery import retry_now
from convohook.usecases.webhooks import new_secret, rotate_secret
from convohook.web.errors import ApiError
from convohook.web.rules import check_channels, check_webhook_url
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

NOTICES = {
    "saved": "Webhook saved. Reveal its signing secret below to verify deliveries.",
    "updated": "Changes saved.",
    "retried": "Sent again now.",
    "rotated": "New secret in place; the old one keeps signing for 24 hours. Reveal it below.",
    "enabled": "Webhook enabled.",
    "disabled": "Webhook disabled.",
}
SUBSCRIBABLE = ("conversation.opened", "conversation.closed")


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


async def _form_context(svc: Services, org_id: str) -> dict[str, Any]:
    """Channels to pick from, and the org's capture-bot URLs offered for the URL field."""

    def load(tx: Transaction) -> tuple[list[Channel], list[str]]:
        bots = tx.list_bots(org_id, None, 50)
        return tx.list_channels(org_id, None, 200), [
            f"{svc.settings.public_url}/hooks/bots/{b.token}" for b in bots
        ]

    channels, bot_urls = await svc.db.read(load)
    return {"channels": channels, "bot_urls": bot_urls}


async def new_webhook_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    context = await _form_context(services_of(request), session.user.org_id)
    url = request.query_params.get("url", "")  # Bot Studio's "Use in a new webhook"
    return render("webhook_new.html", session=session, step=1, form={"url": url}, **context)


async def _check(svc: Services, org_id: str, name: str, url: str, channels: list[str]) -> None:
    if not name:
        raise ApiError(422, "Give the webhook a name.")
    if not channels:
        raise ApiError(422, "Pick the Instagram channel whose conversations it follows.")
    await check_webhook_url(svc, url)
    await svc.db.read(check_channels, org_id, channels)


async def create_webhook(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    form = await form_with_csrf(request, session)
    if form is None:
        return csrf_failed(session)
    svc = services_of(request)
    org_id = session.user.org_id
    context = await _form_context(svc, org_id)
    name, url = form.get("name", "").strip(), form.get("url", "").strip()
    channel_id = form.get("channel_id", "")

    def again(step: int, error: str) -> Response:
        return render(
            "webhook_new.html", 422, session=session, step=step, form=form, error=error, **context
        )

    try:
        await _check(svc, org_id, name, url, [channel_id] if channel_id else [])
    except ApiError as exc:
        return again(1, exc.message)
    if form.get("step") != "2":
        return render("webhook_new.html", session=session, step=2, form=form, **context)
    events = [e for e in form.get("events", []) if e in SUBSCRIBABLE]
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
    return _back_to(webhook.id, "saved")


def _back_to(webhook_id: str, notice: str) -> Response:
    return see_other(f"/settings/webhooks/{webhook_id}?notice={notice}")


async def _load(request: Request, session: Session) -> Webhook | None:
    svc = services_of(request)
    webhook_id = request.path_params["webhook_id"]
    return await svc.db.read(lambda tx: tx.get_webhook(session.user.org_id, webhook_id))


async def _render_webhook(
    svc: Services, session: Session, webhook: Webhook, **extra: Any
) -> Response:
    def load(tx: Transaction) -> dict[str, Any]:
        return {
            "deliveries": tx.list_deliveries(webhook.org_id, webhook.id, None, 50),
            "channels": {c.id: c.handle for c in tx.list_channels(webhook.org_id, None, 200)},
        }

    context = await svc.db.read(load)
    return render("webhook.html", session=session, webhook=webhook, **context, **extra)


async def webhook_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    webhook = await _load(request, session)
    if webhook is None:
        return not_found(session, "webhook")
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return await _render_webhook(services_of(request), session, webhook, notice=notice)


async def edit_webhook_page(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    webhook = await _load(request, session)
    if webhook is None:
        return not_found(session, "webhook")
    context = await _form_context(services_of(request), session.user.org_id)
    form = {
        "name": webhook.name,
        "url": webhook.url,
        "channel_ids": list(webhook.channel_ids),
        "events": list(webhook.events),
    }
    return render("webhook_edit.html", session=session, webhook=webhook, form=form, **context)


async def save_webhook(request: Request) -> Response:
    session = await current_session(request)
    if session is None:
        return to_login(request)
    webhook = await _load(request, session)
    if webhook is None:
        return not_found(session, "webhook")
    form = await form_with_csrf(request, session)
    if form is None:
        return csrf_failed(session)
    svc = services_of(request)
    name, url = form.get("name", "").strip(), form.get("url", "").strip()
    channel_ids = [str(c) for c in form.get("channel_ids", [])]
    events = [e for e in form.get("events", []) if e in SUBSCRIBABLE]
    try:
        await _check(svc, session.user.org_id, name, url, channel_ids)
        if not events:
            raise ApiError(422, "Choose at least one event.")
    except ApiError as exc:
        context = await _form_context(svc, session.user.org_id)
        return render(
            "webhook_edit.html",
            422,
            session=session,
            webhook=webhook,
            form=form,
            error=exc.message,
            **context,
        )
    changed = replace(
        webhook,
        name=name,
        url=url,
        channel_ids=tuple(channel_ids),
        # events the UI does not offer (ops events set through the API) are kept
        events=(*events, *(e for e in webhook.events if e not in SUBSCRIBABLE)),
        updated_at_ms=svc.clock(),
    )
    await svc.db.run(lambda tx: tx.update_webhook(changed))
    return _back_to(webhook.id, "updated")


async def webhook_action(request: Request) -> Response:
    """POST /settings/webhooks/{id}/ACTION: secret, rotate, toggle, delete, deliveries/D/retry."""
    session = await current_session(request)
    if session is None:
        return to_login(request)
    if await form_with_csrf(request, session) is None:
        return csrf_failed(session)
    svc = services_of(request)
    org_id, now = session.user.org_id, svc.clock()
    webhook = await _load(request, session)
    if webhook is None:
        return not_found(session, "webhook")
    action = request.path_params["action"]
    if action == "secret":  # showing it changes nothing: rendered in place
        return await _render_webhook(svc, session, webhook, secret=webhook.secret)
    if action == "rotate":
        await svc.db.run(
            rotate_secret, org_id, webhook.id, scheme=None, grace_ms=86_400_000, now_ms=now
        )
        return _back_to(webhook.id, "rotated")
    if action == "toggle":
        enabled = not webhook.enabled
        changed = replace(
            webhook,
            enabled=enabled,
            updated_at_ms=now,
            disabled_reason=None if enabled else "disabled by user",
            failing_since_ms=None,
            queue_while_disabled=False,
        )
        await svc.db.run(lambda tx: tx.update_webhook(changed))
        svc.signals.deliveries.notify()
        return _back_to(webhook.id, "enabled" if enabled else "disabled")
    if action == "delete":
        await svc.db.run(lambda tx: tx.delete_webhook(org_id, webhook.id))
        return see_other("/settings/webhooks")
    if action.startswith("deliveries/") and action.endswith("/retry"):
        delivery_id = action.split("/")[1]
        if await svc.db.run(retry_now, org_id, delivery_id, now) is None:
            return not_found(session, "delivery")
        svc.signals.deliveries.notify()
        return _back_to(webhook.id, "retried")
    return not_found(session, "action")


routes = [
    Route("/settings/webhooks", webhooks_page, methods=["GET"]),
    Route("/settings/webhooks/new", new_webhook_page, methods=["GET"]),
    Route("/settings/webhooks/new", create_webhook, methods=["POST"]),
    Route("/settings/webhooks/{webhook_id}", webhook_page, methods=["GET"]),
    Route("/settings/webhooks/{webhook_id}/edit", edit_webhook_page, methods=["GET"]),
    Route("/settings/webhooks/{webhook_id}/edit", save_webhook, methods=["POST"]),
    Route("/settings/webhooks/{webhook_id}/{action:path}", webhook_action, methods=["POST"]),
]
