"""Every page of the UI, as a person gets it, on both backends, under `convohook serve` and
under `convohook demo` (whose Channels page has the Send a test DM form).

The pages come from the app's own routes (ui_site.ui_calls), so a page added later is checked
too, over an org with everything a page can show: a channel, a webhook with a delivery and its
attempt, a capture bot with a capture, a conversation. Each page must have a short one-line
title, no id twice, no template syntax or `None` where a person reads, every table cell labelled
with its column's name (shown in place of the header row on a phone), a favicon, static files
that exist, the current section marked in the nav, and a way back up from a page below it.
"""

from __future__ import annotations

import collections
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from convohook.delivery.ssrf import ALLOW_HINT
from convohook.storage.base import Transaction
from convohook.usecases.conversations import agents_by_id

from harness import TIMEOUT, Api, Running, running_convohook
from html_page import Element, parse, titles
from ui_site import SECRET, Answer, Browser, Org, make_org, sign_in, ui_calls

TITLE_MAX = 80
# never end: their headers are all there is to get
STREAMS = {"/bots/{bot_id}/captures/stream", "/bots/{bot_id}/runs/stream"}
# Each page as it also appears, with what its query string adds (a notice, a tab, a URL).
QUERIES = {
    "/inbox": [
        "",
        "?status=done",
        "?status=all",
        "?whose=mine",
        "?whose=unassigned",
        "?tag=vip",
        "?tag=%00v%00",  # PostgreSQL cannot compare a NUL: never sent to it
    ],
    "/settings/webhooks/{webhook_id}": ["", "?notice=saved"],
    "/settings/channels": ["", "?sent=tester.alpha"],
    "/settings/webhooks/new": ["", "?url=https%3A%2F%2Fcrm.example.com%2Fhook"],
    "/bots": ["", "?notice=deleted"],
    "/bots/{bot_id}": ["", "?notice=created", "?notice=disabled"],
}
# A bot's message may hold its placeholders ({{name}}...), and the builder names them: those
# are the customer's words to come, not template text left over.
TEMPLATE_TEXT = re.compile(r"\{\{(?!(name|username|customer_id)\}\})|\{%|%\}|\bNone\b")


@dataclass
class Site:
    run: Running
    org: Org
    http: aiohttp.ClientSession

    @property
    def browser(self) -> Browser:
        return self.org.signed_in


