"""`/metrics`: counters kept by the hot path, gauges read at each scrape; served by `serve` and,
with `--metrics-port`, by each `convohook worker` (each process reports its own counters;
Prometheus sums them across processes)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from convohook.runtime.services import Services
from convohook.storage.errors import StorageError
from convohook.usecases import status

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4"


async def scrape(services: Services) -> bytes:
    now = services.clock()
    try:
        backlog = await services.db.read(status.backlog, now)
    except StorageError:
        log.warning("metrics: the database did not answer; backlog gauges not updated")
    else:
        services.metrics.observe_backlog(backlog, now)
    services.metrics.observe_beats(services.beats, time.monotonic())
    return services.metrics.render()


async def serve_metrics(services: Services, host: str, port: int) -> Callable[[], Awaitable[None]]:
    """Serve `GET /metrics` on `host:port` in this event loop; returns how to stop it."""

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=await scrape(services), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    return runner.cleanup
