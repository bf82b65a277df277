"""`convohook demo`: from nothing to a captured Conversation Opened payload in one command, and
a "Welcome" journey that answers the customer's first message and assigns the conversation."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

import aiohttp
import orjson
import uvicorn
from fastapi import FastAPI
from rich.console import Console
from rich.syntax import Syntax

from convohook.config import Settings
from convohook.devtools.graph_standin import ProfileRegistry, create_graph_standin
from convohook.devtools.send_standin import EchoTarget
from convohook.devtools.simulate import SimulationError, send_dm
from convohook.devtools.test_dm import demo_routes
from convohook.runtime.services import Services
from convohook.usecases.clock import Clock, system_clock
from convohook.usecases.orgs import create_org
from convohook.usecases.users import create_user
from convohook.web.app import create_app

console = Console()
DEMO_ACCOUNT_ID = "17841400000000000"
DEMO_HANDLE = "convohook_demo"
DEMO_EMAIL = "demo@convohook.local"
TIMEOUT = aiohttp.ClientTimeout(total=10)
WELCOME_TEXT = "Hi {{name}}! Thanks for your message, we'll answer shortly."


async def _api(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body) as response:
        payload = await response.json()
        if response.status >= 400:
            raise RuntimeError(f"{method} {url} answered {response.status}: {payload}")
        return payload


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    for _ in range(200):
        if server.started:
            return
        if task.done():
            task.result()
            raise RuntimeError("the demo server stopped while starting")
        await asyncio.sleep(0.05)
    raise RuntimeError("the demo server did not start within 10 s")


def create_demo_app(settings: Settings, *, clock: Clock = system_clock) -> FastAPI:
    """The app with the demo's own routes (Send a test DM)."""
    return create_app(settings, clock=clock, extra_routes=demo_routes)


async def run_demo(settings: Settings, *, port: int, once: bool, first_dm: bool) -> int:
    app = create_demo_app(settings)
    graph = ProfileRegistry()
    # Replies sent in the demo come back as Meta's signed echoes, as they would from Instagram.
    secret = settings.meta_app_secret.get_secret_value() if settings.meta_app_secret else ""
    graph.send.echo_to = EchoTarget(f"{settings.public_url}/webhooks/instagram", secret)
    app.mount("/_demo/graph", create_graph_standin(graph))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,  # open Bot Studio streams must not hold Ctrl-C up
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        await _wait_started(server, task)
    except OSError as exc:
        console.print(f"[red]could not start on port {port}: {exc}; try --port[/red]")
        return 1
    services: Services = app.state.services
    base = settings.public_url
    created = await services.db.run(create_org, "Demo", services.clock())
    password = secrets.token_urlsafe(9)  # the demo listens on loopback, but still: not guessable
    await services.db.run(create_user, created.org.id, DEMO_EMAIL, password, services.clock())
    headers = {"Authorization": f"Bearer {created.api_key}"}
    async with aiohttp.ClientSession(base_url=base, headers=headers, timeout=TIMEOUT) as http:
        channel = await _api(
            http,
            "POST",
            "/api/v1/channels",
            {
                "type": "INSTAGRAM",
                "handle": DEMO_HANDLE,
                "account_id": DEMO_ACCOUNT_ID,
                "access_token": "demo-access-token",
            },
        )
        bot = await _api(http, "POST", "/api/v1/bots", {"name": "Demo bot", "trigger": "webhook"})
        welcome = await _welcome_bot(http)
        webhook = await _api(
            http,
            "POST",
            "/api/v1/webhooks",
            {
                "name": "Conversations → demo bot",
                "url": bot["webhook_url"],
                "channel_type": "INSTAGRAM",
                "channel_ids": [channel["id"]],
                "events": [
                    "conversation.opened",
                    "conversation.closed",
                    "conversation.assigned",
                ],
            },
        )
        # Plain lines, not a panel: a box would wrap the long URLs and secrets mid-token.
        console.rule("convohook demo")
        console.print(
            (
                f"convohook demo on [bold]{base}[/bold] ({settings.database_url})\n\n"
                f"Web UI          {base}/login\n"
                f"  email         {DEMO_EMAIL}\n"
                f"  password      {password}\n"
                f"  Bot Studio    /bots/{bot['id']}: Capture Response,\n"
                "                then Channels → Send a test DM\n"
                f"  Welcome bot   /bots/{welcome['id']}: answers a first message, assigns it\n"
                f"API key         {created.api_key}\n"
                f"channel         @{DEMO_HANDLE} (account {DEMO_ACCOUNT_ID})\n"
                f"capture URL     {bot['webhook_url']}\n"
                f"webhook         {webhook['id']}\n"
                f"  secret        {webhook['secret']}\n\n"
                "Send a DM from another terminal:\n"
                "  convohook simulate dm --from grace.hopper --name 'Grace Hopper'\n"
                "See what the bot captured:\n"
                f"  curl -H 'Authorization: Bearer {created.api_key}' \\\n"
                f"    {base}/api/v1/bots/{bot['id']}/captures"
            ),
            soft_wrap=True,
        )
        console.rule()
        if first_dm:
            try:
                await send_dm(
                    server=base,
                    username="ada.lovelace",
                    name="Ada Lovelace",
                    text="Hi! Is the blue one still available?",
                    account_id=DEMO_ACCOUNT_ID,
                    app_secret=settings.meta_app_secret.get_secret_value()
                    if settings.meta_app_secret
                    else "",
                    graph_url=settings.graph_api_url,
                    register=True,
                    mid=None,
                    timestamp_ms=None,
                )
            except SimulationError as exc:
                console.print(f"[red]{exc}[/red]")
        code = await _tail_captures(http, bot["id"], welcome["id"], task, once=once)
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return code


