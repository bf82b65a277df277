"""The limit: a bare relay with convohook's HTTP stack and nothing else, in its own process.

    .venv/bin/python bench/relay.py --port 8100 --graph-url http://127.0.0.1:P/v24.0 \\
        --target-url http://127.0.0.1:Q/hook --webhook-secret whsec_…

What any Meta-to-webhook service must do per DM, done with the same code and libraries as
convohook: a raw Starlette route on uvicorn (uvloop, httptools) reads the body
(`web.inbound.read_body`), checks `X-Hub-Signature-256` (`meta.signature`), parses
(`meta.parse`) and answers 200; a background task then looks the profile up on the Graph API
(`outbound.graph_client.GraphClient`, its own aiohttp session, as convohook has), builds
DoubleTick's body (`domain.payload`), signs it (`delivery.signing`) and POSTs it
(`outbound.webhooks.send` on `create_session`, the SSRF-guarded pool convohook delivers with).

What it leaves out is what convohook is for: no database, so no durable acknowledgement, no
conversation state (every message "opens"), no deduplication, no retries, no delivery log.
`GET /_relay/stats` counts what went wrong (lookups that failed, deliveries not answered 2xx).

Backpressure: at most `DELIVERY_CONCURRENCY` DMs are relayed at once; past that, Meta's POST
waits for a slot before it is answered. Without it the relay answers faster than it can relay,
its backlog grows without bound on a slow machine, and lookups queued behind the connection
pool time out: a limit that loses DMs is no limit (convohook is bounded the same way, by its
claim batches and its delivery pool).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from convohook.delivery.signing import webhook_headers
from convohook.domain.ids import new_customer_id, new_id
from convohook.domain.inbound import InboundItem
from convohook.domain.payload import CustomerProfile, conversation_opened_body
from convohook.meta.graph import ProfileUnavailable
from convohook.meta.parse import MalformedNotification, parse_notification
from convohook.meta.signature import verify_signature
from convohook.outbound.graph_client import GraphClient
from convohook.outbound.webhooks import create_session, send
from convohook.runtime.collector import tune_collector
from convohook.web.inbound import BodyTooLarge, read_body

from common import ACCESS_TOKEN, ACCOUNT, APP_SECRET, HANDLE

log = logging.getLogger("relay")

MAX_INBOUND_BYTES = 1_048_576  # convohook's default max_inbound_bytes
DELIVERY_TIMEOUT_S = 15.0  # convohook's default delivery_timeout
GRAPH_TIMEOUT_S = 5.0  # convohook's default graph_timeout
DELIVERY_CONCURRENCY = 256  # convohook's default delivery_concurrency (its pool size)


@dataclass(frozen=True, slots=True)
class RelayConfig:
    app_secret: str
    graph_url: str
    target_url: str
    webhook_secret: str
    account: str
    handle: str
    access_token: str


@dataclass
class Relay:
    config: RelayConfig
    graph: GraphClient
    delivery: aiohttp.ClientSession
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    stats: Counter[str] = field(default_factory=Counter)
    slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(DELIVERY_CONCURRENCY)
    )

    async def start(self, item: InboundItem) -> None:
        await self.slots.acquire()
        task = asyncio.create_task(self.relay(item))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def relay(self, item: InboundItem) -> None:
        try:
            await self._relay(item)
        finally:
            self.slots.release()

    async def _relay(self, item: InboundItem) -> None:
        c = self.config
        try:
            profile = await self.graph.fetch_profile(item.customer_igsid, c.access_token)
        except ProfileUnavailable as exc:
            # convohook retries for up to 60 s first; the relay sends what it knows at once.
            self.stats["profile_unavailable"] += 1
            log.warning("profile of %s unavailable: %s", item.customer_igsid, exc.reason)
            profile = CustomerProfile(username=item.customer_igsid, name=None)
        body = conversation_opened_body(
            business_handle=c.handle, profile=profile, customer_id=new_customer_id()
        )
        msg_id = new_id("msg")
        headers = webhook_headers([c.webhook_secret], msg_id, int(time.time()), body)
        result = await send(
            self.delivery,
            c.target_url,
            headers,
            body,
            timeout=DELIVERY_TIMEOUT_S,
            allow_private=True,
        )
        if result.ok:
            self.stats["delivered"] += 1
        else:
            self.stats["delivery_failed"] += 1
            log.warning("delivery %s failed: %s", msg_id, result.error)


def create_relay_app(config: RelayConfig) -> Starlette:
    state: dict[str, Relay] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        delivery = create_session(allow_private=True, limit=DELIVERY_CONCURRENCY)
        graph_session = aiohttp.ClientSession()
        state["relay"] = Relay(
            config, GraphClient(graph_session, config.graph_url, timeout=GRAPH_TIMEOUT_S), delivery
        )
        try:
            yield
        finally:
            relay = state.pop("relay")
            for task in list(relay.tasks):
                task.cancel()
            await asyncio.gather(*relay.tasks, return_exceptions=True)
            await delivery.close()
            await graph_session.close()

    async def receive(request: Request) -> Response:
        relay = state["relay"]
        try:
            body = await read_body(request, MAX_INBOUND_BYTES)
        except BodyTooLarge:
            return PlainTextResponse("too large", status_code=413)
        if not verify_signature(
            config.app_secret, body, request.headers.get("x-hub-signature-256")
        ):
            relay.stats["invalid_signature"] += 1
            return PlainTextResponse("invalid X-Hub-Signature-256", status_code=401)
        try:
            parsed = parse_notification(body)
        except MalformedNotification as exc:
            return PlainTextResponse(str(exc), status_code=400)
        for item in parsed.items:
            if (
                item.is_customer_message
                and item.account_id == config.account
                and item.customer_igsid != config.account
            ):
                await relay.start(item)
        relay.stats["notifications"] += 1
        return PlainTextResponse("EVENT_RECEIVED")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def stats(request: Request) -> Response:
        relay = state["relay"]
        return JSONResponse({**relay.stats, "in_flight": len(relay.tasks)})

    return Starlette(
        routes=[
            Route("/webhooks/instagram", receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/_relay/stats", stats, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--graph-url", required=True, help="e.g. http://127.0.0.1:P/v24.0")
    parser.add_argument("--target-url", required=True, help="where to POST the webhooks")
    parser.add_argument("--webhook-secret", required=True, help="whsec_… to sign them with")
    parser.add_argument("--app-secret", default=APP_SECRET)
    parser.add_argument("--account", default=ACCOUNT)
    parser.add_argument("--handle", default=HANDLE)
    parser.add_argument("--access-token", default=ACCESS_TOKEN)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = RelayConfig(
        app_secret=args.app_secret,
        graph_url=args.graph_url,
        target_url=args.target_url,
        webhook_secret=args.webhook_secret,
        account=args.account,
        handle=args.handle,
        access_token=args.access_token,
    )
    relay_app = create_relay_app(config)
    # As `convohook serve` runs: the same collector set-up, and uvicorn's defaults pick uvloop
    # and httptools when installed.
    if os.environ.get("CONVOHOOK_BENCH_RELAY_DEFAULT_GC") != "1":
        tune_collector()
    uvicorn.run(
        relay_app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_level="info",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
