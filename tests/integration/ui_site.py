"""What the UI tests share: the UI's routes, read from the app's own routing table (so a page
or a form added later is covered without anyone remembering to add it), and an org with
everything a page can show (a user, a channel, a webhook with a delivery and its attempt, a
capture bot with a capture, a conversation), signed in through the sign-in form."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from starlette.routing import BaseRoute, Mount, Route

from convohook.config import Settings
from convohook.devtools.demo import create_demo_app
from convohook.domain.ids import new_id
from convohook.domain.model import Conversation, OutboundMessage
from convohook.meta import notifications as n
from convohook.runtime.services import Services
from convohook.storage.base import Transaction
from convohook.usecases.orgs import create_org
from convohook.usecases.users import create_user
from convohook.web.ui.auth import LOGIN_CSRF_COOKIE
from convohook.web.ui.common import SESSION_COOKIE

from harness import Api, Meta, Running, eventually

SECRET = "ui-access-app-secret"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# Not UI pages, each for a reason; every other route of the app is a UI route, checked.
NOT_UI = {
    "/webhooks/instagram": "Meta's receiver: signed by Meta (test_app.py)",
    "/login": "signing in",
    "/logout": "signing out",
    "/healthz": "health check",
    "/readyz": "readiness check (no data: database, migrations, workers)",
    "/metrics": "metrics",
    "/": "a fixed redirect to /settings/webhooks, which asks to sign in: it reads nothing",
    "/docs/oauth2-redirect": "FastAPI's Swagger UI helper: static, no data",
}
NOT_UI_PREFIXES = {
    "/api/": "the API and its documents (test_app.py)",
    "/hooks/bots/": "capture URLs: the unguessable token is the credential (test_app.py)",
    "/static": "static files",
}

# How to fill each path parameter: templates over an org's ids ({webhook}, {delivery}, ...).
# `action` is the webhook page's forms; a form the pages render that is not covered here fails
# test_another_orgs_ids_are_not_found_and_change_nothing (every rendered form is checked).
PARAMS: dict[str, list[str]] = {
    "webhook_id": ["{webhook}"],
    "bot_id": ["{bot}", "{journey}"],
    "conversation_id": ["{conversation}"],
    "channel_id": ["{channel}"],
    "delivery_id": ["{delivery}"],
    "agent_id": ["{agent}"],
    "message_id": ["{message}"],
    "action": ["secret", "rotate", "enable", "disable", "deliveries/{delivery}/retry", "delete"],
}
DESTRUCTIVE = re.compile(r"/delete$")  # done last, so that the others still find their object


@dataclass(frozen=True)
class Call:
    """One concrete request of one route: `template` over ids, e.g. /bots/{bot}/listen."""

    method: str
    route: str  # the route's path, as the app declares it
    template: str

    @property
    def kinds(self) -> list[str]:
        return sorted(set(re.findall(r"\{(\w+)\}", self.template)))

    def path(self, ids: dict[str, str]) -> str:
        return self.template.format(**ids)


def _flatten(routes: list[BaseRoute]) -> Iterator[Route | Mount]:
    for route in routes:
        if isinstance(route, Route | Mount):
            yield route
            continue
        inner = getattr(route, "original_router", None)  # FastAPI's included routers
        assert inner is not None, f"{route!r}: a kind of route this test does not know"
        yield from _flatten(inner.routes)


def ui_calls() -> list[Call]:
    """Every (method, path) of the UI, from the app's own routing table, GETs first."""
    app = create_demo_app(Settings(database_url="sqlite:///:memory:", demo=True))
    calls = []
    for route in _flatten(app.routes):
        if route.path in NOT_UI or route.path.startswith(tuple(NOT_UI_PREFIXES)):
            continue
        assert isinstance(route, Route), f"{route.path}: a mount the test does not know"
        unknown = [p for p in route.param_convertors if p not in PARAMS]
        assert not unknown, (
            f"{route.path}: the test does not know how to fill {unknown}; add them to PARAMS "
            "(an id of the org's, or the values the page offers)"
        )
        choices = [[(p, v) for v in PARAMS[p]] for p in route.param_convertors]
        for method in sorted((route.methods or set()) - {"HEAD"}):
            for chosen in itertools.product(*choices):
                template = route.path_format.format(**dict(chosen))
                calls.append(Call(method, route.path, template))
    return sorted(calls, key=lambda c: (c.method != "GET", bool(DESTRUCTIVE.search(c.template))))


# --- an org with everything a page can show ---------------------------------------------


@dataclass
class Answer:
    status: int
    location: str
    body: str


