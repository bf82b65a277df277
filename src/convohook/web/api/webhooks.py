"""/api/v1/webhooks: where openings (and the other events) are sent, their secrets rotated,
failed deliveries sent again, and their delivery log."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from convohook.domain.webhooks import Credentials, WebhookChanges, WebhookSpec
from convohook.usecases import webhooks
from convohook.web.api.common import PREFIX, Cursor, Limit, ObjectId, OrgDep, SvcDep, errors, page
from convohook.web.api.deliveries import DeliveryPage, delivery_out
from convohook.web.api.webhook_answers import (
    NewWebhookOut,
    RecoveredOut,
    RotatedWebhookOut,
    WebhookOut,
    WebhookPage,
    new_webhook_out,
    recovered_out,
    rotated_webhook_out,
    webhook_out,
)
from convohook.web.api.webhook_requests import (
    BasicAuth,
    BearerAuth,
    RecoverIn,
    RotateIn,
    WebhookIn,
    WebhookPatch,
)
from convohook.web.rules import check_headers, check_webhook_url

router = APIRouter(prefix=PREFIX, tags=["webhooks"])


def _credentials(auth: BasicAuth | BearerAuth | None) -> Credentials | None:
    if isinstance(auth, BasicAuth):
        return Credentials("basic", f"{auth.username}:{auth.password}")
    if isinstance(auth, BearerAuth):
        return Credentials("bearer", auth.token)
    return None


@router.post("/webhooks", status_code=201, responses=errors(400))
async def create_webhook(body: WebhookIn, org: OrgDep, svc: SvcDep) -> NewWebhookOut:
    """The answer is the only one with the webhook's HMAC `secret` (rotation's aside)."""
    await check_webhook_url(svc, body.url)
    check_headers(body.headers)
    spec = WebhookSpec(
        name=body.name,
        url=body.url,
        channel_ids=tuple(body.channel_ids),
        events=tuple(body.events),
        enabled=body.enabled,
        format=body.format,
        headers=body.headers,
        auth=_credentials(body.auth),
        timeout_s=body.timeout_seconds,
        signature_scheme=body.signature_scheme,
        rate_limit_per_s=body.rate_limit_per_second,
        max_concurrency=body.max_concurrency,
        ordering=body.ordering,
    )
    webhook = await svc.db.run(webhooks.create_webhook, org.id, spec, svc.clock())
    return new_webhook_out(webhook)


@router.get("/webhooks")
async def list_webhooks(
    org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: Cursor = None
) -> WebhookPage:
    """Newest first; secrets are never listed."""
    rows = await svc.db.read(webhooks.list_webhooks, org.id, cursor, limit + 1)
    return page(WebhookPage, rows, limit, webhook_out, lambda w: w.id)


@router.get("/webhooks/{webhook_id}", responses=errors(404))
async def get_webhook(webhook_id: ObjectId, org: OrgDep, svc: SvcDep) -> WebhookOut:
    return webhook_out(await svc.db.read(webhooks.get_webhook, org.id, webhook_id))


@router.patch("/webhooks/{webhook_id}", responses=errors(400, 404))
async def update_webhook(
    webhook_id: ObjectId, body: WebhookPatch, org: OrgDep, svc: SvcDep
) -> WebhookOut:
    """`{"enabled": true}` re-enables a disabled webhook: what waited for it is sent then."""
    if body.url is not None:
        await check_webhook_url(svc, body.url)
    check_headers(body.headers)
    changes = WebhookChanges(
        name=body.name,
        url=body.url,
        channel_ids=None if body.channel_ids is None else tuple(body.channel_ids),
        events=None if body.events is None else tuple(body.events),
        enabled=body.enabled,
        format=body.format,
        headers=body.headers,
        auth=_credentials(body.auth),
        remove_auth=body.remove_auth,
        timeout_s=body.timeout_seconds,
        rate_limit_per_s=body.rate_limit_per_second,
        max_concurrency=body.max_concurrency,
        remove_limits=body.remove_limits,
        ordering=body.ordering,
    )
    webhook = await svc.db.run(webhooks.change_webhook, org.id, webhook_id, changes, svc.clock())
    svc.signals.deliveries.notify()  # re-enabling may make waiting deliveries due
    return webhook_out(webhook)


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=204,
    response_class=Response,
    responses={**errors(404), 204: {"description": "deleted; no body"}},
)
async def delete_webhook(webhook_id: ObjectId, org: OrgDep, svc: SvcDep) -> Response:
    await svc.db.run(webhooks.delete_webhook, org.id, webhook_id)
    # No body at all: a 204 with one ("null") broke the connection in uvicorn, and logged a
    # traceback for every delete.
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/rotate-secret", responses=errors(400, 404))
async def rotate_webhook_secret(
    webhook_id: ObjectId, body: RotateIn, org: OrgDep, svc: SvcDep
) -> RotatedWebhookOut:
    """A new secret (or key pair); until `previous_valid_until` deliveries carry signatures by
    the old one and the new one."""
    rotation = await svc.db.run(
        webhooks.rotate_secret,
        org.id,
        webhook_id,
        scheme=body.signature_scheme,
        grace_ms=body.grace_seconds * 1000,
        now_ms=svc.clock(),
    )
    return rotated_webhook_out(rotation.webhook, rotation.previous_valid_until_ms)


@router.post("/webhooks/{webhook_id}/recover", status_code=202, responses=errors(400, 404))
async def recover_webhook(
    webhook_id: ObjectId, body: RecoverIn, org: OrgDep, svc: SvcDep
) -> RecoveredOut:
    """Every failed delivery of the webhook created since then is sent again."""
    recovered = await svc.db.run(
        webhooks.recover, org.id, webhook_id, since_ms=body.since_ms, now_ms=svc.clock()
    )
    svc.signals.deliveries.notify()
    return recovered_out(recovered, body.since_ms)


@router.get("/webhooks/{webhook_id}/deliveries", responses=errors(404))
async def list_deliveries(
    webhook_id: ObjectId, org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: Cursor = None
) -> DeliveryPage:
    """Newest first, each with its attempts."""
    rows = await svc.db.read(webhooks.list_deliveries, org.id, webhook_id, cursor, limit + 1)
    return page(DeliveryPage, rows, limit, delivery_out, lambda d: d.id)
