"""The web UI in a real browser (Playwright driving Debian's Chromium): DoubleTick's setup flow.

Sign in → Settings → Webhooks → New Webhook → name, URL, channel type, channel → Continue →
"Conversation Opened when a customer messages…" → Save; a DM arrives; the delivery and its
attempt show on the webhook's page; Retry now sends it again; CSRF and sign-in are enforced.
Set CONVOHOOK_SCREENSHOTS=1 to refresh the pictures in docs/img.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from convohook.meta import notifications as n
from convohook.runtime.services import Services
from convohook.usecases.orgs import create_org
from convohook.usecases.users import create_user

from browser import (
    EMAIL,
    PASSWORD,
    PHONE,
    browser_context,
    layout_problems,
    need_chromium,
    shot,
    sign_in,
)
from harness import Api, Meta, running_convohook

# In the session's event loop, with the session's Chromium (conftest.py).
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

ACCOUNT = "17841400000000077"
SECRET = "ui-app-secret"


@pytest_asyncio.fixture(loop_scope="session")
async def site(database_url_for: str) -> AsyncIterator[dict[str, Any]]:
    need_chromium()
    async with running_convohook(
        database_url_for, SECRET, retry_schedule=(0.2,), meta_verify_token="ui-verify-token"
    ) as run:
        run.graph.put("1200000000000001", "jane.doe", "Jane Doe")
        svc: Services = run.services
        org = await svc.db.run(create_org, "Acme", svc.clock())
        await svc.db.run(create_user, org.org.id, EMAIL, PASSWORD, svc.clock())
        await Api(run.base, org.api_key).ok(
            "POST",
            "/api/v1/channels",
            {
                "type": "INSTAGRAM",
                "handle": "acme_store",
                "account_id": ACCOUNT,
                "access_token": "tok",
            },
        )
        yield {"base": run.base, "receiver": run.receiver, "meta": Meta(run.base, SECRET)}


@pytest_asyncio.fixture(loop_scope="session")
async def page(chromium: Any) -> AsyncIterator[Any]:
    async with browser_context(chromium) as context:
        yield await context.new_page()


async def test_doubletick_setup_flow_and_delivery_log(site: dict[str, Any], page: Any) -> None:
    base, receiver = site["base"], site["receiver"]
    await sign_in(page, base, check_wrong_password=True)
    await page.get_by_role("link", name="New Webhook").click()
    await page.get_by_label("Name").fill("CRM leads")
    await page.get_by_label("URL").fill(receiver.url)
    await page.get_by_label("Channel Type").select_option("INSTAGRAM")
    await page.get_by_label("Channel", exact=True).select_option(label="@acme_store")
    await shot(page, "new-webhook")
    await page.get_by_role("button", name="Continue").click()
    opened = page.get_by_label(
        "Conversation Opened when a customer messages (for first time) / "
        "(on a conversation marked as done)"
    )
    assert await opened.is_checked()
    await page.get_by_role("button", name="Save").click()
    assert "Webhook saved" in await page.get_by_role("status").inner_text()
    webhook_url = page.url.split("?")[0]
    await page.get_by_role("button", name="Reveal secret").click()
    secret = await page.locator("#secret code").inner_text()
    assert secret.startswith("whsec_")

    body = n.notification(
        [
            n.entry(
                ACCOUNT,
                [n.text_message("1200000000000001", ACCOUNT, "ui-mid-1", 1_764_000_000_000, "Hi!")],
            )
        ]
    )
    assert await site["meta"].post(body) == 200
    [received] = await receiver.wait_for(1)
    receiver.verify_all(secret)
    assert received.json()["customerName"] == "Jane Doe"

    delivery = page.locator("section.delivery")
    for _ in range(100):  # the attempt is recorded just after the receiver answered
        await page.goto(webhook_url)
        if await delivery.locator(".status.succeeded").count():
            break
        await page.wait_for_timeout(100)
    await delivery.locator(".status.succeeded").wait_for()
    assert await delivery.locator("tr.attempt").count() == 1
    await delivery.locator("tr.attempt summary", has_text="Request headers").click()
    sent = await delivery.locator("tr.attempt table.headers").inner_text()
    assert received.headers["webhook-signature"] in sent
    assert received.headers["webhook-id"] in sent
    await shot(page, "webhook")
    await delivery.get_by_role("button", name="Retry now").click()
    await receiver.wait_for(2)
    assert received.headers["webhook-id"] == receiver.received[1].headers["webhook-id"]

    await page.get_by_role("link", name="Settings → Webhooks").click()
    row = page.get_by_role("row", name="CRM leads")
    assert "Enabled" in await row.inner_text()
    await shot(page, "webhooks")

    # At a phone's width the table is a list of cards, each value named by its column.
    await page.set_viewport_size({"width": PHONE, "height": 844})
    await page.reload()
    assert await page.get_by_role("link", name="CRM leads").is_visible()
    assert await layout_problems(page) == []
    delivered = row.get_by_role("cell", name="Delivered")
    assert (await delivered.inner_text()).isdigit()  # the column's name is CSS, not text
    assert await delivered.evaluate("td => getComputedStyle(td, '::before').content") == (
        '"Delivered"'
    )
    await shot(page, "phone-webhooks")
    await page.set_viewport_size({"width": 1280, "height": 900})

    await page.get_by_role("button", name=f"Sign out ({EMAIL})").click()
    await page.wait_for_url("**/login")
    await page.goto(base + "/settings/webhooks")
    assert "/login" in page.url


async def test_forms_without_the_csrf_token_are_refused(site: dict[str, Any], page: Any) -> None:
    await sign_in(page, site["base"])
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    async with aiohttp.ClientSession(cookies=cookies) as http:
        async with http.post(
            site["base"] + "/settings/webhooks/new",
            data={"step": "1", "name": "x", "url": "https://example.com"},
        ) as r:
            assert r.status == 403
        async with http.post(
            site["base"] + "/settings/webhooks/new",
            data={"csrf_token": "forged", "step": "1", "name": "x"},
        ) as r:
            assert r.status == 403


async def test_channels_page_shows_meta_settings_and_connects(
    site: dict[str, Any], page: Any
) -> None:
    await sign_in(page, site["base"])
    await page.get_by_role("link", name="Channels").click()
    callback = await page.locator("#callback-url").inner_text()
    assert callback == site["base"] + "/webhooks/instagram"
    assert await page.locator("#verify-token").inner_text() == "ui-verify-token"
    await page.get_by_label("Instagram handle").fill("@second_shop")
    await page.get_by_label("Instagram account id", exact=False).fill("17841400000000078")
    await page.get_by_label("Access token", exact=False).fill("IGAA-token")
    await page.get_by_role("button", name="Connect").click()
    await page.wait_for_url("**/settings/channels")
    assert await page.get_by_role("cell", name="@second_shop").is_visible()
    assert "IGAA-token" not in await page.content()
    # the same account again: refused with a message, nothing added
    await page.get_by_label("Instagram handle").fill("again")
    await page.get_by_label("Instagram account id", exact=False).fill("17841400000000078")
    await page.get_by_label("Access token", exact=False).fill("x")
    await page.get_by_role("button", name="Connect").click()
    assert "already connected" in await page.get_by_role("alert").inner_text()
    assert await page.get_by_role("cell", name="@again").count() == 0


async def test_a_webhook_is_edited_and_bad_changes_are_refused(
    site: dict[str, Any], page: Any
) -> None:
    base, receiver = site["base"], site["receiver"]
    await sign_in(page, base)
    await page.get_by_role("link", name="New Webhook").click()
    await page.get_by_label("Name").fill("Sheet")
    await page.get_by_label("URL").fill(receiver.url)
    await page.get_by_role("button", name="Continue").click()
    await page.get_by_role("button", name="Save").click()
    await page.get_by_role("link", name="Edit").click()
    await page.get_by_label("Name").fill("Sheet (leads)")
    await page.get_by_label("Conversation Closed", exact=False).check()
    await page.get_by_role("button", name="Save changes").click()
    assert await page.get_by_role("status").inner_text() == "Changes saved."
    assert await page.get_by_role("heading", name="Sheet (leads)").is_visible()
    assert "Conversation Opened, Conversation Closed" in await page.locator("dl.card").inner_text()

    await page.get_by_role("link", name="Edit").click()
    await page.get_by_label("URL").fill("ftp://files.example.com/in")
    await page.get_by_label("@acme_store").uncheck()
    await page.get_by_role("button", name="Save changes").click()
    assert "Instagram channel" in await page.get_by_role("alert").inner_text()
    await page.get_by_label("@acme_store").check()
    await page.get_by_role("button", name="Save changes").click()
    assert "url:" in await page.get_by_role("alert").inner_text()
    await page.get_by_role("link", name="Cancel").click()
    assert "ftp:" not in await page.locator("dl.card").inner_text()  # nothing changed
    assert receiver.url in await page.locator("dl.card").inner_text()


async def test_demo_only_and_signed_in_only_endpoints(site: dict[str, Any], page: Any) -> None:
    base = site["base"]
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(base + "/bots/bot_x/captures/stream") as r:
            assert r.status == 401
        async with anonymous.get(base + "/inbox", allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/login?next=/inbox"
    await sign_in(page, base)
    cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
    await page.goto(base + "/settings/channels")
    csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert await page.get_by_role("button", name="Send test DM").count() == 0  # not a demo
    async with aiohttp.ClientSession(cookies=cookies) as http:
        form = {"csrf_token": csrf, "username": "x", "text": "hi", "channel_id": "c"}
        async with http.post(base + "/settings/channels/test-dm", data=form) as r:
            assert r.status == 404  # only `convohook demo` has the route
        async with http.get(base + "/bots/bot_nope/captures/stream") as r:
            assert r.status == 404
