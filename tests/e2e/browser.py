"""A real browser for UI tests: Playwright driving Debian's Chromium (no browser download)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "img"
PASSWORD = "correct horse battery"
EMAIL = "owner@acme.test"


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@contextlib.asynccontextmanager
async def browser_context() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    need_chromium()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_context(viewport={"width": 1200, "height": 900})
        finally:
            await browser.close()


async def shot(page: Any, name: str) -> None:
    """CONVOHOOK_SCREENSHOTS=1 refreshes the pictures in docs/img."""
    if os.environ.get("CONVOHOOK_SCREENSHOTS"):
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def sign_in(page: Any, base: str, *, check_wrong_password: bool = False) -> None:
    await page.goto(base + "/settings/webhooks")
    assert "/login" in page.url  # signed out: sent to sign in
    if check_wrong_password:
        await shot(page, "login")
        await page.get_by_label("Email").fill(EMAIL)
        await page.get_by_label("Password").fill("wrong password!")
        await page.get_by_role("button", name="Sign in").click()
        assert await page.get_by_role("alert").inner_text() == "Wrong email or password."
    await page.get_by_label("Email").fill(EMAIL)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/settings/webhooks")
