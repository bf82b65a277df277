"""The whole product by clicking, in a real browser, on both databases, at a desktop's and at a
phone's width: connect a channel, make a Bot Studio bot, point a new webhook at it (DoubleTick's
flow), send a test DM, watch the Conversation Opened payload arrive live in Bot Studio and open
it with View Response Data, Mark as done in the Inbox, and see the customer's next DM reopen it,
with the same dtCustomerId. Every capture is verified with the public standardwebhooks library.

Every page on the way must fit the window (no sideways scroll), name every table cell's column,
and load without a failed request; the Copy buttons put their value on the clipboard and go back
to their label."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
import pytest_asyncio
from playwright.async_api import expect
from standardwebhooks import Webhook as StandardWebhook

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
    need_chromium,
    shot,
    sign_in,
)
from harness import running_convohook

# In the session's event loop, with the session's Chromium (conftest.py).
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

ACCOUNT = "17841400000000099"
OPENED_LABEL = (
    "Conversation Opened when a customer messages (for first time) / "
    "(on a conversation marked as done)"
)


@pytest_asyncio.fixture(loop_scope="session")
async def site(database_url_for: str) -> AsyncIterator[dict[str, Any]]:
    need_chromium()
    async with running_convohook(
        database_url_for, "flow-app-secret", demo=True, meta_verify_token="flow-verify"
    ) as run:
        svc: Services = run.services
        org = await svc.db.run(create_org, "Acme", svc.clock())
        await svc.db.run(create_user, org.org.id, EMAIL, PASSWORD, svc.clock())
        yield {"base": run.base, "services": svc, "org_id": org.org.id}


async def send_test_dm(page: Any, base: str, username: str, name: str, text: str) -> None:
    await page.goto(base + "/settings/channels")
    await page.get_by_label("Customer's username").fill(username)
    await page.get_by_label("Customer's name").fill(name)
    await page.get_by_label("Message").fill(text)
    await page.get_by_role("button", name="Send test DM").click()
    assert "DM sent" in await page.get_by_role("status").inner_text()


async def verified_capture(services: Services, org_id: str, bot_id: str, secret: str) -> Any:
    """The newest capture, its signature checked by the public library, as the receiver would."""
    [capture] = await services.db.read(lambda tx: tx.list_captures(bot_id, None, 1))
    headers = {k: v for k, v in capture.headers.items() if k.startswith("webhook-")}
    return StandardWebhook(secret).verify(capture.body, headers)


async def copies(page: Any, button: Any, label: str, value: str) -> None:
    """A Copy button puts `value` on the clipboard, says so, then says its label again
    (`button` found by what it copies: its name changes)."""
    await expect(button).to_have_text(label)
    await button.click()
    await expect(button).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == value
    await expect(button).to_have_text(label)  # a couple of seconds later


async def shows_response_data(capture: Any, customer: str) -> str:
    """View Response Data opens the capture: the body as a tree, its headers, its raw body."""
    data = capture.locator("div.response-data")
    assert not await data.is_visible()  # collapsed until asked for, live or not
    await capture.locator("summary", has_text="View Response Data").click()
    tree = data.locator("ul.tree").first
    headers = data.locator("table.headers")
    raw = data.locator("section", has_text="Raw body").locator("pre")
    for part in (tree, headers, raw):
        await expect(part).to_be_visible()
    assert "webhook-signature" in await headers.inner_text()
    assert orjson.loads(await raw.inner_text())["customerName"] == customer
    shown: str = await tree.inner_text()
    assert f'"{customer}"' in shown
    return shown


async def callback_url_is_in_sight_and_copies(page: Any, base: str) -> None:
    """The one value to paste into Meta's dashboard: all of it inside its card, and copyable."""
    url, callback = page.locator("#callback-url"), base + "/webhooks/instagram"
    assert await url.inner_text() == callback
    assert await url.evaluate("e => e.scrollWidth <= e.clientWidth")  # nothing cut off
    box = await url.bounding_box()
    card = await page.locator("section.card", has=url).bounding_box()
    assert card["x"] <= box["x"]
    assert box["x"] + box["width"] <= card["x"] + card["width"] <= page.viewport_size["width"]
    await copies(page, page.locator('[data-copy="#callback-url"]'), "Copy URL", callback)