@pytest.fixture(params=[False, True], ids=["serve", "demo"])
async def site(database_url_for: str, request: pytest.FixtureRequest) -> AsyncIterator[Site]:
    async with (
        running_convohook(
            database_url_for,
            SECRET,
            demo=request.param,
            retry_schedule=(0.2,),
            profile_deadline=2.0,
            meta_verify_token="pages-verify-token",
        ) as run,
        aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        org = await make_org(run, "alpha", "17841400000000601", "6010000000000001")
        org.browser = await sign_in(http, run.base, org.email)
        yield Site(run, org, http)


def table_problems(table: Element) -> list[str]:
    """A table with a header row: each cell's data-label is its column's name. A table without
    one (key/value, like request headers): each row is named by its own <th scope="row">."""
    problems = []
    heads = [tr for thead in table.own("thead") for tr in thead.own("tr")]
    names = [th.text.strip() for th in heads[0].own("th")] if heads else []
    for body in table.own("tbody"):
        for row in body.own("tr"):
            cells = list(row.own("td"))
            if not names:
                if not any(th.attrs.get("scope") == "row" for th in row.own("th")):
                    problems.append(f"a row without a header cell: {row.text.strip()[:60]!r}")
                continue
            labels = [td.attrs.get("data-label") for td in cells]
            if labels != names[: len(cells)] or len(cells) != len(names):
                problems.append(f"cells labelled {labels}, columns {names}")
    return problems


def page_problems(path: str, answer: Answer) -> list[str]:
    html = answer.body
    root = parse(html)
    problems: list[str] = []
    full_page = html.lstrip().lower().startswith("<!doctype html>")
    if full_page:
        found = titles(html)
        if len(found) != 1:
            problems.append(f"{len(found)} <title> elements")
        for title in found:
            if not title.strip() or "\n" in title or "<" in title or len(title) >= TITLE_MAX:
                problems.append(f"title of {len(title)} characters: {title[:120]!r}")
        icons = [e for e in root.iter("link") if e.attrs.get("rel") == "icon"]
        if len(icons) != 1 or not icons[0].attrs.get("href"):
            problems.append(f"{len(icons)} <link rel=icon>")
    ids = collections.Counter(e.attrs["id"] for e in root.iter() if "id" in e.attrs)
    problems += [f"id={i!r} {n} times" for i, n in ids.items() if n > 1]
    for match in TEMPLATE_TEXT.finditer(root.visible_text):
        around = root.visible_text[max(0, match.start() - 40) : match.end() + 40]
        problems.append(f"template text {match[0]!r} on the page: {around.strip()!r}")
    for element in root.iter():
        for name, value in element.attrs.items():
            if TEMPLATE_TEXT.search(value) or "/None" in value:
                problems.append(f"<{element.tag} {name}={value!r}>")
    for table in root.iter("table"):
        problems += table_problems(table)
    return problems


def nav_problems(path: str, root: Element) -> list[str]:
    """The section the page is in is marked (aria-current: "page" on the section's own page),
    and a page below its section's has a ← link back up."""
    [nav] = [e for e in root.iter("nav") if e.attrs.get("aria-label") == "Main"]
    marked = [a for a in nav.iter("a") if "aria-current" in a.attrs]
    if len(marked) != 1 or not path.startswith(marked[0].attrs["href"]):
        return [f"nav marks {[a.attrs.get('href') for a in marked]}"]
    section = marked[0].attrs["href"]
    expected = "page" if path == section else "true"
    if marked[0].attrs["aria-current"] != expected:
        return [f"nav marks {section} as {marked[0].attrs['aria-current']!r}, not {expected!r}"]
    back = [
        a
        for a in root.iter("a")
        if a.text.strip().startswith("←") and path.startswith(a.attrs.get("href", "") + "/")
    ]
    if path != section and not back:
        return ["no ← link back up"]
    return []


async def every_page(site: Site) -> dict[str, Answer]:
    org, browser = site.org, site.browser
    pages: dict[str, Answer] = {}
    # The conversation assigned and tagged, and an agent away: what those pages show when full.
    conversation = f"/inbox/{org.ids['conversation']}"
    csrf = [("csrf_token", browser.csrf)]
    for path, fields in [
        (conversation + "/assign", [("agent_id", org.ids["agent"])]),
        (conversation + "/tags", [("add", "vip, pricing")]),
        ("/settings/agents", [("name", "Away Agent"), ("email", "away@ui-pages.test")]),
    ]:
        done = await browser.call("POST", path, csrf + fields)
        assert done.status == 303, (path, done.status, done.body[:300])
    for call in ui_calls():
        if call.method != "GET":
            continue
        for query in QUERIES.get(call.route, [""]):
            path = call.path(org.ids) + query
            answer = await browser.call("GET", path)
            assert answer.status == 200, (path, answer.status, answer.location)
            if call.route in STREAMS:
                assert answer.body == ""
                continue
            pages[path] = answer
    # What forms and mistakes render: the secret revealed, New Webhook's step 2, a refusal, 404.
    webhook = f"/settings/webhooks/{org.ids['webhook']}"
    form = [("csrf_token", browser.csrf)]
    pages[webhook + " (secret revealed)"] = await browser.call("POST", webhook + "/secret", form)
    step_1 = form + [(k, v) for k, v in org.forms["/settings/webhooks/new"] if k != "step"]
    pages["New Webhook step 2"] = await browser.call("POST", "/settings/webhooks/new", step_1)
    refused = [(k, "" if k == "name" else v) for k, v in step_1]
    pages["New Webhook refused"] = await browser.call("POST", "/settings/webhooks/new", refused)
    pages["Tag refused"] = await browser.call(
        "POST", conversation + "/tags", [*csrf, ("add", "x" * 51)]
    )
    pages["Agent refused"] = await browser.call(
        "POST", "/settings/agents", [*csrf, ("name", "No email"), ("email", "nope")]
    )
    journey = [*csrf, ("name", "Welcome"), ("trigger", "conversation.opened")]
    pages["Bot builder"] = await browser.call("POST", "/bots", journey)
    built = [*journey, ("step", "build"), ("hours", "inside"), ("hours_tz", "Mars/Olympus")]
    built += [("action0_type", "send_message"), ("action0_text", "Hi there")]
    pages["Bot builder refused"] = await browser.call("POST", "/bots", built)
    assert pages["Bot builder refused"].status == 422
    pages["Bot edit refused"] = await browser.call(
        "POST", f"/bots/{org.ids['journey']}/edit", [*csrf, ("name", "No actions")]
    )
    assert pages["Bot edit refused"].status == 422
    pages["404"] = await browser.call("GET", "/inbox/conv_not_there")
    pages["/login"] = await Browser(site.http, site.run.base).call("GET", "/login")
    return pages


async def test_every_page_is_well_formed_and_readable(site: Site) -> None:
    pages = await every_page(site)
    assert len(pages) >= 15
    found = {path: page_problems(path, answer) for path, answer in pages.items()}
    assert not {path: p for path, p in found.items() if p}

    for name, answer in pages.items():
        path = name.split(" ")[0].split("?")[0]
        if path.startswith("/") and path != "/login" and not path.endswith("/listen"):
            wrong = nav_problems(path, parse(answer.body))
            assert not wrong, (name, wrong)

    # The checks saw the data: tables with rows, the capture, the demo's form when a demo.
    everything = "".join(a.body for a in pages.values())
    assert everything.count("data-label=") >= 15
    assert "customer.alpha" in pages[f"/bots/{site.org.ids['bot']}"].body
    demo = site.run.services.settings.demo
    assert ('id="test-dm"' in pages["/settings/channels"].body) == demo

    # Every static file a page refers to (styles, scripts, the favicon) is there.
    static = {
        ref
        for answer in pages.values()
        for element in parse(answer.body).iter()
        for ref in (element.attrs.get("href", ""), element.attrs.get("src", ""))
        if ref.startswith("/static/")
    }
    assert "/static/favicon.svg" in static
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        for ref in sorted(static):
            async with http.get(site.run.base + ref) as response:
                assert response.status == 200, ref


async def test_a_capture_is_headed_by_its_event_and_customer(site: Site) -> None:
    page = await site.browser.call("GET", f"/bots/{site.org.ids['bot']}")
    [heading] = [h.text for h in parse(page.body).iter("h3")]
    assert re.fullmatch(
        r"Conversation Opened · @customer\.alpha · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", heading
    ), heading


# --- a URL on a private address --------------------------------------------------------------


@pytest.fixture
async def guarded(database_url_for: str) -> AsyncIterator[Site]:
    """A server that refuses private webhook targets (the default outside tests)."""
    async with (
        running_convohook(database_url_for, SECRET, allow_private_targets=False) as run,
        aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        org = await make_org(run, "alpha", "17841400000000602", "6020000000000001")
        org.browser = await sign_in(http, run.base, org.email)
        yield Site(run, org, http)


def alert(answer: Answer) -> str:
    [shown] = [e.text for e in parse(answer.body).iter("p") if e.attrs.get("role") == "alert"]
    return shown


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("http://127.0.0.1:9/hook", "127.0.0.1"),
        ("http://localhost:9/hook", "localhost"),
        ("https://10.20.30.40/hook", "10.20.30.40"),
    ],
)
async def test_a_private_url_is_refused_in_words_a_browser_user_can_act_on(
    guarded: Site, url: str, where: str
) -> None:
    org, browser = guarded.org, guarded.browser
    new = [("csrf_token", browser.csrf)] + [
        (k, url if k == "url" else v) for k, v in org.forms["/settings/webhooks/new"]
    ]
    edit_path = f"/settings/webhooks/{org.ids['webhook']}/edit"
    edit = [("csrf_token", browser.csrf)] + [
        (k, url if k == "url" else v) for k, v in org.forms["/settings/webhooks/{webhook_id}/edit"]
    ]
    for path, form in [("/settings/webhooks/new", new), (edit_path, edit)]:
        answer = await browser.call("POST", path, form)
        assert answer.status == 422, (path, answer.status)
        said = alert(answer)
        assert where in said, said
        assert "private or local address" in said, said
        assert "Use a public URL" in said, said
        assert "ask whoever runs convohook to allow private" in said, said
        for admin_words in ("CONVOHOOK_", "=1", "environment"):
            assert admin_words not in said, said
        assert f'value="{url}"' in answer.body  # the form keeps what was typed, to correct it

    # The API's answer is unchanged: an operator's words for an operator's client.
    status, body = await Api(guarded.run.base, org.api_key).call(
        "POST",
        "/api/v1/webhooks",
        {"name": "private", "url": url, "channel_ids": [org.ids["channel"]]},
    )
    assert status == 422
    assert body["message"].startswith(f"url: refusing to send to {where}")
    assert body["message"].endswith(f": {ALLOW_HINT}")