@dataclass
class Browser:
    """A UI client without a browser: its session cookie (if any) and its CSRF token."""

    http: aiohttp.ClientSession
    base: str
    token: str | None = None
    csrf: str = ""

    async def call(
        self, method: str, path: str, form: list[tuple[str, str]] | None = None
    ) -> Answer:
        headers = {"Cookie": f"{SESSION_COOKIE}={self.token}"} if self.token is not None else {}
        async with self.http.request(
            method, self.base + path, data=form, headers=headers, allow_redirects=False
        ) as response:
            if response.headers.get("Content-Type", "").startswith("text/event-stream"):
                body = ""  # the live capture stream never ends: its headers say enough
            else:
                body = await response.text()
            return Answer(response.status, response.headers.get("Location", ""), body)


@dataclass
class Org:
    org_id: str
    email: str
    ids: dict[str, str]  # webhook, delivery, conversation, bot, channel
    forms: dict[str, list[tuple[str, str]]]  # a valid form per route that needs fields
    markers: set[str] = field(default_factory=set)  # its data, which no one else may see
    api_key: str = ""
    browser: Browser | None = None

    @property
    def signed_in(self) -> Browser:
        assert self.browser is not None
        return self.browser

    def form(self, call: Call, csrf: str | None) -> list[tuple[str, str]]:
        token = [("csrf_token", csrf)] if csrf is not None else []
        return token + self.forms.get(call.route, [])


async def make_org(run: Running, label: str, account: str, igsid: str) -> Org:
    """An org with a user (an agent), a channel, a capture bot, a journey, a webhook to the
    capture bot, and one DM: so a conversation, a delivery with its attempt, the bot's capture
    of it and the journey's (skipped) run."""
    svc: Services = run.services
    made = await svc.db.run(create_org, f"Org {label}", svc.clock())
    org_id = made.org.id
    email = f"owner-{label}@ui-access.test"
    user = await svc.db.run(create_user, org_id, email, PASSWORD, svc.clock(), f"Agent {label}")
    api = Api(run.base, made.api_key)
    handle, token = f"shop_{label}_handle", f"IGAA-token-of-{label}"
    channel = await api.ok(
        "POST",
        "/api/v1/channels",
        {"type": "INSTAGRAM", "handle": handle, "account_id": account, "access_token": token},
    )
    bot = await api.ok(
        "POST", "/api/v1/bots", {"name": f"Studio bot {label}", "trigger": "webhook"}
    )
    journey = await api.ok(
        "POST",
        "/api/v1/bots",
        {
            "name": f"Journey of {label}",
            "trigger": "conversation.opened",
            # Never met (the customer has no million followers): its run is skipped, and the
            # conversation stays as the other tests expect it, unassigned, untagged.
            "conditions": {
                "reason": ["first_message"],
                "min_followers": 1_000_000,
                "channel_ids": [channel["id"]],
                "business_hours": {"tz": "UTC", "days": [1, 2, 3], "from": "22:00", "to": "06:00"},
            },
            "actions": [
                {"type": "send_message", "text": f"Welcome from {label}, {{{{name}}}}!"},
                {"type": "assign", "strategy": "agent", "agent_id": user.id},
                {"type": "add_tags", "tags": [f"lead-{label}"]},
            ],
        },
    )
    webhook = await api.ok(
        "POST",
        "/api/v1/webhooks",
        {
            "name": f"Hook of {label}",
            "url": bot["webhook_url"],
            "channel_type": "INSTAGRAM",
            "channel_ids": [channel["id"]],
            "events": ["conversation.opened"],
        },
    )
    run.graph.put(igsid, f"customer.{label}", f"Customer {label} Fullname")
    text = f"Private words of {label}"
    # Written just now: the reply window is open, so the page offers the composer.
    written = svc.clock()
    body = n.notification(
        [n.entry(account, [n.text_message(igsid, account, f"mid-{label}", written, text)])]
    )
    assert await Meta(run.base, SECRET).post(body) == 200

    def loaded(tx: Transaction) -> Any:
        conversations = tx.list_conversations(
            org_id, status=None, channel_id=None, contact_id=None, before=None, limit=10
        )
        deliveries = tx.list_deliveries(org_id, webhook["id"], None, 10)
        done = [d for d in deliveries if d.status == "succeeded" and d.attempts]
        captures = tx.list_captures(bot["id"], None, 10)
        runs = [r for r in tx.list_bot_runs(journey["id"], None, 10) if r.status != "pending"]
        return conversations and done and captures and runs and (conversations[0], done[0])

    async def ready() -> Any:
        return await svc.db.read(loaded)

    conversation, delivery = await eventually(ready)
    reply = await _unknown_reply(svc, conversation)
    ids = {
        "message": reply,
        "webhook": webhook["id"],
        "delivery": delivery.id,
        "conversation": conversation.id,
        "bot": bot["id"],
        "journey": journey["id"],
        "channel": channel["id"],
        "agent": user.id,
    }
    contact = conversation.contact
    bot_token = bot["webhook_url"].rsplit("/", 1)[1]
    forms = {
        "/settings/webhooks/{webhook_id}/edit": [
            ("name", f"Hook of {label}, renamed"),
            ("url", bot["webhook_url"]),
            ("channel_ids", channel["id"]),
            ("events", "conversation.opened"),
        ],
        "/settings/webhooks/new": [
            ("step", "2"),
            ("name", f"Second hook of {label}"),
            ("url", bot["webhook_url"]),
            ("channel_type", "INSTAGRAM"),
            ("channel_id", channel["id"]),
            ("events", "conversation.opened"),
        ],
        "/bots": [("name", f"Second bot of {label}"), ("trigger", "webhook")],
        # A journey's whole form; a capture bot's edit takes its name from it, nothing else.
        "/bots/{bot_id}/edit": [
            ("name", f"Journey of {label}, renamed"),
            ("reason", "first_message"),
            ("action0_type", "send_message"),
            ("action0_text", f"Hello from {label}"),
            ("action1_type", "add_tags"),
            ("action1_tags", "lead, vip"),
        ],
        "/bots/{bot_id}/enabled": [("enabled", "false")],
        "/settings/agents": [
            ("name", f"Second agent of {label}"),
            ("email", f"second-{label}@ui-access.test"),
            ("available", "on"),
        ],
        "/settings/agents/{agent_id}/available": [("available", "false")],
        "/inbox/{conversation_id}/assign": [("agent_id", user.id)],
        "/inbox/{conversation_id}/tags": [("add", f"tag-of-{label}")],
        "/settings/channels": [
            ("handle", f"second_{label}"),
            ("account_id", account + "9"),
            ("access_token", "IGAA-second"),
        ],
        "/inbox/{conversation_id}/messages": [("text", f"Reply of {label}")],
        "/settings/channels/test-dm": [
            ("channel_id", channel["id"]),
            ("username", f"tester.{label}"),
            ("name", "Tester"),
            ("text", "Hello from the test"),
        ],
    }
    markers = {
        email,
        handle,
        account,
        token,
        webhook["name"],
        webhook["secret"],
        f"Agent {label}",
        bot["name"],
        journey["name"],
        bot_token,
        text,
        contact.customer_id,
        contact.username or "",
        contact.name or "",
        contact.id,
        *ids.values(),
    }
    return Org(org_id, email, ids, forms, markers - {""}, api_key=made.api_key)


