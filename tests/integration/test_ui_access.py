"""The web UI's access rules, route by route, on both backends: the UI's counterpart of the API's
checks in test_app.py.

The routes come from the app itself, so a page or a form added later is checked without anyone
remembering to add it here. Two orgs, each with a user, a channel, a webhook with a delivery and
its attempt, a capture bot with a capture, and a conversation (one DM through Meta's receiver,
delivered to the bot's capture URL). Then:

- signed out (no cookie, a forged one, a signed-out session's): every page asks to sign in and
  shows nothing; every form is refused and changes nothing;
- signed in to org B: every page and form whose path holds one of org A's ids answers 404 and
  changes nothing, while the same path with B's own ids works; B's pages never show A's data;
  form fields holding A's ids are refused too;
- signed in, with a missing, forged or another session's CSRF token: every form answers 403
  and changes nothing; with the right token the same request works.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import pytest
from starlette.routing import BaseRoute, Mount, Route

from convohook.config import Settings
from convohook.devtools.demo import create_demo_app
from convohook.meta import notifications as n
from convohook.runtime.services import Services
from convohook.storage.base import Transaction
from convohook.usecases.orgs import create_org
from convohook.usecases.users import create_user
from convohook.web.ui.auth import LOGIN_CSRF_COOKIE
from convohook.web.ui.common import SESSION_COOKIE

from harness import TIMEOUT, Api, Meta, Running, eventually, running_convohook

SECRET = "ui-access-app-secret"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM_ACTION = re.compile(r'<form[^>]*\baction="([^"]+)"')
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")

# Not UI pages, each for a reason; every other route of the app is checked here.
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
    "bot_id": ["{bot}"],
    "conversation_id": ["{conversation}"],
    "channel_id": ["{channel}"],
    "delivery_id": ["{delivery}"],
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


def test_the_ui_routes_are_found_and_filled() -> None:
    calls = ui_calls()
    routes = {(c.method, c.route) for c in calls}
    assert len(routes) >= 17, routes
    for expected in [
        ("GET", "/inbox/{conversation_id}"),
        ("POST", "/inbox/{conversation_id}/done"),
        ("GET", "/bots/{bot_id}/captures/stream"),
        ("POST", "/settings/webhooks/{webhook_id}/{action:path}"),
        ("POST", "/settings/channels/test-dm"),
    ]:
        assert expected in routes
    assert not any(c.route.startswith(("/api/", "/static")) for c in calls)


# --- two orgs, each with everything a page can show ----------------------------------------


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
    browser: Browser | None = None

    @property
    def signed_in(self) -> Browser:
        assert self.browser is not None
        return self.browser

    def form(self, call: Call, csrf: str | None) -> list[tuple[str, str]]:
        token = [("csrf_token", csrf)] if csrf is not None else []
        return token + self.forms.get(call.route, [])


@dataclass
class Site:
    run: Running
    http: aiohttp.ClientSession
    a: Org
    b: Org

    @property
    def services(self) -> Services:
        svc: Services = self.run.services
        return svc

    def anonymous(self, token: str | None = None) -> Browser:
        return Browser(self.http, self.run.base, token)

    async def state(self, org: Org) -> Any:
        """Everything of the org's that a request could change."""
        org_id = org.org_id

        def load(tx: Transaction) -> Any:
            webhooks = tx.list_webhooks(org_id, None, 100)
            bots = tx.list_bots(org_id, None, 100)
            return {
                "webhooks": webhooks,
                "deliveries": [tx.list_deliveries(org_id, w.id, None, 100) for w in webhooks],
                "channels": tx.list_channels(org_id, None, 100),
                "bots": bots,
                "captures": [tx.list_captures(b.id, None, 100) for b in bots],
                "conversations": tx.list_conversations(
                    org_id, status=None, channel_id=None, contact_id=None, before=None, limit=100
                ),
            }

        return await self.services.db.read(load)


