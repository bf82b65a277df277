"""A real browser for UI tests: Playwright driving Debian's Chromium (no browser download).

One Chromium per test session (the `chromium` fixture in conftest.py); each test opens its own
context (cookies, viewport, clipboard permission) in it. Widths: DESKTOP and PHONE."""

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
DESKTOP = 1280
PHONE = 390  # an iPhone's CSS width: below the 640 px where tables turn into cards


def need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        reason = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@contextlib.asynccontextmanager
async def launched() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    need_chromium()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def browser_context(chromium: Any, width: int = DESKTOP) -> AsyncIterator[Any]:
    """A fresh context (no cookies) of `width` CSS pixels that may use the clipboard."""
    context = await chromium.new_context(
        viewport={"width": width, "height": 900 if width > PHONE else 844},
        permissions=["clipboard-read", "clipboard-write"],
    )
    try:
        yield context
    finally:
        await context.close()


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


# What a person would see wrong on the page as laid out: wider than the window (a sideways
# scroll), a table cell whose column has no name in sight. Tables become cards on phones,
# their header row hidden, and each cell shows its data-label in its ::before.
_LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    problems.push(`the page is ${root.scrollWidth}px wide in a ${root.clientWidth}px window`);
  }
  for (const td of document.querySelectorAll("td")) {
    if (!td.checkVisibility()) continue;
    const row = td.parentElement;
    const what = `"${td.textContent.trim().slice(0, 40)}"`;
    const rowHeader = row.querySelector(":scope > th[scope=row]");
    if (rowHeader) {  // a key/value row (request headers) names itself
      if (!rowHeader.checkVisibility()) problems.push(`${what}: its row's name is hidden`);
      continue;
    }
    const header = td.closest("table").tHead?.rows[0]?.cells[td.cellIndex];
    const label = td.dataset.label;
    if (!header || !label || header.textContent.trim() !== label) {
      problems.push(`${what}: labelled ${label}, column ${header?.textContent.trim()}`);
    } else if (!header.checkVisibility()) {
      const before = getComputedStyle(td, "::before");
      if (before.content !== JSON.stringify(label) || before.display === "none") {
        problems.push(`${what}: column ${label} not named (header row hidden, no label shown)`);
      }
    }
  }
  return problems;
}"""


async def looks_right(page: Any) -> None:
    """The page as laid out fits the window and names every table cell's column."""
    assert await layout_problems(page) == [], page.url


async def layout_problems(page: Any) -> list[str]:
    problems: list[str] = await page.evaluate(_LAYOUT_PROBLEMS)
    return problems


class FailedRequests:
    """Every response of 400 or more in a context (a missing favicon, a broken script)."""

    def __init__(self, context: Any) -> None:
        self.seen: list[str] = []
        context.on("response", self._response)

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.seen.append(f"{response.status} {response.request.method} {response.url}")
