"""The Inbox acting on a conversation, by clicking, in a real browser, on both databases, at a
desktop's and at a phone's width (issue 15's flow): a customer writes; the conversation shows the
reply window; assign it, tag it, answer it, see the reply go from queued to sent with no reload
(Meta's echo of it matched, never shown twice), mark it done, and find it under Done with its
assignee and tag. A customer who wrote two days ago may only be answered by a person (the
HUMAN_AGENT box is offered), one who wrote eight days ago not at all (no composer, and why).

The Graph API stand-in plays Meta's Send API and posts the echo, as Meta does; it must have taken
each reply exactly once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import expect

from convohook.meta import notifications as n
from convohook.runtime.services import Services
from convohook.usecases.orgs import create_org
from convohook.usecases.status import backlog as backlog_now
from convohook.usecases.users import create_user

from browser import (
    DESKTOP,
    EMAIL,
    PASSWORD,
    PHONE,
    FailedRequests,
    browser_context,
    looks_right,
    shot,
    sign_in,
)
from harness import Api, Meta, eventually, running_convohook

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

ACCOUNT = "17841400000000097"
SECRET = "inbox-flow-app-secret"
DAY_MS = 24 * 3600 * 1000


@pytest_asyncio.fixture(loop_scope="session")
async def site(database_url_for: str) -> AsyncIterator[dict[str, Any]]:
    async with running_convohook(database_url_for, SECRET) as run:
        svc: Services = run.services
        org = await svc.db.run(create_org, "Acme", svc.clock())
        await svc.db.run(create_user, org.org.id, EMAIL, PASSWORD, svc.clock(), "Owen Owner")
        api = Api(run.base, org.api_key)
        await api.ok(
            "POST",
            "/api/v1/channels",
            {"handle": "acme_store", "account_id": ACCOUNT, "access_token": "IGAA-inbox"},
        )
        yield {"base": run.base, "api": api, "run": run}


async def customer_writes(
    site: dict[str, Any], igsid: str, username: str, name: str, text: str, age_ms: int = 0
) -> str:
    """A DM from a customer (written `age_ms` ago by Meta's clock); its conversation's id."""
    run, api = site["run"], site["api"]
    run.graph.put(igsid, username, name, follower_count=1200)
    sent_at = int(time.time() * 1000) - age_ms
    dm = n.notification(
        [n.entry(ACCOUNT, [n.text_message(igsid, ACCOUNT, f"m-{igsid}", sent_at, text)])]
    )
    assert await Meta(run.base, SECRET).post(dm) == 200

    async def opened() -> str | None:
        items = (await api.ok("GET", "/api/v1/conversations?status=open"))["items"]
        found = [c for c in items if c["contact"]["igsid"] == igsid and c["contact"]["handle"]]
        return found[0]["id"] if found else None

    conversation: str = await eventually(opened)
    return conversation


@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_assign_tag_reply_and_mark_done_by_clicking(
    site: dict[str, Any], chromium: Any, width: int
) -> None:
    base, run = site["base"], site["run"]
    phone = width == PHONE
    igsid = "7700000000000201" if phone else "7700000000000101"
    name = "Jane Phone" if phone else "Jane Desk"
    await customer_writes(site, igsid, name.lower().replace(" ", "."), name, "Is it in blue?")
    reply = f"Hi {name.split()[1]}! Yes, it comes in blue."

    async with browser_context(chromium, width) as context:
        failed = FailedRequests(context)
        page = await context.new_page()
        await sign_in(page, base)

        # The Inbox: the new conversation, nobody's yet.
        await page.get_by_role("link", name="Inbox", exact=True).click()
        await page.get_by_role("link", name="Unassigned").click()
        await page.get_by_role("link", name=name).click()
        await page.wait_for_url("**/inbox/conv_*")
        await looks_right(page)
        await expect(page.locator("li.message").first).to_contain_text("Is it in blue?")
        # The customer wrote just now: the 24-hour window is open, no human-agent tag offered.
        await expect(page.locator("#reply-window")).to_contain_text("Reply window open")
        await expect(page.locator("#reply-window")).to_contain_text("left")
        await expect(page.locator("#human-agent")).to_have_count(0)

        # Assign it to oneself, tag it.
        await page.get_by_label("Assigned to").select_option(label="Owen Owner (you)")
        await page.get_by_role("button", name="Assign", exact=True).click()
        await expect(page.get_by_role("status")).to_have_text("Assigned.")
        await page.get_by_label("Add tags", exact=False).fill("blue, lead")
        await page.get_by_role("button", name="Add", exact=True).click()
        await expect(page.get_by_role("status")).to_have_text("Tags saved.")
        await expect(page.locator("ul.tags")).to_contain_text("lead")

        # Answer: queued at once, then sent, on the same page (it polls while a reply is
        # pending); Meta's echo of it does not make a second message.
        await page.get_by_role("textbox", name="Message").fill(reply)
        await page.get_by_role("button", name="Send", exact=True).click()
        await expect(page.get_by_role("status")).to_contain_text("Reply queued")
        out = page.locator("li.message.out", has_text=reply)
        await expect(out.locator(".reply-status")).to_have_text("Sent", timeout=15_000)
        await eventually(lambda: _echoed(run, reply))
        await page.goto(page.url.split("?")[0])  # the page afresh, without the notice
        await expect(page.locator("li.message.out", has_text=reply)).to_have_count(1)
        await expect(page.locator("li.message.out", has_text=reply)).to_contain_text("Sent")
        assert run.graph.send.texts()[reply] == 1  # Meta was asked once
        await looks_right(page)
        await shot(page, "phone-conversation-reply" if phone else "conversation-reply")

        # Mine has it with its tag; then Mark as done, and Done lists it, still assigned.
        await page.goto(base + "/inbox")
        await page.get_by_role("link", name="Mine").click()
        row = page.get_by_role("row", name=name)
        await expect(row).to_contain_text("Owen Owner")
        await expect(row).to_contain_text("lead")
        await looks_right(page)
        if not phone:
            await shot(page, "inbox-mine")
        await page.get_by_role("link", name=name).click()
        await page.get_by_role("button", name="Mark as done").click()
        await expect(page.get_by_role("status")).to_contain_text("Marked as done")
        await page.goto(base + "/inbox?status=done")
        await expect(page.get_by_role("row", name=name)).to_contain_text("Owen Owner")
        await looks_right(page)
        assert failed.seen == []


async def _echoed(run: Any, text: str) -> bool:
    """The stand-in has posted Meta's echo of the reply, and convohook has processed it."""
    if run.graph.send.echo_tasks or run.graph.send.texts()[text] != 1:
        return False
    services: Services = run.services
    backlog = await services.db.read(backlog_now, services.clock())
    return backlog.notifications == 0


async def test_the_window_decides_what_a_person_may_send(
    site: dict[str, Any], chromium: Any
) -> None:
    base = site["base"]
    two_days = await customer_writes(
        site, "7700000000000301", "old.friend", "Old Friend", "Still there?", age_ms=2 * DAY_MS
    )
    eight_days = await customer_writes(
        site, "7700000000000401", "long.gone", "Long Gone", "Hello?", age_ms=8 * DAY_MS
    )
    async with browser_context(chromium, DESKTOP) as context:
        page = await context.new_page()
        await sign_in(page, base)

        # 24 hours to 7 days: only a person's reply, sent with Instagram's HUMAN_AGENT tag.
        await page.goto(f"{base}/inbox/{two_days}")
        await expect(page.locator("#reply-window")).to_contain_text("Human agent only until")
        await page.get_by_role("textbox", name="Message").fill("Sorry for the wait!")
        await page.get_by_role("button", name="Send", exact=True).click()
        # Refused without the box, kept on the page with why, nothing sent.
        await expect(page.locator(".error, [role=alert]").first).to_be_visible()
        await expect(page.get_by_role("textbox", name="Message")).to_have_value(
            "Sorry for the wait!"
        )
        assert site["run"].graph.send.texts()["Sorry for the wait!"] == 0
        await page.locator("#human-agent").check()
        await page.get_by_role("button", name="Send", exact=True).click()
        out = page.locator("li.message.out", has_text="Sorry for the wait!")
        await expect(out).to_contain_text("as human agent")
        await expect(out.locator(".reply-status")).to_have_text("Sent", timeout=15_000)
        [taken] = [r for r in site["run"].graph.send.sent if r.text == "Sorry for the wait!"]
        assert taken.tag == "HUMAN_AGENT"

        # Past 7 days: no composer, and the page says why.
        await page.goto(f"{base}/inbox/{eight_days}")
        await expect(page.locator("#reply-window")).to_contain_text("Reply window closed")
        await expect(page.locator("#composer")).to_have_count(0)
        await looks_right(page)
