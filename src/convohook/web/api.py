"""/api/v1: thin routes. Every object is scoped to the caller's org; others' ids answer 404."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from convohook.domain.model import Org
from convohook.domain.webhooks import Credentials, WebhookChanges, WebhookSpec
from convohook.runtime.services import Services
from convohook.usecases import bots, channels, contacts, conversations, webhooks
from convohook.usecases.channels import NewChannel, connect_channel
from convohook.usecases.delivery import retry_now
from convohook.usecases.orgs import org_for_api_key
from convohook.web import schemas as s
from convohook.web.errors import ApiError, ErrorBody
from convohook.web.rules import check_headers, check_webhook_url

T = TypeVar("T")
MAX_PAGE = 200


def services_of(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def current_org(request: Request) -> Org:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="convohook"'}
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "missing API key: send 'Authorization: Bearer <api_key>' "
            "(create one with `convohook orgs create --name NAME`)",
            headers=challenge,
        )
    org = await services_of(request).db.read(org_for_api_key, key.strip())
    if org is None:
        raise ApiError(401, "unknown API key", headers=challenge)
    return org


OrgDep = Annotated[Org, Depends(current_org)]
SvcDep = Annotated[Services, Depends(services_of)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


async def no_nul_in_parameters(request: Request, org: OrgDep) -> None:
    """Path and query parameters with a NUL character are invalid (PostgreSQL cannot even
    compare with one): a 422 on either backend. After authentication, so that a stranger
    learns nothing but 401."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if s.has_nul(value):
            raise ApiError(422, f"{name}: {s.NUL_MESSAGE}")


