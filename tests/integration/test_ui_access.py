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
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import pytest

from convohook.runtime.services import Services
from convohook.storage.base import Transaction

from harness import TIMEOUT, Running, running_convohook
from ui_site import (
    NOT_UI,
    SECRET,
    Answer,
    Browser,
    Call,
    Org,
    make_org,
    sign_in,
    ui_calls,
)

FORM_ACTION = re.compile(r'<form[^>]*\baction="([^"]+)"')
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


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
                "agents": tx.list_agents(org_id, None, 100),
            }

        return await self.services.db.read(load)


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


async def test_assigning_another_orgs_agent_is_not_found(site: Site) -> None:
    a, b = site.a, site.b
    before_a, before_b = await site.state(a), await site.state(b)
    intruder = b.signed_in
    path = f"/inbox/{b.ids['conversation']}/assign"
    form = [("csrf_token", intruder.csrf), ("agent_id", a.ids["agent"])]
    answer = await intruder.call("POST", path, form)
    assert answer.status == 404
    assert "No such agent" in answer.body
    assert not leaked(answer, path + a.ids["agent"], a)
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