async def make_org(run: Running, label: str, account: str, igsid: str) -> Org:
    """An org with a user, a channel, a capture bot, a webhook to the bot, and one DM: so a
    conversation, a delivery with its attempt, and the bot's capture of it."""
    svc: Services = run.services
    made = await svc.db.run(create_org, f"Org {label}", svc.clock())
    org_id = made.org.id
    email = f"owner-{label}@ui-access.test"
    await svc.db.run(create_user, org_id, email, PASSWORD, svc.clock())
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
    body = n.notification(
        [n.entry(account, [n.text_message(igsid, account, f"mid-{label}", 1_000, text)])]
    )
    assert await Meta(run.base, SECRET).post(body) == 200

    def loaded(tx: Transaction) -> Any:
        conversations = tx.list_conversations(
            org_id, status=None, channel_id=None, contact_id=None, before=None, limit=10
        )
        deliveries = tx.list_deliveries(org_id, webhook["id"], None, 10)
        done = [d for d in deliveries if d.status == "succeeded" and d.attempts]
        captures = tx.list_captures(bot["id"], None, 10)
        return conversations and done and captures and (conversations[0], done[0])

    async def ready() -> Any:
        return await svc.db.read(loaded)

    conversation, delivery = await eventually(ready)
    ids = {
        "webhook": webhook["id"],
        "delivery": delivery.id,
        "conversation": conversation.id,
        "bot": bot["id"],
        "channel": channel["id"],
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
        "/settings/channels": [
            ("handle", f"second_{label}"),
            ("account_id", account + "9"),
            ("access_token", "IGAA-second"),
        ],
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
        bot["name"],
        bot_token,
        text,
        contact.customer_id,
        contact.username or "",
        contact.name or "",
        contact.id,
        *ids.values(),
    }
    return Org(org_id, email, ids, forms, markers - {""})


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


