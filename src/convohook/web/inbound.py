"""Meta's side: the verification handshake and signed notifications (stored before the 200)."""

from __future__ import annotations

import hmac
import logging

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, request_response

from convohook.meta.notifications import CHECK_ACCOUNTS_HEADER
from convohook.meta.parse import MalformedNotification, parse_notification
from convohook.meta.signature import verify_signature
from convohook.runtime.services import Services
from convohook.storage.errors import StorageError
from convohook.usecases.channels import unknown_accounts
from convohook.web.errors import error_response

log = logging.getLogger(__name__)


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def verify(request: Request) -> Response:
    services: Services = request.app.state.services
    expected = services.settings.meta_verify_token
    params = request.query_params
    if expected is None:
        return error_response(
            503,
            "CONVOHOOK_META_VERIFY_TOKEN is not set: set it to the token you enter in Meta's "
            "app dashboard, then restart",
        )
    token = params.get("hub.verify_token", "")
    if params.get("hub.mode") != "subscribe" or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        return error_response(
            403,
            "verification failed: hub.mode must be 'subscribe' and "
            "hub.verify_token must equal CONVOHOOK_META_VERIFY_TOKEN",
        )
    return PlainTextResponse(params.get("hub.challenge", ""))


async def receive(request: Request) -> Response:
    services: Services = request.app.state.services
    settings = services.settings
    if settings.meta_app_secret is None:
        # 503, not 4xx: Meta retries, so nothing is lost while the operator fixes the setting.
        return error_response(
            503, "CONVOHOOK_META_APP_SECRET is not set: set it to your Meta app's secret"
        )
    try:
        body = await read_body(request, settings.max_inbound_bytes)
    except BodyTooLarge:
        services.metrics.notifications.labels("too_large").inc()
        return error_response(413, f"notification larger than {settings.max_inbound_bytes} bytes")
    # The signature is checked on the raw bytes before anything is parsed or stored.
    if not verify_signature(
        settings.meta_app_secret.get_secret_value(),
        body,
        request.headers.get("x-hub-signature-256"),
    ):
        services.metrics.notifications.labels("invalid_signature").inc()
        return error_response(
            401,
            "invalid X-Hub-Signature-256: it must be sha256=HMAC(app secret, raw body); "
            "check CONVOHOOK_META_APP_SECRET",
        )
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        services.metrics.notifications.labels("malformed").inc()
        return error_response(400, "body is not valid JSON")
    if not isinstance(parsed, dict):
        services.metrics.notifications.labels("malformed").inc()
        return error_response(400, "body must be a JSON object")
    try:
        await services.store_notification(body)
    except StorageError as exc:
        log.error("could not store a notification, answering 503 so Meta retries: %s", exc)
        services.metrics.notifications.labels("unavailable").inc()
        return error_response(503, "storage unavailable, try again")
    services.signals.notifications.notify()
    services.metrics.notifications.labels("stored").inc()
    if CHECK_ACCOUNTS_HEADER in request.headers:
        return await _with_unknown_accounts(services, body)
    return PlainTextResponse("EVENT_RECEIVED")


async def _with_unknown_accounts(services: Services, body: bytes) -> Response:
    """The stored notification's accounts that no channel has, as the processor will find
    them (items of those accounts are skipped). Only asked for by the simulator, so Meta's
    requests never pay for the read."""
    try:
        accounts = [item.account_id for item in parse_notification(body).items]
        unknown = await services.db.read(unknown_accounts, accounts) if accounts else []
    except (MalformedNotification, StorageError) as exc:
        # Stored already: the answer stays a 200, only without the check.
        log.warning("could not check a simulated notification's accounts: %s", exc)
        return PlainTextResponse("EVENT_RECEIVED")
    return JSONResponse({"status": "EVENT_RECEIVED", "unknown_accounts": unknown})


routes = [
    Route("/webhooks/instagram", verify, methods=["GET"]),
    Route("/webhooks/instagram", receive, methods=["POST"]),
]
receive_app = request_response(receive)  # for the app's fast lane, without the route table
