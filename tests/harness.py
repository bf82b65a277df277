"""Test doubles that are real servers: a webhook receiver, the app on a real socket, Meta."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvicorn
from aiohttp import web
from standardwebhooks.webhooks import Webhook as StandardWebhook

from convohook.meta.notifications import encode
from convohook.meta.signature import sign_body

TIMEOUT = aiohttp.ClientTimeout(total=10)

ADMIN_URL = os.environ.get(
    "CONVOHOOK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def database_url(name: str) -> str:
    """The URL of database `name` on the test PostgreSQL server."""
    return ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def admin_execute(*statements: str) -> None:
    """Statements on the PostgreSQL server as its superuser (databases made and dropped)."""
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        for statement in statements:
            conn.execute(statement)


async def eventually(check: Any, timeout: float = 15.0) -> Any:
    """Poll `check` (a coroutine function) until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while True:
            value = await check()
            if value:
                return value
            await asyncio.sleep(0.05)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Receiver:
    """A subscriber endpoint. Answers `statuses` in turn (then 200); verifies with the public
    `standardwebhooks` library when given the secret."""

    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    delay: float = 0.0  # seconds before answering (a slow endpoint)
    in_flight: int = 0
    max_in_flight: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.received.append(Received(dict(request.headers), await request.read()))
        self.arrived.set()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "nope")

    def verify_all(self, secret: str) -> list[Any]:
        verifier = StandardWebhook(secret)
        return [verifier.verify(r.body, r.headers) for r in self.received]

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@contextlib.asynccontextmanager
async def run_receiver(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serve_asgi(app: Any, sock: socket.socket) -> AsyncIterator[str]:
    """Run an ASGI app on a real socket in this loop (uvicorn, as in production)."""
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


class Meta:
    """Plays Meta: signs notifications with the app secret and POSTs them."""

    def __init__(self, base_url: str, app_secret: str) -> None:
        self.base_url = base_url
        self.app_secret = app_secret

    async def post(self, body: dict[str, Any] | bytes, *, signature: str | None = None) -> int:
        raw = body if isinstance(body, bytes) else encode(body)
        sig = signature if signature is not None else sign_body(self.app_secret, raw)
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.post(
                f"{self.base_url}/webhooks/instagram",
                data=raw,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig},
            ) as response,
        ):
            await response.read()
            return response.status


class Api:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {api_key}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT, headers=self.headers) as http,
            http.request(method, f"{self.base_url}{path}", json=body) as response,
        ):
            raw = await response.read()
            return response.status, orjson.loads(raw) if raw else None

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = await self.call(method, path, body)
        assert status < 300, (status, payload)
        return payload


async def wait_healthy(
    url: str, proc: subprocess.Popen[bytes] | None = None, log: Path | None = None
) -> None:
    """Wait for a `convohook` process to answer /healthz; fail with its log if it exits."""
    async with asyncio.timeout(30), aiohttp.ClientSession(timeout=TIMEOUT) as http:
        while True:
            if proc is not None and proc.poll() is not None:
                output = log.read_text() if log is not None else ""
                raise AssertionError(f"{url} exited with {proc.returncode}:\n{output}")
            try:
                async with http.get(url + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


@dataclass
class Running:
    """convohook in this process on a real socket, with a Graph API stand-in and a subscriber."""

    base: str
    services: Any
    graph: Any  # the stand-in's ProfileRegistry
    receiver: Receiver


async def connect_channel(
    run: Running, account_id: str, handle: str, receiver_url: str | None = None
) -> tuple[Api, dict[str, Any], dict[str, Any]]:
    """An org, an Instagram channel for `account_id` and a webhook on it to `receiver_url`
    (the subscriber by default), made through the API: the API client, channel and webhook."""
    from convohook.usecases.orgs import create_org

    org = await run.services.db.run(create_org, handle, run.services.clock())
    api = Api(run.base, org.api_key)
    channel = await api.ok(
        "POST",
        "/api/v1/channels",
        {"type": "INSTAGRAM", "handle": handle, "account_id": account_id, "access_token": "t"},
    )
    webhook = await api.ok(
        "POST",
        "/api/v1/webhooks",
        {"name": "crm", "url": receiver_url or run.receiver.url, "channel_ids": [channel["id"]]},
    )
    return api, channel, webhook


@contextlib.asynccontextmanager
async def running_convohook(
    database_url: str, app_secret: str, *, clock: Any = None, **settings: Any
) -> AsyncIterator[Running]:
    """`clock`: convohook's time (milliseconds since the epoch) if not the system's, so that a
    test can move it by days."""
    from convohook.config import Settings
    from convohook.devtools.demo import create_demo_app
    from convohook.devtools.graph_standin import ProfileRegistry, create_graph_standin
    from convohook.devtools.send_standin import EchoTarget
    from convohook.web.app import create_app

    registry = ProfileRegistry()
    async with (
        serve_asgi(create_graph_standin(registry), free_socket()) as graph_url,
        run_receiver(Receiver()) as receiver,
    ):
        sock = free_socket()
        config = Settings(
            database_url=database_url,
            meta_app_secret=app_secret,  # type: ignore[arg-type]
            graph_api_url=f"{graph_url}/v24.0",
            public_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
            # the receiver and the Graph API stand-in are on 127.0.0.1; a test may say no
            **{"allow_private_targets": True, **settings},
        )
        # The stand-in posts the echo of every reply it takes, as Meta does.
        registry.send.echo_to = EchoTarget(f"{config.public_url}/webhooks/instagram", app_secret)
        # Under the demo's settings, the demo's app: it adds its own route (Send a test DM).
        factory = create_demo_app if config.demo else create_app
        app = factory(config) if clock is None else factory(config, clock=clock)
        async with serve_asgi(app, sock) as base:
            yield Running(base, app.state.services, registry, receiver)
