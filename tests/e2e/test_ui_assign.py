"""Assigning and tagging by clicking, in a real browser, on both databases, at a desktop's and at
a phone's width: add an agent in Settings → Agents and mark them away, open a customer's
conversation, assign it with the select, tag it, find it under Mine and by its tag in the
Inbox, unassign it. Every page on the way fits the window and names every table cell's column."""

from __future__ import annotations

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
    browser_context,
    looks_right,
    shot,
    sign_in,
)
from harness import Api, Meta, eventually, running_convohook

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

ACCOUNT = "17841400000000098"
SECRET = "assign-flow-app-secret"


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
            {"handle": "acme_store", "account_id": ACCOUNT, "access_token": "t"},
        )
        run.graph.put("7700000000000001", "jane.doe", "Jane Doe", follower_count=42)
        dm = n.notification(
            [n.entry(ACCOUNT, [n.text_message("7700000000000001", ACCOUNT, "m-1", 1, "Hi")])]
        )
        assert await Meta(run.base, SECRET).post(dm) == 200

        async def opened() -> Any:
            items = (await api.ok("GET", "/api/v1/conversations"))["items"]
            return items and items[0]["contact"]["handle"] and items[0]["id"]

        conversation = await eventually(opened)
        yield {"base": run.base, "conversation": conversation}


@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_assign_tag_and_filter_by_clicking(
    site: dict[str, Any], chromium: Any, width: int
) -> None:
    base, conversation = site["base"], site["conversation"]
    async with browser_context(chromium, width) as context:
        page = await context.new_page()
        await sign_in(page, base)

        # Settings → Agents: add one, then mark them away.
        await page.get_by_role("link", name="Agents").click()
        await page.wait_for_url("**/settings/agents")
        await looks_right(page)
        await page.get_by_label("Name").fill("Grace Hopper")
        await page.get_by_label("Email").fill(f"grace-{width}@acme.test")
        await page.get_by_role("button", name="Add agent").click()
        await page.get_by_role("cell", name="Grace Hopper").first.wait_for()
        await page.get_by_role("button", name="Mark Grace Hopper away").first.click()
        await expect(
            page.get_by_role("button", name="Mark Grace Hopper available").first
        ).to_be_visible()
        await looks_right(page)
        if width == DESKTOP:
            await shot(page, "agents")

        # The conversation: assign it to oneself, tag it; the contact's followers are shown.
        await page.goto(f"{base}/inbox/{conversation}")
        await looks_right(page)
        assert "42" in await page.locator("dl").inner_text()
        await page.get_by_label("Assigned to").select_option(label="Owen Owner (you)")
        await page.get_by_role("button", name="Assign", exact=True).click()
        await expect(page.get_by_role("status")).to_have_text("Assigned.")
        await page.get_by_label("Add tags", exact=False).fill("vip, pricing")
        await page.get_by_role("button", name="Add", exact=True).click()
        await expect(page.get_by_role("status")).to_have_text("Tags saved.")
        await expect(page.locator("ul.tags")).to_contain_text("pricing")
        await page.get_by_role("button", name="Remove the tag pricing").click()
        await expect(page.locator("ul.tags")).not_to_contain_text("pricing")
        await looks_right(page)

        # The Inbox: Mine has it, Unassigned does not; its tag is a filter.
        await page.goto(base + "/inbox")
        row = page.get_by_role("row", name="Jane Doe")
        await expect(row).to_contain_text("Owen Owner")
        await looks_right(page)
        await page.get_by_role("link", name="Unassigned").click()
        await expect(page.get_by_role("link", name="Jane Doe")).to_have_count(0)
        await page.get_by_role("link", name="Mine").click()
        await expect(page.get_by_role("link", name="Jane Doe")).to_have_count(1)
        await page.get_by_role("link", name="vip", exact=True).click()
        await page.wait_for_url("**tag=vip**")
        await expect(page.get_by_label("Tag", exact=True)).to_have_value("vip")
        await expect(page.get_by_role("link", name="Jane Doe")).to_have_count(1)
        await looks_right(page)

        # Unassigned again, from the conversation page.
        await page.goto(f"{base}/inbox/{conversation}")
        await page.get_by_role("button", name="Unassign").click()
        await expect(page.get_by_role("status")).to_have_text("Unassigned.")
        await expect(page.get_by_label("Assigned to")).to_have_value("")
