"""The application factory: one ASGI app serving the receiver, the API and the capture bots."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from convohook import __version__
from convohook.config import Settings
from convohook.runtime import readiness, scrape
from convohook.runtime.services import Services, build_services
from convohook.runtime.workers import run_workers
from convohook.storage.errors import StorageError
from convohook.usecases.clock import Clock, system_clock
from convohook.usecases.errors import UseCaseError
from convohook.web import api, captures, inbound, ui
from convohook.web.api import docs
from convohook.web.errors import (
    ApiError,
    handle_api_error,
    handle_http_exception,
    handle_storage_error,
    handle_use_case_error,
    handle_validation_error,
)

log = logging.getLogger(__name__)


class FastLane:
    """Meta's POSTs skip FastAPI's middleware stack and route table: the hot path costs ~10%
    less CPU per request. Everything else, errors included, goes through the app as usual."""

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], ASGIApp]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": __version__})


async def readyz(request: Request) -> Response:
    found = await readiness.check(request.app.state.services)
    return JSONResponse(
        {"status": "ready" if found.ready else "not ready", "checks": found.checks},
        status_code=200 if found.ready else 503,
    )


async def metrics(request: Request) -> Response:
    body = await scrape.scrape(request.app.state.services)
    return Response(body, media_type=scrape.CONTENT_TYPE)


def create_app(
    settings: Settings,
    *,
    workers: bool = True,
    clock: Clock = system_clock,
    services: Services | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> FastAPI:
    """`workers=False` serves HTTP only (`serve --no-worker`); `services` lets tests inject;
    `extra_routes`: the demo's own (devtools)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or await build_services(settings, clock=clock)
        app.state.services = svc
        task = asyncio.create_task(run_workers(svc)) if workers else None
        svc.workers = task
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if services is None:
                await svc.aclose()

    app = FastAPI(
        title="convohook",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by web/api/docs.py, from files of our own rather than a CDN
        openapi_url=docs.OPENAPI_URL,
        redoc_url=None,
    )
    app.add_exception_handler(ApiError, handle_api_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(UseCaseError, handle_use_case_error)
    app.add_exception_handler(StorageError, handle_storage_error)
    # Raw Starlette routes on the hot path: no body model, no validation layer to pay for.
    for route in [*inbound.routes, *captures.routes, *ui.routes, *docs.routes, *extra_routes]:
        app.router.routes.append(route)
    app.add_route("/healthz", healthz, methods=["GET"])
    app.add_route("/readyz", readyz, methods=["GET"])
    app.add_route("/metrics", metrics, methods=["GET"])
    app.include_router(api.router)
    app.add_middleware(FastLane, routes={("POST", "/webhooks/instagram"): inbound.receive_app})
    return app
