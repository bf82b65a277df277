"""The whole product by clicking, in a real browser, on both databases: connect a channel, make
a Bot Studio bot, point a new webhook at it (DoubleTick's flow), send a test DM, watch the
Conversation Opened payload arrive live in Bot Studio, Mark as done in the Inbox, and see the
customer's next DM reopen it, with the same dtCustomerId. Every capture is verified with the
public standardwebhooks library."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from standardwebhooks import Webhook as StandardWebhook

from convohook.runtime.services import Services
from convohook.usecases.orgs import create_org
from convohook.usecases.users import create_user

from browser import EMAIL, PASSWORD, browser_context, need_chromium, shot, sign_in
from harness import running_convohook

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ACCOUNT = "17841400000000099"
OPENED_LABEL = (
    "Conversation Opened when a customer messages (for first time) / "
    "(on a conversation marked as done)"
)


@pytest.fixture
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


async def test_setup_dm_bot_studio_done_and_reopen(site: dict[str, Any]) -> None:
    base, services = site["base"], site["services"]
    async with browser_context() as context:
        page = await context.new_page()
        await sign_in(page, base)

        # Channels: connect the Instagram account; Meta's dashboard values are shown.
        await page.get_by_role("link", name="Channels").click()
        await page.get_by_label("Instagram handle").fill("acme_store")
        await page.get_by_label("Instagram account id", exact=False).fill(ACCOUNT)
        await page.get_by_label("Access token", exact=False).fill("IGAA-flow")
        await page.get_by_role("button", name="Connect").click()
        await page.get_by_role("cell", name="@acme_store").wait_for()

        # Bot Studio: Create New Bot, trigger On Webhook, copy its URL.
        await page.get_by_role("link", name="Bot Studio").click()
        await page.get_by_label("Bot name").fill("Lead capture")
        await page.get_by_label("Trigger").select_option(label="On Webhook")
        await page.get_by_role("button", name="Create bot").click()
        await page.wait_for_url("**/bots/bot_*")
        bot_page = page.url
        bot_id = bot_page.rsplit("/", 1)[1]
        bot_url = await page.get_by_label("Webhook URL").input_value()
        assert bot_url.startswith(base + "/hooks/bots/")
        await page.get_by_role("button", name="Copy URL").click()
        await page.get_by_role("button", name="Copied").wait_for()

        # Settings → Webhooks → New Webhook, exactly DoubleTick's steps, with the bot's URL.
        await page.get_by_role("link", name="Settings → Webhooks").click()
        await page.get_by_role("link", name="New Webhook").click()
        await page.get_by_label("Name").fill("Leads to the bot")
        await page.get_by_label("URL").fill(bot_url)
        await page.get_by_label("Channel Type").select_option("INSTAGRAM")
        await page.get_by_label("Channel", exact=True).select_option(label="@acme_store")
        await page.get_by_role("button", name="Continue").click()
        assert await page.get_by_label(OPENED_LABEL).is_checked()
        await page.get_by_role("button", name="Save").click()
        await page.get_by_role("button", name="Reveal secret").click()
        secret = await page.locator("#secret code").inner_text()

        # Bot Studio: Capture Response, then a DM from a second tab arrives live.
        await page.goto(bot_page)
        await page.get_by_role("link", name="Capture Response").click()
        await page.get_by_text("Listening").wait_for()
        other_tab = await context.new_page()
        await send_test_dm(other_tab, base, "ada.lovelace", "Ada Lovelace", "Is it in blue?")
        first = page.locator("article.capture").first
        await first.wait_for()  # no reload: pushed over server-sent events
        data = await first.get_by_role("group").first.inner_text()
        assert "customerName" in data
        assert '"Ada Lovelace"' in data
        assert "stable" in data or "for ever" in data  # each field is explained
        body = await verified_capture(services, site["org_id"], bot_id, secret)
        assert body["customerName"] == "Ada Lovelace"
        assert body["conversationOpened"] is True
        customer_id = body["dtCustomerId"]
        assert customer_id in data
        await shot(page, "bot-studio")

        # Inbox: the open conversation, its message, the contact's dtCustomerId; Mark as done.
        await other_tab.get_by_role("link", name="Inbox", exact=True).click()
        await other_tab.get_by_role("link", name="Ada Lovelace").click()
        assert "Is it in blue?" in await other_tab.locator("li.message").inner_text()
        assert await other_tab.locator("#dt-customer-id").inner_text() == customer_id
        await shot(other_tab, "conversation")
        await other_tab.get_by_role("button", name="Mark as done").click()
        assert "Marked as done" in await other_tab.get_by_role("status").inner_text()
        await other_tab.get_by_role("link", name="Inbox", exact=True).click()
        await other_tab.get_by_text("No open conversation yet").wait_for()
        await other_tab.get_by_role("link", name="Done").click()
        await other_tab.get_by_role("link", name="Ada Lovelace").wait_for()

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
        await shot(other_tab, "inbox")
        await other_tab.goto(base + "/settings/channels")
        await shot(other_tab, "channels")

        await page.set_viewport_size({"width": 390, "height": 800})  # phone width
        assert await page.get_by_role("button", name="Copy URL").is_visible()
        assert await page.locator("article.capture").first.is_visible()
        await shot(page, "phone-bot-studio")