@pytest.mark.parametrize("width", [DESKTOP, PHONE], ids=["desktop", "phone"])
async def test_setup_dm_bot_studio_done_and_reopen(
    site: dict[str, Any], chromium: Any, width: int
) -> None:
    base, services = site["base"], site["services"]
    phone = width == PHONE
    async with browser_context(chromium, width) as context:
        failed = FailedRequests(context)
        page = await context.new_page()
        await sign_in(page, base)
        await looks_right(page)

        # Channels: connect the Instagram account; Meta's dashboard values are shown.
        await page.get_by_role("link", name="Channels").click()
        await page.wait_for_url("**/settings/channels")
        await looks_right(page)
        await callback_url_is_in_sight_and_copies(page, base)
        await page.get_by_label("Instagram handle").fill("acme_store")
        await page.get_by_label("Instagram account id", exact=False).fill(ACCOUNT)
        await page.get_by_label("Access token", exact=False).fill("IGAA-flow")
        await page.get_by_role("button", name="Connect").click()
        await page.get_by_role("cell", name="@acme_store").wait_for()
        await looks_right(page)

        # Bot Studio: Create New Bot, trigger On Webhook, copy its URL.
        await page.get_by_role("link", name="Bot Studio").click()
        await page.wait_for_url("**/bots")
        await looks_right(page)
        await page.get_by_label("Bot name").fill("Lead capture")
        await page.get_by_label("Trigger").select_option(label="On Webhook")
        await page.get_by_role("button", name="Create bot").click()
        await page.wait_for_url("**/bots/bot_*")
        await looks_right(page)
        bot_page = page.url
        bot_id = bot_page.rsplit("/", 1)[1]
        bot_url = await page.get_by_label("Webhook URL").input_value()
        assert bot_url.startswith(base + "/hooks/bots/")
        await copies(page, page.locator('[data-copy="#bot-url"]'), "Copy URL", bot_url)

        # Settings → Webhooks → New Webhook, exactly DoubleTick's steps, with the bot's URL.
        await page.get_by_role("link", name="Settings → Webhooks").click()
        await page.wait_for_url("**/settings/webhooks")
        await looks_right(page)
        await page.get_by_role("link", name="New Webhook").click()
        await page.wait_for_url("**/settings/webhooks/new")
        await looks_right(page)
        await page.get_by_label("Name").fill("Leads to the bot")
        await page.get_by_label("URL").fill(bot_url)
        await page.get_by_label("Channel Type").select_option("INSTAGRAM")
        await page.get_by_label("Channel", exact=True).select_option(label="@acme_store")
        await page.get_by_role("button", name="Continue").click()
        await page.get_by_label(OPENED_LABEL).wait_for()
        await looks_right(page)
        assert await page.get_by_label(OPENED_LABEL).is_checked()
        await page.get_by_role("button", name="Save").click()
        await page.get_by_role("button", name="Reveal secret").wait_for()
        await looks_right(page)
        await page.get_by_role("button", name="Reveal secret").click()
        secret = await page.locator("#secret code").inner_text()
        await looks_right(page)
        await page.get_by_role("link", name="← Webhooks").click()
        await page.get_by_role("link", name="Leads to the bot").wait_for()
        await looks_right(page)

        # Bot Studio: Capture Response, then a DM from a second tab arrives live.
        await page.goto(bot_page)
        await page.get_by_role("link", name="Capture Response").click()
        await page.get_by_text("Listening").wait_for()
        other_tab = await context.new_page()
        await send_test_dm(other_tab, base, "ada.lovelace", "Ada Lovelace", "Is it in blue?")
        await looks_right(other_tab)
        first = page.locator("article.capture").first
        await first.wait_for()  # no reload: pushed over server-sent events
        heading = await first.get_by_role("heading").inner_text()
        assert heading.startswith("Conversation Opened · @ada.lovelace · "), heading
        data = await shows_response_data(first, "Ada Lovelace")
        assert "customerName" in data
        assert "stable" in data or "for ever" in data  # each field is explained
        body = await verified_capture(services, site["org_id"], bot_id, secret)
        assert body["customerName"] == "Ada Lovelace"
        assert body["conversationOpened"] is True
        customer_id = body["dtCustomerId"]
        assert customer_id in data
        await looks_right(page)
        await shot(page, "phone-bot-studio" if phone else "bot-studio")

        # Inbox: the open conversation, its message, the contact's dtCustomerId; Mark as done.
        await other_tab.get_by_role("link", name="Inbox", exact=True).click()
        await other_tab.get_by_role("link", name="Ada Lovelace").wait_for()
        await looks_right(other_tab)
        await other_tab.get_by_role("link", name="Ada Lovelace").click()
        assert "Is it in blue?" in await other_tab.locator("li.message").inner_text()
        await looks_right(other_tab)
        assert await other_tab.locator("#dt-customer-id").inner_text() == customer_id
        if not phone:
            await shot(other_tab, "conversation")
        await other_tab.get_by_role("button", name="Mark as done").click()
        assert "Marked as done" in await other_tab.get_by_role("status").inner_text()
        await other_tab.get_by_role("link", name="Inbox", exact=True).click()
        await other_tab.get_by_text("No open conversation yet").wait_for()
        await other_tab.get_by_role("link", name="Done").click()
        await other_tab.get_by_role("link", name="Ada Lovelace").wait_for()
        await looks_right(other_tab)

        # The same customer writes again: a reopen, live in Bot Studio, same dtCustomerId.
        await send_test_dm(other_tab, base, "ada.lovelace", "Ada Lovelace", "Me again!")
        await page.locator("article.capture").nth(1).wait_for()
        reopened = await verified_capture(services, site["org_id"], bot_id, secret)
        assert reopened["dtCustomerId"] == customer_id
        assert reopened["conversationOpened"] is True
        assert orjson.dumps(reopened) == orjson.dumps(body)  # byte for byte the same opening
        await other_tab.goto(base + "/inbox")
        row = other_tab.get_by_role("row", name="Ada Lovelace")
        assert "Reopened" in await row.inner_text()
        await looks_right(other_tab)
        await shot(other_tab, "phone-inbox" if phone else "inbox")
        await other_tab.goto(base + "/settings/channels")
        await shot(other_tab, "phone-channels" if phone else "channels")

        # Captures that were on the page already open the same way.
        await page.goto(bot_page)
        await looks_right(page)
        for capture in await page.locator("article.capture").all():
            await shows_response_data(capture, "Ada Lovelace")
        await looks_right(page)

        # Whatever anyone POSTs to the URL, long keys and header names too, stays on the page,
        # headed by its method and time.
        await page.get_by_role("link", name="Capture Response").click()
        await page.get_by_text("Listening").wait_for()
        async with aiohttp.ClientSession() as http:
            stranger = {"k" * 300: "v" * 300, "customerName": "Not a payload"}
            headers = {"X-" + "h" * 200: "w" * 300}
            async with http.post(bot_url, json=stranger, headers=headers) as response:
                assert response.status < 300
        await page.locator("article.capture").nth(2).wait_for()
        odd = page.locator("article.capture").first
        assert (await odd.get_by_role("heading").inner_text()).startswith("POST · ")
        await odd.locator("summary", has_text="View Response Data").click()
        await expect(odd.locator("div.response-data")).to_be_visible()
        await looks_right(page)
        assert failed.seen == []
