"""The UI's Connect a channel form: its fields are checked by the use case (connect_channel), the
same rules as the API's, and a refusal is shown on the page with what to fix. The same for a
channel's inactivity setting (update_channel, as PATCH /api/v1/channels/{id})."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from convohook.usecases.channels import list_channels
from convohook.usecases.orgs import create_org
from convohook.usecases.users import create_user
from convohook.web.ui.auth import LOGIN_CSRF_COOKIE
from convohook.web.ui.common import SESSION_COOKIE

from harness import Running, running_convohook

EMAIL, PASSWORD = "owner@acme.test", "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Owner:
    run: Running
    org_id: str
    cookie: dict[str, str]
    csrf: str

    async def connect(self, **fields: str) -> tuple[int, str]:
        return await self.post("/settings/channels", **fields)

    async def post(self, path: str, **fields: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.run.base + path,
                data={"csrf_token": self.csrf, **fields},
                headers=self.cookie,
                allow_redirects=False,
            ) as response,
        ):
            return response.status, html.unescape(await response.text())


@pytest.fixture
async def owner(database_url_for: str) -> AsyncIterator[Owner]:
    async with (
        running_convohook(database_url_for, "form-app-secret") as run,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        svc = run.services
        org = await svc.db.run(create_org, "Acme", svc.clock())
        await svc.db.run(create_user, org.org.id, EMAIL, PASSWORD, svc.clock())
        async with http.get(run.base + "/login") as page:
            login_csrf = page.cookies[LOGIN_CSRF_COOKIE].value
        async with http.post(
            run.base + "/login",
            data={"csrf_token": login_csrf, "email": EMAIL, "password": PASSWORD},
            headers={"Cookie": f"{LOGIN_CSRF_COOKIE}={login_csrf}"},
            allow_redirects=False,
        ) as signed_in:
            assert signed_in.status == 303
            cookie = {"Cookie": f"{SESSION_COOKIE}={signed_in.cookies[SESSION_COOKIE].value}"}
        async with http.get(run.base + "/settings/channels", headers=cookie) as page:
            match = CSRF.search(await page.text())
            assert match is not None
        yield Owner(run, org.org.id, cookie, match[1])


@pytest.mark.parametrize(
    ("fields", "told"),
    [
        ({"account_id": "1784 1400"}, "account_id: the Instagram professional account id"),
        ({"handle": "   "}, "handle: required"),
        ({"access_token": "t" * 2049}, "access_token: at most 2048 characters"),
        ({"handle": "acme\x00"}, "handle: must not contain NUL"),
    ],
)
async def test_a_field_breaking_a_rule_is_shown_and_nothing_is_connected(
    owner: Owner, fields: dict[str, str], told: str
) -> None:
    good = {"handle": "acme", "account_id": "17841400000000066", "access_token": "IGAA"}
    status, page = await owner.connect(**{**good, **fields})
    assert status == 422
    assert told in page
    svc = owner.run.services
    assert await svc.db.read(list_channels, owner.org_id, None, 10) == []


async def test_a_good_form_connects_the_channel_its_fields_trimmed(owner: Owner) -> None:
    status, _ = await owner.connect(
        handle=" @acme_store ", account_id=" 17841400000000066 ", access_token="IGAA "
    )
    assert status == 303
    svc = owner.run.services
    [channel] = await svc.db.read(list_channels, owner.org_id, None, 10)
    assert (channel.handle, channel.account_id, channel.access_token) == (
        "acme_store",
        "17841400000000066",
        "IGAA",
    )


async def _connected(owner: Owner) -> str:
    status, _ = await owner.connect(
        handle="acme", account_id="17841400000000066", access_token="IGAA"
    )
    assert status == 303
    [channel] = await owner.run.services.db.read(list_channels, owner.org_id, None, 10)
    return str(channel.id)


async def _page(owner: Owner) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(owner.run.base + "/settings/channels", headers=owner.cookie) as page,
    ):
        return html.unescape(await page.text())


async def test_the_inactivity_setting_is_saved_shown_and_turned_off(owner: Owner) -> None:
    channel_id = await _connected(owner)
    assert '<td data-label="Inactivity">Off</td>' in await _page(owner)  # off by default
    path = f"/settings/channels/{channel_id}/inactivity"
    status, _ = await owner.post(path, after="2", unit="hours")
    assert status == 303
    svc = owner.run.services
    [channel] = await svc.db.read(list_channels, owner.org_id, None, 10)
    assert channel.auto_done_after == 7200
    page = await _page(owner)
    assert "Done after 2 hours" in page
    assert re.search(r'id="after-[^"]+"[^>]*value="2"', page)
    status, _ = await owner.post(path, after="90", unit="minutes")
    assert status == 303
    assert "Done after 90 minutes" in await _page(owner)
    status, _ = await owner.post(path, after="", unit="hours")
    assert status == 303
    [channel] = await svc.db.read(list_channels, owner.org_id, None, 10)
    assert channel.auto_done_after is None


@pytest.mark.parametrize(
    ("after", "unit"), [("0", "minutes"), ("2161", "hours"), ("1.5", "hours"), ("2", "days")]
)
async def test_an_inactivity_setting_out_of_bounds_is_refused_and_shown(
    owner: Owner, after: str, unit: str
) -> None:
    channel_id = await _connected(owner)
    status, page = await owner.post(
        f"/settings/channels/{channel_id}/inactivity", after=after, unit=unit
    )
    assert status == 422
    assert "Not saved" in page or "whole number" in page
    [channel] = await owner.run.services.db.read(list_channels, owner.org_id, None, 10)
    assert channel.auto_done_after is None


async def test_another_orgs_channel_is_not_found(owner: Owner) -> None:
    status, _ = await owner.post("/settings/channels/ch_not_mine/inactivity", after="1")
    assert status == 404