async def _welcome_bot(http: aiohttp.ClientSession) -> Any:
    """The journey the demo shows: a first message answered, and the conversation assigned in
    turn (to an agent made here if the org had none, so that round robin has someone)."""
    agents = await _api(http, "GET", "/api/v1/agents")
    if not agents["items"]:
        await _api(
            http, "POST", "/api/v1/agents", {"name": "Demo agent", "email": "agent@convohook.local"}
        )
    return await _api(
        http,
        "POST",
        "/api/v1/bots",
        {
            "name": "Welcome",
            "trigger": "conversation.opened",
            "conditions": {"reason": ["first_message"]},
            "actions": [
                {"type": "send_message", "text": WELCOME_TEXT},
                {"type": "assign", "strategy": "round_robin"},
            ],
        },
    )


async def _print_runs(http: aiohttp.ClientSession, bot_id: str, seen: set[str]) -> None:
    """Print the Welcome bot's runs that finished since last time."""
    page = await _api(http, "GET", f"/api/v1/bots/{bot_id}/runs?limit=20")
    for run in reversed(page["items"]):
        if run["status"] == "pending" or run["id"] in seen:
            continue
        seen.add(run["id"])
        did = ", ".join(
            f"{a['type']} {a['status']}" + (f" ({a['detail']})" if a.get("detail") else "")
            for a in run["actions"]
        )
        console.print(
            f"[green]Welcome bot ran[/green] {run['status']}"
            + (f": {run['detail']}" if run.get("detail") else "")
            + (f"  {did}" if did else "")
        )


async def _tail_captures(
    http: aiohttp.ClientSession,
    bot_id: str,
    welcome_id: str,
    server_task: asyncio.Task[None],
    *,
    once: bool,
) -> int:
    """Print what the capture bot receives, and what the Welcome bot did, as it happens, until
    Ctrl-C (or the first of each, with --once)."""
    seen: set[str] = set()
    runs_seen: set[str] = set()
    waited = 0.0
    while not server_task.done():
        await _print_runs(http, welcome_id, runs_seen)
        # --once: the opening and the assignment the Welcome bot made, each captured.
        if once and runs_seen and len(seen) >= 2:
            return 0
        page = await _api(http, "GET", f"/api/v1/bots/{bot_id}/captures?limit=20")
        for capture in reversed(page["items"]):
            if capture["id"] in seen:
                continue
            seen.add(capture["id"])
            hdrs = capture["headers"]
            console.print(
                f"[green]webhook received[/green] {capture['received_at']}  "
                f"webhook-id={hdrs.get('webhook-id')}  "
                f"webhook-signature={hdrs.get('webhook-signature', '')[:20]}…"
            )
            console.print(
                Syntax(orjson.dumps(capture["body"], option=orjson.OPT_INDENT_2).decode(), "json")
            )
        await asyncio.sleep(0.25)
        waited += 0.25
        if once and waited > 60:
            console.print("[red]no payload arrived within 60 s[/red]")
            return 1
    return 0
