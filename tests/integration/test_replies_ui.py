"""Replying from the Inbox, in process over real sockets: the window as the page says it, the
composer (and its human-agent box only from 24 hours on), a reply's status as it settles, a
refusal said on the page with the text kept, and Retry."""

from __future__ import annotations

import html
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from convohook.domain.replies import HUMAN_AGENT_WINDOW_MS, STANDARD_WINDOW_MS

from harness import Running, eventually, running_convohook
from ui_site import CSRF, SECRET, Browser, Org, make_org, sign_in

TIMEOUT = aiohttp.ClientTimeout(total=15)


@dataclass
class Inbox:
    run: Running
    org: Org
    browser: Browser
    offset: list[int]

    @property
    def path(self) -> str:
        return f"/inbox/{self.org.ids['conversation']}"

    async def page(self) -> str:
        answer = await self.browser.call("GET", self.path)
        assert answer.status == 200
        return html.unescape(answer.body)

    async def send(self, text: str, *, human_agent: bool = False) -> tuple[int, str, str]:
        page = await self.browser.call("GET", self.path)
        match = CSRF.search(page.body)
        assert match is not None
        form = [("csrf_token", match[1]), ("text", text)]
        if human_agent:
            form.append(("human_agent", "1"))
        answer = await self.browser.call("POST", self.path + "/messages", form)
        return answer.status, answer.location, html.unescape(answer.body)


@pytest.fixture
async def inbox(database_url_for: str) -> AsyncIterator[Inbox]:
    offset = [0]
    async with (
        running_convohook(
            database_url_for,
            SECRET,
            demo=True,
            clock=lambda: int(time.time() * 1000) + offset[0],
            retry_schedule=(0.2,),
        ) as run,
        aiohttp.ClientSession(timeout=TIMEOUT, cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        org = await make_org(run, "alpha", "17841400000000601", "6010000000000001")
        yield Inbox(run, org, await sign_in(http, run.base, org.email), offset)


async def test_a_reply_from_the_inbox_is_sent_and_shown(inbox: Inbox) -> None:
    page = await inbox.page()
    assert "Reply window open: 23 h" in page
    assert 'id="composer"' in page
    assert 'id="human-agent"' not in page
    # The reply left unknown by a crash offers to be sent again, saying why.
    assert "Unknown: may have reached Instagram" in page
    assert "Send again" in page

    status, location, _ = await inbox.send("Thanks, on its way!")
    assert status == 303
    assert location.endswith("?notice=queued#composer")

    async def sent() -> bool:
        page = await inbox.page()
        return "Thanks, on its way!" in page and 'status-sent" id="reply-' in page

    await eventually(sent)
    assert inbox.run.graph.send.texts()["Thanks, on its way!"] == 1


async def test_the_window_decides_what_the_composer_offers(inbox: Inbox) -> None:
    inbox.offset[0] = STANDARD_WINDOW_MS + 60_000
    page = await inbox.page()
    assert "Human agent only until" in page
    assert 'id="human-agent"' in page
    status, _, body = await inbox.send("Sorry for the wait")
    assert status == 422
    assert "as human agent" in body
    assert "Sorry for the wait</textarea>" in body  # what was typed is kept
    status, _, _ = await inbox.send("Sorry for the wait", human_agent=True)
    assert status == 303

    inbox.offset[0] = HUMAN_AGENT_WINDOW_MS
    page = await inbox.page()
    assert "Reply window closed: more than 7 days" in page
    assert 'id="composer"' not in page


async def test_retry_sends_an_unknown_reply_again(inbox: Inbox) -> None:
    page = await inbox.browser.call("GET", inbox.path)
    match = CSRF.search(page.body)
    assert match is not None
    reply = inbox.org.ids["message"]
    answer = await inbox.browser.call(
        "POST", f"{inbox.path}/messages/{reply}/retry", [("csrf_token", match[1])]
    )
    assert answer.status == 303

    async def sent() -> bool:
        return f'status-sent" id="reply-{reply}"' in await inbox.page()

    await eventually(sent)
    answer = await inbox.browser.call(
        "POST", f"{inbox.path}/messages/{reply}/retry", [("csrf_token", match[1])]
    )
    assert answer.status == 409
    assert "only a failed or unknown reply" in html.unescape(answer.body)
