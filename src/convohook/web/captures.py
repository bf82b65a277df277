"""The capture URL of a bot ("On Webhook" trigger): records whatever it receives."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from convohook.runtime.services import Services
from convohook.usecases.bots import bot_by_token, record_capture
from convohook.web.errors import error_response
from convohook.web.inbound import BodyTooLarge, read_body

MAX_CAPTURE_BYTES = 1_048_576


async def capture(request: Request) -> Response:
    services: Services = request.app.state.services
    token = request.path_params["token"]
    bot = await services.db.read(bot_by_token, token)
    if bot is None:
        return error_response(404, "no bot has this capture URL; create one with POST /api/v1/bots")
    try:
        body = await read_body(request, MAX_CAPTURE_BYTES)
    except BodyTooLarge:
        return error_response(413, f"capture bodies are limited to {MAX_CAPTURE_BYTES} bytes")
    record = await services.db.run(
        record_capture,
        bot,
        method=request.method,
        headers=dict(request.headers.items()),
        body=body.decode(errors="replace"),
        now_ms=services.clock(),
    )
    services.signals.captures.notify()
    return JSONResponse({"received": True, "capture_id": record.id})


routes = [Route("/hooks/bots/{token}", capture, methods=["POST", "PUT"])]