async def test_assigning_and_tagging_by_hand(site: Site) -> None:
    org, browser = site.org, site.browser
    csrf = [("csrf_token", browser.csrf)]
    conversation = f"/inbox/{org.ids['conversation']}"

    async def post(path: str, *fields: tuple[str, str]) -> Answer:
        return await browser.call("POST", path, [*csrf, *fields])

    async def inbox(query: str) -> str:
        page = await browser.call("GET", "/inbox" + query)
        assert page.status == 200
        return page.body

    shown = f'href="{conversation}"'
    assert shown in await inbox("?whose=unassigned")
    assert shown not in await inbox("?whose=mine")

    # Another agent, added and marked away: listed, offered in the select, not round robin's.
    added = await post(
        "/settings/agents", ("name", "Grace"), ("email", "grace@ui.test"), ("available", "on")
    )
    assert (added.status, added.location) == (303, "/settings/agents")
    agents = (await browser.call("GET", "/settings/agents")).body
    assert "Grace" in agents
    listed = await site.run.services.db.read(agents_by_id, org.org_id)
    grace = next(a for a in listed.values() if a.name == "Grace")
    assert grace.available
    away = await post(f"/settings/agents/{grace.id}/available", ("available", "false"))
    assert away.status == 303
    assert "Mark Grace available" in (await browser.call("GET", "/settings/agents")).body

    # Assigned to the signed-in agent: in "Mine", out of "Unassigned", named in the list.
    done = await post(conversation + "/assign", ("agent_id", org.ids["agent"]))
    assert done.location == conversation + "?notice=assigned"
    page = (await browser.call("GET", done.location)).body
    assert "Assigned." in page
    assert f'<option value="{org.ids["agent"]}" selected>' in page
    assert "Grace · away" in page
    assert shown in await inbox("?whose=mine")
    assert shown not in await inbox("?whose=unassigned")
    assert "Agent alpha" in await inbox("")

    # Tags: added (several at once), shown and filtered on in the Inbox, removed one by one.
    tagged = await post(conversation + "/tags", ("add", " vip , pricing,"))
    assert tagged.location == conversation + "?notice=tagged"
    assert shown in await inbox("?tag=vip")
    assert shown not in await inbox("?tag=other")
    assert 'class="tag" href="/inbox?status=open&amp;whose=all&amp;tag=pricing"' in await inbox("")
    await post(conversation + "/tags", ("remove", "pricing"))
    page = (await browser.call("GET", conversation)).body
    assert 'value="vip"' in page
    assert 'value="pricing"' not in page
    refused = await post(conversation + "/tags", ("add", "x" * 51))
    assert refused.status == 422
    assert "at most 50 characters" in refused.body

    # The contact's profile fields: "Not shared" until Instagram shares them.
    assert page.count("Not shared") == 3
    contact = await site.run.services.db.read(
        lambda tx: tx.get_conversation(org.org_id, org.ids["conversation"])
    )

    def shared(tx: Transaction) -> None:
        tx.set_contact_profile(
            contact.contact.id,
            "customer.alpha",
            "Customer alpha Fullname",
            "ok",
            1,
            follower_count=12345,
            is_user_follow_business=True,
            is_verified_user=False,
        )

    await site.run.services.db.run(shared)
    page = (await browser.call("GET", conversation)).body
    for label, value in [("Followers", "12,345"), ("Follows you", "Yes"), ("Verified", "No")]:
        assert re.search(rf"<dt>{label}[^<]*</dt><dd>{value}</dd>", page), label

    unassigned = await post(conversation + "/assign", ("agent_id", ""))
    assert unassigned.location == conversation + "?notice=unassigned"
    assert shown in await inbox("?whose=unassigned")


