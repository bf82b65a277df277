"""A Bot Studio journey built by clicking, in a real browser, on both databases, at a desktop's
and at a phone's width: Create New Bot → Conversation opened → "the customer's first message,
mentioning the shop's word" → send "Hi {{name}}!", assign in turn (round robin), tag "lead".
Then a new customer writes; the bot's page shows the run arrive, done, each action done, with
no reload; its conversation shows the reply sent, the assignee and the tag."""

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

ACCOUNT = "17841400000000098"
SECRET = "bot-flow-app-secret"


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
            {"handle": "acme_store", "account_id": ACCOUNT, "access_token": "IGAA-bots"},
        )
        yield {"base": run.base, "api": api, "run": run}


async def customer_writes(site: dict[str, Any], igsid: str, name: str, text: str) -> None:
    run = site["run"]
    run.graph.put(igsid, name.lower().replace(" ", "."), name, follower_count=1200)
    dm = n.notification(
        [
            n.entry(
                ACCOUNT,
                [n.text_message(igsid, ACCOUNT, f"m-{igsid}", int(time.time() * 1000), text)],
            )
        ]
    )
    assert await Meta(run.base, SECRET).post(dm) == 200


@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_a_journey_built_by_clicking_answers_assigns_and_tags(
    site: dict[str, Any], chromium: Any, width: int
) -> None:
    base, run = site["base"], site["run"]
    phone = width == PHONE
    name = "Jane Phone" if phone else "Jane Desk"

    async with browser_context(chromium, width) as context:
        failed = FailedRequests(context)
        page = await context.new_page()
        await sign_in(page, base)

        # Bot Studio → Create New Bot, trigger Conversation opened: the builder.
        await page.get_by_role("link", name="Bot Studio").click()
        await page.wait_for_url("**/bots")
        await page.get_by_label("Bot name").fill("Welcome")
        await page.get_by_label("Trigger").select_option(label="Conversation opened")
        await page.get_by_role("button", name="Create bot").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "New bot: Conversation opened"
        )
        await looks_right(page)
        await expect(page.get_by_label("Bot name")).to_have_value("Welcome")

        # Only when: the customer's first message, mentioning the word "blue".
        await page.get_by_label("The customer's first message").check()
        await page.get_by_label("The message contains", exact=False).fill("blue, green")
        # Business hours' fields show only once asked for (CSS, no script).
        await expect(page.get_by_label("Time zone")).to_be_hidden()
        await page.get_by_label("Business hours").select_option(label="Only inside business hours")
        await expect(page.get_by_label("Time zone")).to_be_visible()
        await page.get_by_label("Business hours").select_option(label="Any time")

        # Then: one row at a time, each showing its own fields.
        second = page.get_by_role("combobox", name="Action 2", exact=True)
        await expect(second).to_be_hidden()
        await page.get_by_role("combobox", name="Action 1", exact=True).select_option(
            label="Send message"
        )
        await page.get_by_label("Message 1").fill("Hi {{name}}!")
        await second.select_option(label="Assign")
        await expect(page.locator("#action1_assign")).to_be_visible()
        await page.locator("#action1_assign").select_option(
            label="In turn (round robin), among available agents"
        )
        await page.get_by_role("combobox", name="Action 3", exact=True).select_option(
            label="Add tags"
        )
        await page.get_by_label("Tags 3").fill("lead")
        await looks_right(page)
        if not phone:
            await shot(page, "bot-builder")
        await page.get_by_role("button", name="Create bot").click()
        await page.wait_for_url("**/bots/bot_*")
        await expect(page.get_by_role("status")).to_contain_text("Bot created")
        await expect(page.locator("#actions")).to_contain_text("Send message: “Hi {{name}}!”")
        await expect(page.locator("#actions")).to_contain_text("round robin")
        await expect(page.locator("#actions")).to_contain_text("Add tags: lead")
        await expect(page.locator("#conditions")).to_contain_text("“blue”, “green”")
        await expect(page.get_by_text("No runs yet")).to_be_visible()
        await looks_right(page)

        # A new customer writes: the run appears on this page, live, and every action is done.
        igsid = "7700000000000202" if phone else "7700000000000102"
        await customer_writes(site, igsid, name, "Is the blue one in stock?")
        run_row = page.locator("tr.run").first
        await expect(run_row).to_contain_text("Done", timeout=15_000)
        await expect(run_row).to_contain_text("Conversation opened")
        await expect(run_row).to_contain_text("Is the blue one in stock?")
        for action in ("Send message: done", "Assign: done", "Add tags: done"):
            await expect(run_row).to_contain_text(action)
        await looks_right(page)
        await shot(page, "phone-bot-runs" if phone else "bot-runs")

        # Its conversation: the reply sent (once), assigned to the only agent, tagged.
        await run_row.get_by_role("link", name="Open conversation").click()
        await page.wait_for_url("**/inbox/conv_*")
        reply = f"Hi {name}!"
        out = page.locator("li.message.out", has_text=reply)
        await expect(out.locator(".reply-status")).to_have_text("Sent", timeout=15_000)
        await expect(page.get_by_label("Assigned to")).to_have_value(
            await page.locator("#agent-id option", has_text="Owen Owner").get_attribute("value")
            or ""
        )
        await expect(page.locator("ul.tags")).to_contain_text("lead")
        await looks_right(page)
        assert run.graph.send.texts()[reply] == 1

        # Another message in the same conversation opens nothing: no second run.
        await customer_writes(site, igsid, name, "blue, please")
        await page.goto(base + "/bots")
        await expect(page.get_by_role("row", name="Welcome")).to_contain_text("No URL")
        await looks_right(page)
        await page.get_by_role("link", name="Welcome").click()
        await expect(page.locator("tr.run")).to_have_count(1)

        # Disabled from its page: says so, and offers Enable.
        await page.get_by_role("button", name="Disable").click()
        await expect(page.get_by_role("status")).to_contain_text("Disabled")
        await expect(page.get_by_role("button", name="Enable")).to_be_visible()
        assert failed.seen == []

    async def runs() -> Any:
        return (await site["api"].ok("GET", "/api/v1/bots"))["items"]

    [bot] = await eventually(runs)
    assert bot["enabled"] is False
