"""Settings → Webhooks: the list, DoubleTick's two-step New Webhook flow, edit, and a webhook's
page with its deliveries, attempts and actions (retry, enable/disable, delete, secret)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from convohook.delivery.ssrf import BlockedTarget
from convohook.domain.model import Session
from convohook.domain.webhooks import CONVERSATION_EVENTS, WebhookChanges, WebhookSpec
from convohook.runtime.services import Services
from convohook.usecases import webhooks
from convohook.usecases.delivery import retry_now
from convohook.usecases.errors import Invalid
from convohook.web.errors import ApiError
from convohook.web.rules import TargetRefused, check_webhook_url
from convohook.web.ui.common import form_action, page, render, see_other, services_of

NOTICES = {
    "saved": "Webhook saved. Reveal its signing secret below to verify deliveries.",
    "updated": "Changes saved.",
    "retried": "Sent again now.",
    "rotated": "New secret in place; the old one keeps signing for 24 hours. Reveal it below.",
    "enabled": "Webhook enabled.",
    "disabled": "Webhook disabled.",
}
SUBSCRIBABLE = ("conversation.opened", "conversation.closed", "conversation.assigned")
ROTATION_GRACE_MS = 86_400_000


@page
async def webhooks_page(request: Request, session: Session) -> Response:
    svc = services_of(request)
    overview = await svc.db.read(webhooks.webhooks_overview, session.user.org_id)
    return render(
        "webhooks.html",
        session=session,
        webhooks=overview.webhooks,
        channels=overview.channels,
        counts=overview.counts,
    )


async def _form_context(svc: Services, org_id: str) -> dict[str, Any]:
    """Channels to pick from, and the org's capture-bot URLs offered for the URL field."""
    choices = await svc.db.read(webhooks.webhook_form_choices, org_id, svc.settings.public_url)
    return {"channels": choices.channels, "bot_urls": choices.capture_urls}


@page
async def new_webhook_page(request: Request, session: Session) -> Response:
    context = await _form_context(services_of(request), session.user.org_id)
    url = request.query_params.get("url", "")  # Bot Studio's "Use in a new webhook"
    return render("webhook_new.html", session=session, step=1, form={"url": url}, **context)


def refused_in_words_for_people(refused: BlockedTarget) -> str:
    """The SSRF guard's refusal for someone in a browser, who cannot set convohook's
    environment (the API's message says how to): what is wrong, why, and what they can do."""
    where = refused.target
    if refused.address is not None and str(refused.address) != refused.target:
        where += f", which resolves to {refused.address}"
    return (
        f"The URL points to {where}, a private or local address ({refused.reason}). "
        "convohook refuses those so that webhooks cannot reach into the network it runs in. "
        "Use a public URL, such as your receiver's https:// address (or a Bot Studio URL to "
        "try things out); if this address is really meant, ask whoever runs convohook to allow "
        "private targets."
    )


async def _check(svc: Services, name: str, url: str, channels: list[str]) -> None:
    """What a person must fix before the webhook can be saved (the use case checks the
    channels, in its transaction)."""
    if not name:
        raise ApiError(422, "Give the webhook a name.")
    if not channels:
        raise ApiError(422, "Pick the Instagram channel whose conversations it follows.")
    try:
        await check_webhook_url(svc, url)
    except TargetRefused as exc:
        raise ApiError(422, refused_in_words_for_people(exc.refused)) from exc


@form_action
async def create_webhook(request: Request, session: Session, form: dict[str, Any]) -> Response:
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
        await _check(svc, name, url, [channel_id] if channel_id else [])
    except ApiError as exc:
        return again(1, exc.message)
    if form.get("step") != "2":
        return render("webhook_new.html", session=session, step=2, form=form, **context)
    events = [e for e in form.get("events", []) if e in SUBSCRIBABLE]
    if not events:
        return again(2, "Choose at least one event.")
    spec = WebhookSpec(name=name, url=url, channel_ids=(channel_id,), events=tuple(events))
    try:
        webhook = await svc.db.run(webhooks.create_webhook, org_id, spec, svc.clock())
    except Invalid as exc:
        return again(1, exc.message)
    return _back_to(webhook.id, "saved")


def _back_to(webhook_id: str, notice: str) -> Response:
    return see_other(f"/settings/webhooks/{webhook_id}?notice={notice}")


async def _render_webhook(
    svc: Services, session: Session, webhook_id: str, **extra: Any
) -> Response:
    detail = await svc.db.read(webhooks.webhook_detail, session.user.org_id, webhook_id)
    return render(
        "webhook.html",
        session=session,
        webhook=detail.webhook,
        deliveries=detail.deliveries,
        channels=detail.channels,
        **extra,
    )