async def _unknown_reply(svc: Services, conversation: Conversation) -> str:
    """A reply left `unknown` (its sender stopped mid-call), so its page offers a retry."""
    now = svc.clock()
    reply = OutboundMessage(
        id=new_id("out", now),
        org_id=conversation.org_id,
        channel_id=conversation.channel_id,
        contact_id=conversation.contact.id,
        conversation_id=conversation.id,
        recipient_igsid=conversation.contact.igsid,
        text="A reply that may have arrived",
        human_agent=False,
        status="unknown",
        attempts=1,
        next_attempt_at_ms=None,
        error="the sender stopped while sending",
        mid=None,
        sent_by="api",
        created_at_ms=now,
        sent_at_ms=None,
        updated_at_ms=now,
    )
    await svc.db.run(lambda tx: tx.insert_outbound(reply))
    return reply.id


async def sign_in(http: aiohttp.ClientSession, base: str, email: str) -> Browser:
    """Through the sign-in form, as a browser does: its own CSRF cookie, then the session's."""
    async with http.get(base + "/login") as response:
        login_csrf = response.cookies[LOGIN_CSRF_COOKIE].value
        match = CSRF.search(await response.text())
        assert match is not None
        assert match[1] == login_csrf
    async with http.post(
        base + "/login",
        data={"csrf_token": login_csrf, "email": email, "password": PASSWORD},
        headers={"Cookie": f"{LOGIN_CSRF_COOKIE}={login_csrf}"},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, await response.text()
        browser = Browser(http, base, response.cookies[SESSION_COOKIE].value)
    page = await browser.call("GET", "/settings/webhooks")
    match = CSRF.search(page.body)
    assert page.status == 200
    assert match is not None
    browser.csrf = match[1]
    return browser