@pytest.fixture
async def site(database_url_for: str) -> AsyncIterator[Site]:
    async with (
        running_convohook(
            database_url_for, SECRET, demo=True, retry_schedule=(0.2,), profile_deadline=2.0
        ) as run,
        aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        a, b = await asyncio.gather(
            make_org(run, "alpha", "17841400000000501", "5010000000000001"),
            make_org(run, "bravo", "17841400000000502", "5020000000000002"),
        )
        a.browser, b.browser = await asyncio.gather(
            sign_in(http, run.base, a.email), sign_in(http, run.base, b.email)
        )
        yield Site(run, http, a, b)


def leaked(answer: Answer, named: str, *orgs: Org) -> list[str]:
    """The orgs' data in a response (what the request itself named does not count)."""
    return sorted(m for org in orgs for m in org.markers if m not in named and m in answer.body)


def works(answer: Answer) -> bool:
    return answer.status == 200 or (
        answer.status == 303 and not answer.location.startswith("/login")
    )


# --- signed out ------------------------------------------------------------------------------


async def test_signed_out_every_page_asks_to_sign_in_and_every_form_is_refused(
    site: Site,
) -> None:
    before = [await site.state(site.a), await site.state(site.b)]
    gone = await sign_in(site.http, site.run.base, site.a.email)
    signed_out = await gone.call("POST", "/logout", [("csrf_token", gone.csrf)])
    assert (signed_out.status, signed_out.location) == (303, "/login")
    callers = {
        "no cookie": site.anonymous(),
        "an empty cookie": site.anonymous(""),
        "a forged cookie": site.anonymous("forged-" + "x" * 40),
        "a signed-out session": site.anonymous(gone.token),
    }
    calls = ui_calls()
    for call in calls:
        path = call.path(site.a.ids)
        # A form as the owner would send it, even with the owner's CSRF token: no session, no.
        form = site.a.form(call, site.a.signed_in.csrf) if call.method != "GET" else None
        for who, caller in callers.items():
            answer = await caller.call(call.method, path, form)
            where = (who, call.method, path, answer.status, answer.location)
            if answer.status == 303:
                assert answer.location == f"/login?next={quote(path)}", where
            else:  # what a partial that a script fetches (the live stream) answers instead
                assert answer.status == 401, where
            found = leaked(answer, path, site.a, site.b)
            assert not found, (where, found)
    assert [await site.state(site.a), await site.state(site.b)] == before
    # ... and the owner's session still works: the refusals were about the callers.
    assert works(await site.a.signed_in.call("GET", f"/settings/webhooks/{site.a.ids['webhook']}"))


# --- another org's ids -----------------------------------------------------------------------


def other_orgs_paths(call: Call, a: Org, b: Org) -> Iterator[str]:
    """The call's path with each mix of A's and B's ids that holds at least one of A's."""
    kinds = call.kinds
    for owners in itertools.product((a, b), repeat=len(kinds)):
        if a in owners:
            yield call.path({k: o.ids[k] for k, o in zip(kinds, owners, strict=True)})


async def test_another_orgs_ids_are_not_found_and_change_nothing(site: Site) -> None:
    a, b = site.a, site.b
    before_a, before_b = await site.state(a), await site.state(b)
    intruder = b.signed_in
    calls = ui_calls()
    checked = 0
    for call in calls:
        if not call.kinds:
            continue
        for path in other_orgs_paths(call, a, b):
            form = b.form(call, intruder.csrf) if call.method != "GET" else None
            answer = await intruder.call(call.method, path, form)
            assert answer.status == 404, (call.method, path, answer.status, answer.location)
            found = leaked(answer, path, a)
            assert not found, (call.method, path, found)
            checked += 1
    assert checked >= 12
    assert await site.state(a) == before_a
    assert await site.state(b) == before_b

    # B's pages without ids (lists, forms) show nothing of A's either.
    for call in calls:
        if call.method == "GET" and not call.kinds:
            for query in ("", "?status=all", "?status=done"):
                answer = await intruder.call("GET", call.template + query)
                assert answer.status == 200, (call.template, answer.status)
                found = leaked(answer, call.template, a)
                assert not found, (call.template + query, found)

    # The same paths with B's own ids work, so the 404s above were about ownership; and every
    # form B's pages render posts to a path checked above.
    shown_forms: set[str] = set()
    pages = ""
    covered = set()
    for call in calls:
        if not call.kinds:
            continue
        path = call.path(b.ids)
        covered.add((call.method, path))
        form = b.form(call, intruder.csrf) if call.method != "GET" else None
        answer = await intruder.call(call.method, path, form)
        assert works(answer), (call.method, path, answer.status, answer.location)
        found = leaked(answer, path, a)
        assert not found, (call.method, path, found)
        if call.method == "GET":
            shown_forms.update(FORM_ACTION.findall(answer.body))
            pages += answer.body
    for action in sorted(shown_forms):
        route = urlsplit(action).path
        if route in NOT_UI or not any(p in route for p in b.ids.values()):
            continue  # sign-out, and forms without ids (test_every_form_needs_the_csrf_token)
        assert ("POST", route) in covered, f"{route}: a form not covered by PARAMS"
    for marker in ("Hook of bravo", "Studio bot bravo", "Customer bravo Fullname", "shop_bravo"):
        assert marker in pages  # B's own data does show: the leak checks can see it
    after_b = await site.state(b)
    assert after_b != before_b  # B's actions really acted
    assert after_b["webhooks"] == []  # ... down to the delete, done last
    assert await site.state(a) == before_a


async def test_form_fields_holding_another_orgs_ids_are_refused(site: Site) -> None:
    a, b = site.a, site.b
    before_a, before_b = await site.state(a), await site.state(b)
    intruder = b.signed_in
    theirs = a.ids["channel"]
    cases = [  # (route, path, the fields that name A's channel in B's otherwise valid form)
        ("/settings/webhooks/new", "/settings/webhooks/new", {"channel_id": theirs}),
        (
            "/settings/webhooks/{webhook_id}/edit",
            f"/settings/webhooks/{b.ids['webhook']}/edit",
            {"channel_ids": theirs},
        ),
        ("/settings/channels/test-dm", "/settings/channels/test-dm", {"channel_id": theirs}),
    ]
    for route, path, fields in cases:
        form = dict(b.forms[route]) | {"csrf_token": intruder.csrf} | fields
        answer = await intruder.call("POST", path, list(form.items()))
        assert answer.status == 422, (path, answer.status, answer.location)
        found = leaked(answer, path + " ".join(form.values()), a)
        assert not found, (path, found)
    assert await site.state(a) == before_a
    assert await site.state(b) == before_b


# --- CSRF ------------------------------------------------------------------------------------


async def test_every_form_needs_the_sessions_csrf_token(site: Site) -> None:
    a, b = site.a, site.b
    before_a, before_b = await site.state(a), await site.state(b)
    user = b.signed_in
    forms = [c for c in ui_calls() if c.method in STATE_CHANGING]
    assert len(forms) >= 8
    tokens: dict[str, str | None] = {
        "no token": None,
        "an empty token": "",
        "a forged token": "forged-" + user.csrf[7:],
        "another session's token": a.signed_in.csrf,
    }
    for call in forms:
        path = call.path(b.ids)
        for which, token in tokens.items():
            answer = await user.call(call.method, path, b.form(call, token))
            assert answer.status == 403, (which, call.method, path, answer.status)
            assert "expired or came from elsewhere" in answer.body
    assert await site.state(a) == before_a
    assert await site.state(b) == before_b
    # The same requests with the session's own token work (destructive ones last).
    for call in forms:
        path = call.path(b.ids)
        answer = await user.call(call.method, path, b.form(call, user.csrf))
        assert works(answer), (call.method, path, answer.status, answer.body[:300])
    assert await site.state(b) != before_b
    assert await site.state(a) == before_a