@page
async def webhook_page(request: Request, session: Session) -> Response:
    notice = NOTICES.get(request.query_params.get("notice", ""))
    webhook_id = request.path_params["webhook_id"]
    return await _render_webhook(services_of(request), session, webhook_id, notice=notice)


@page
async def edit_webhook_page(request: Request, session: Session) -> Response:
    svc = services_of(request)
    org_id = session.user.org_id
    webhook = await svc.db.read(webhooks.get_webhook, org_id, request.path_params["webhook_id"])
    form = {
        "name": webhook.name,
        "url": webhook.url,
        "channel_ids": list(webhook.channel_ids),
        "events": list(webhook.events),
    }
    context = await _form_context(svc, org_id)
    return render("webhook_edit.html", session=session, webhook=webhook, form=form, **context)


@form_action
async def save_webhook(request: Request, session: Session, form: dict[str, Any]) -> Response:
    svc = services_of(request)
    org_id = session.user.org_id
    webhook = await svc.db.read(webhooks.get_webhook, org_id, request.path_params["webhook_id"])
    name, url = form.get("name", "").strip(), form.get("url", "").strip()
    channel_ids = [str(c) for c in form.get("channel_ids", [])]
    events = [e for e in form.get("events", []) if e in SUBSCRIBABLE]
    changes = WebhookChanges(
        name=name,
        url=url,
        channel_ids=tuple(channel_ids),
        events=tuple(events),
        # the events the UI does not offer (operations events set through the API) are kept
        events_offered=CONVERSATION_EVENTS,
    )
    try:
        await _check(svc, name, url, channel_ids)
        if not events:
            raise ApiError(422, "Choose at least one event.")
        await svc.db.run(webhooks.change_webhook, org_id, webhook.id, changes, svc.clock())
    except (ApiError, Invalid) as exc:
        context = await _form_context(svc, org_id)
        return render(
            "webhook_edit.html",
            422,
            session=session,
            webhook=webhook,
            form=form,
            error=exc.message,
            **context,
        )
    return _back_to(webhook.id, "updated")


@form_action
async def webhook_action(request: Request, session: Session, form: dict[str, Any]) -> Response:
    """POST /settings/webhooks/{id}/ACTION: secret, rotate, enable, disable, delete,
    deliveries/D/retry."""
    svc = services_of(request)
    org_id, now = session.user.org_id, svc.clock()
    webhook_id = request.path_params["webhook_id"]
    action = request.path_params["action"]
    if action == "secret":  # showing it changes nothing: rendered in place
        webhook = await svc.db.read(webhooks.get_webhook, org_id, webhook_id)
        return await _render_webhook(svc, session, webhook_id, secret=webhook.secret)
    if action == "rotate":
        await svc.db.run(
            webhooks.rotate_secret,
            org_id,
            webhook_id,
            scheme=None,
            grace_ms=ROTATION_GRACE_MS,
            now_ms=now,
        )
        return _back_to(webhook_id, "rotated")
    if action in ("enable", "disable"):
        # The button says which state it asks for: a webhook disabled meanwhile (by the
        # dispatcher, in another tab) is not enabled again by a click meant to disable it.
        changes = WebhookChanges(enabled=action == "enable")
        await svc.db.run(webhooks.change_webhook, org_id, webhook_id, changes, now)
        svc.signals.deliveries.notify()
        return _back_to(webhook_id, f"{action}d")
    if action == "delete":
        await svc.db.run(webhooks.delete_webhook, org_id, webhook_id)
        return see_other("/settings/webhooks")
    if action.startswith("deliveries/") and action.endswith("/retry"):
        await svc.db.read(webhooks.get_webhook, org_id, webhook_id)
        await svc.db.run(retry_now, org_id, action.split("/")[1], now)
        svc.signals.deliveries.notify()
        return _back_to(webhook_id, "retried")
    return not_found_action(session)


def not_found_action(session: Session) -> Response:
    return render("base.html", 404, session=session, error="No such action.")


routes = [
    Route("/settings/webhooks", webhooks_page, methods=["GET"]),
    Route("/settings/webhooks/new", new_webhook_page, methods=["GET"]),
    Route("/settings/webhooks/new", create_webhook, methods=["POST"]),
    Route("/settings/webhooks/{webhook_id}", webhook_page, methods=["GET"]),
    Route("/settings/webhooks/{webhook_id}/edit", edit_webhook_page, methods=["GET"]),
    Route("/settings/webhooks/{webhook_id}/edit", save_webhook, methods=["POST"]),
    Route("/settings/webhooks/{webhook_id}/{action:path}", webhook_action, methods=["POST"]),
]