_ERRORS = {
    400: "the body could not be read: send JSON, encoded as UTF-8",
    401: "no API key, or an unknown one: send 'Authorization: Bearer <api_key>'",
    404: "no such object in your org",
    409: "conflicts with an existing object (the message says which)",
    422: "invalid input: `message` says what is wrong, `details` lists each invalid field",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entries of these error answers, all in the one error shape."""
    return {status: {"model": ErrorBody, "description": _ERRORS[status]} for status in statuses}


# Every route authenticates and validates its input; each adds the errors of its own below.
router = APIRouter(
    prefix="/api/v1", dependencies=[Depends(no_nul_in_parameters)], responses=errors(401, 422)
)


def page(
    rows: Sequence[T], limit: int, render: Callable[[T], dict[str, Any]], key: Callable[[T], str]
) -> dict[str, Any]:
    """Rows were fetched with limit+1: the extra one only says whether there is a next page."""
    items = list(rows[:limit])
    return {
        "items": [render(r) for r in items],
        "next": key(items[-1]) if len(rows) > limit and items else None,
    }


# channels -------------------------------------------------------------------------------------


@router.post("/channels", status_code=201, responses=errors(400, 409))
async def create_channel(body: s.ChannelIn, org: OrgDep, svc: SvcDep) -> dict[str, Any]:
    new = NewChannel(body.handle, body.account_id, body.access_token)
    channel = await svc.db.run(connect_channel, org.id, new, svc.clock())
    return s.channel_json(channel)


@router.get("/channels")
async def list_channels(
    org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: str | None = None
) -> dict[str, Any]:
    rows = await svc.db.read(channels.list_channels, org.id, cursor, limit + 1)
    return page(rows, limit, s.channel_json, lambda c: c.id)


# webhooks -------------------------------------------------------------------------------------


def _credentials(auth: s.BasicAuth | s.BearerAuth | None) -> Credentials | None:
    if isinstance(auth, s.BasicAuth):
        return Credentials("basic", f"{auth.username}:{auth.password}")
    if isinstance(auth, s.BearerAuth):
        return Credentials("bearer", auth.token)
    return None


@router.post("/webhooks", status_code=201, responses=errors(400))
async def create_webhook(body: s.WebhookIn, org: OrgDep, svc: SvcDep) -> dict[str, Any]:
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
    # The only response that carries the secret.
    return s.webhook_json(webhook, with_secret=True)


@router.get("/webhooks")
async def list_webhooks(
    org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: str | None = None
) -> dict[str, Any]:
    rows = await svc.db.read(webhooks.list_webhooks, org.id, cursor, limit + 1)
    return page(rows, limit, s.webhook_json, lambda w: w.id)


@router.get("/webhooks/{webhook_id}", responses=errors(404))
async def get_webhook(webhook_id: str, org: OrgDep, svc: SvcDep) -> dict[str, Any]:
    return s.webhook_json(await svc.db.read(webhooks.get_webhook, org.id, webhook_id))


@router.patch("/webhooks/{webhook_id}", responses=errors(400, 404))
async def update_webhook(
    webhook_id: str, body: s.WebhookPatch, org: OrgDep, svc: SvcDep
) -> dict[str, Any]:
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
    return s.webhook_json(webhook)


@router.delete("/webhooks/{webhook_id}", status_code=204, responses=errors(404))
async def delete_webhook(webhook_id: str, org: OrgDep, svc: SvcDep) -> Response:
    await svc.db.run(webhooks.delete_webhook, org.id, webhook_id)
    # No body at all: a 204 with one ("null") broke the connection in uvicorn, and logged a
    # traceback for every delete.
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/rotate-secret", responses=errors(400, 404))
async def rotate_webhook_secret(
    webhook_id: str, body: s.RotateIn, org: OrgDep, svc: SvcDep
) -> dict[str, Any]:
    rotation = await svc.db.run(
        webhooks.rotate_secret,
        org.id,
        webhook_id,
        scheme=body.signature_scheme,
        grace_ms=body.grace_seconds * 1000,
        now_ms=svc.clock(),
    )
    return {
        **s.webhook_json(rotation.webhook),
        **webhooks.what_receivers_need(rotation.webhook.secret),
        "previous_valid_until": s.iso(rotation.previous_valid_until_ms),
    }


@router.post("/webhooks/{webhook_id}/recover", status_code=202, responses=errors(400, 404))
async def recover_webhook(
    webhook_id: str, body: s.RecoverIn, org: OrgDep, svc: SvcDep
) -> dict[str, Any]:
    since_ms = int(body.since.timestamp() * 1000)
    recovered = await svc.db.run(
        webhooks.recover, org.id, webhook_id, since_ms=since_ms, now_ms=svc.clock()
    )
    svc.signals.deliveries.notify()
    return {"recovered": recovered, "since": s.iso(since_ms)}


@router.get("/webhooks/{webhook_id}/deliveries", responses=errors(404))
async def list_deliveries(
    webhook_id: str, org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: str | None = None
) -> dict[str, Any]:
    rows = await svc.db.read(webhooks.list_deliveries, org.id, webhook_id, cursor, limit + 1)
    return page(rows, limit, s.delivery_json, lambda d: d.id)


@router.post("/deliveries/{delivery_id}/retry", status_code=202, responses=errors(404))
async def retry_delivery(delivery_id: str, org: OrgDep, svc: SvcDep) -> dict[str, Any]:
    delivery = await svc.db.run(retry_now, org.id, delivery_id, svc.clock())
    svc.signals.deliveries.notify()
    return s.delivery_json(delivery)


# conversations and contacts -------------------------------------------------------------------


@router.get("/conversations")
async def list_conversations(
    org: OrgDep,
    svc: SvcDep,
    status: Literal["open", "done"] | None = None,
    channel_id: str | None = None,
    contact_id: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    rows = await svc.db.read(
        conversations.list_conversations,
        org.id,
        status=status,
        channel_id=channel_id,
        contact_id=contact_id,
        cursor=cursor,
        limit=limit + 1,
    )
    return page(rows, limit, s.conversation_json, lambda v: v.id)


@router.get("/conversations/{conversation_id}", responses=errors(404))
async def get_conversation(conversation_id: str, org: OrgDep, svc: SvcDep) -> dict[str, Any]:
    conversation = await svc.db.read(conversations.get_conversation, org.id, conversation_id)
    return s.conversation_json(conversation)


@router.get("/conversations/{conversation_id}/messages", responses=errors(404))
async def list_messages(
    conversation_id: str, org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: str | None = None
) -> dict[str, Any]:
    """The customer's messages in this conversation, oldest first."""
    try:
        after = s.parse_message_cursor(cursor)
    except ValueError as exc:
        raise ApiError(422, str(exc)) from exc

    rows = await svc.db.read(conversations.list_messages, org.id, conversation_id, after, limit + 1)
    return page(rows, limit, s.message_json, s.message_cursor)


@router.post("/conversations/{conversation_id}/done", responses=errors(404))
async def mark_conversation_done(conversation_id: str, org: OrgDep, svc: SvcDep) -> dict[str, Any]:
    conversation = await svc.db.run(
        conversations.mark_done,
        org.id,
        conversation_id,
        clock=svc.clock,
        profile_deadline_ms=int(svc.settings.profile_deadline * 1000),
    )
    svc.signals.deliveries.notify()
    svc.signals.profiles.notify()
    return s.conversation_json(conversation)


@router.get("/contacts")
async def list_contacts(
    org: OrgDep,
    svc: SvcDep,
    handle: str | None = None,
    channel_id: str | None = None,
    limit: Limit = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    rows = await svc.db.read(
        contacts.list_contacts,
        org.id,
        handle=handle,
        channel_id=channel_id,
        cursor=cursor,
        limit=limit + 1,
    )
    return page(rows, limit, s.contact_json, lambda c: c.id)


# capture bots ---------------------------------------------------------------------------------


@router.post("/bots", status_code=201, responses=errors(400))
async def create_bot(body: s.BotIn, org: OrgDep, svc: SvcDep) -> dict[str, Any]:
    bot = await svc.db.run(bots.create_bot, org.id, body.name, body.trigger, svc.clock())
    return s.bot_json(bot, svc.settings.public_url)


@router.get("/bots")
async def list_bots(
    org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: str | None = None
) -> dict[str, Any]:
    rows = await svc.db.read(bots.list_bots, org.id, cursor, limit + 1)
    return page(rows, limit, lambda b: s.bot_json(b, svc.settings.public_url), lambda b: b.id)


@router.get("/bots/{bot_id}", responses=errors(404))
async def get_bot(bot_id: str, org: OrgDep, svc: SvcDep) -> dict[str, Any]:
    bot = await svc.db.read(bots.get_bot, org.id, bot_id)
    return s.bot_json(bot, svc.settings.public_url)


@router.get("/bots/{bot_id}/captures", responses=errors(404))
async def list_captures(
    bot_id: str, org: OrgDep, svc: SvcDep, limit: Limit = 50, cursor: str | None = None
) -> dict[str, Any]:
    rows = await svc.db.read(bots.list_captures, org.id, bot_id, cursor, limit + 1)
    return page(rows, limit, s.capture_json, lambda c: c.id)