async def test_a_journey_is_built_with_the_form_shown_in_words_and_edited(site: Site) -> None:
    org, browser = site.org, site.browser
    csrf = [("csrf_token", browser.csrf)]
    svc = site.run.services

    async def post(path: str, fields: list[tuple[str, str]]) -> Answer:
        return await browser.call("POST", path, [*csrf, *fields])

    # Create New Bot with a journey's trigger: the builder, nothing made yet.
    start = [("name", "Welcome"), ("trigger", "conversation.opened")]
    builder = await post("/bots", start)
    assert builder.status == 200
    assert 'name="action0_type"' in builder.body
    assert 'value="Welcome"' in builder.body
    assert "Europe/Berlin" in builder.body  # the time zones offered

    fields = [
        *start,
        ("step", "build"),
        ("reason", "first_message"),
        ("channel_ids", org.ids["channel"]),
        ("text_contains", " price , cost,"),
        ("min_followers", "10"),
        ("verified", "yes"),
        ("follows_business", ""),
        ("hours", "inside"),
        ("hours_tz", "Europe/Berlin"),
        *[("days", str(d)) for d in range(1, 6)],
        ("hours_from", "09:00"),
        ("hours_to", "17:00"),
        ("action0_type", "send_message"),
        ("action0_text", "Hi {{name}}!\r\nWe answer soon."),
        ("action1_type", ""),  # a row left empty is no action
        ("action2_type", "assign"),
        ("action2_assign", org.ids["agent"]),
        ("action3_type", "add_tags"),
        ("action3_tags", ""),
    ]
    # Refused, named as the form names it (the fourth row), with what was typed kept.
    refused = await post("/bots", fields)
    assert refused.status == 422
    assert "Action 4, tags: must be a non-empty list of tags" in refused.body
    assert "Hi {{name}}!" in refused.body
    assert 'value=" price , cost,"' in refused.body
    assert "<option selected>Europe/Berlin</option>" in refused.body
    bad_zone = [(k, "Mars/Olympus" if k == "hours_tz" else v) for k, v in fields]
    refused = await post("/bots", bad_zone)
    assert "Business hours, time zone: must be an IANA time zone" in refused.body

    fields = [(k, "lead, vip" if k == "action3_tags" else v) for k, v in fields]
    made = await post("/bots", fields)
    assert made.status == 303, made.body
    assert made.location.endswith("?notice=created")
    bot_id = made.location.split("/")[2].split("?")[0]
    bot = await svc.db.read(lambda tx: tx.get_bot(org.org_id, bot_id))
    assert bot.conditions.to_json() == {
        "reason": ["first_message"],
        "channel_ids": [org.ids["channel"]],
        "text_contains": ["price", "cost"],
        "min_followers": 10,
        "verified": True,
        "business_hours": {
            "tz": "Europe/Berlin",
            "days": [1, 2, 3, 4, 5],
            "from": "09:00",
            "to": "17:00",
            "inside": True,
        },
    }
    assert [type(a).__name__ for a in bot.actions] == ["SendMessage", "Assign", "AddTags"]
    assert bot.actions[0].text == "Hi {{name}}!\nWe answer soon."

    # Its page, in words.
    shown = (await browser.call("GET", made.location)).body
    for words in [
        "Bot created",
        "Trigger: Conversation opened",
        "The conversation opened by their first message",
        "On @shop_alpha_handle",
        "The message contains any of: “price”, “cost”",
        "The customer has at least 10 followers",
        "The customer&#39;s account is verified",
        "Inside business hours: Mon, Tue, Wed, Thu, Fri, 09:00 to 17:00 (Europe/Berlin)",
        "Send message: “Hi {{name}}!",
        "Assign to Agent alpha",
        "Add tags: lead, vip",
        "No runs yet",
    ]:
        assert words in shown, words

    # The edit form, filled in as the bot is; saved; then disabled, enabled, deleted.
    edit = (await browser.call("GET", f"/bots/{bot_id}/edit")).body
    assert 'value="price, cost"' in edit
    assert f'value="{org.ids["channel"]}" checked' in edit
    assert f'<option value="{org.ids["agent"]}" selected>' in edit
    assert '<option value="add_tags" selected>' in edit
    changed = [(k, "Hi {{username}}" if k == "action0_text" else v) for k, v in fields]
    saved = await post(f"/bots/{bot_id}/edit", [(k, v) for k, v in changed if k != "step"])
    assert saved.location == f"/bots/{bot_id}?notice=saved"
    bot = await svc.db.read(lambda tx: tx.get_bot(org.org_id, bot_id))
    assert bot.actions[0].text == "Hi {{username}}"
    off = await post(f"/bots/{bot_id}/enabled", [("enabled", "false")])
    assert off.location == f"/bots/{bot_id}?notice=disabled"
    shown = (await browser.call("GET", off.location)).body
    assert ">Enable</button>" in shown
    assert "disabled" in (await browser.call("GET", "/bots")).body
    await post(f"/bots/{bot_id}/enabled", [("enabled", "true")])
    assert (await svc.db.read(lambda tx: tx.get_bot(org.org_id, bot_id))).enabled
    gone = await post(f"/bots/{bot_id}/delete", [])
    assert gone.location == "/bots?notice=deleted"
    assert await svc.db.read(lambda tx: tx.get_bot(org.org_id, bot_id)) is None
    assert (await browser.call("GET", f"/bots/{bot_id}")).status == 404
