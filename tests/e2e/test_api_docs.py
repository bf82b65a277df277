"""/api/docs in a real browser that may reach nothing but this server: Swagger UI (vendored)
loads, reads /api/openapi.json and shows every operation, with the bearer key's Authorize."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from browser import browser_context, need_chromium
from harness import running_convohook

# In the session's event loop, where the one Chromium of the session (conftest.py) lives.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]


async def test_the_api_docs_render_with_no_network(tmp_path: Path, chromium: Any) -> None:
    need_chromium()
    async with (
        running_convohook(f"sqlite:///{tmp_path / 'docs.db'}", "docs-app-secret") as run,
        browser_context(chromium) as context,
    ):
        async with aiohttp.ClientSession() as http, http.get(run.base + "/api/openapi.json") as r:
            document = await r.json()
        operations = sum(len(item) for item in document["paths"].values())
        elsewhere: list[str] = []

        async def this_server_only(route: Any) -> None:
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
                await route.continue_()
            else:  # no CDN, no validator badge, no fonts: anything else is a bug
                elsewhere.append(route.request.url)
                await route.abort()

        await context.route("**/*", this_server_only)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(run.base + "/api/docs")
        await page.locator(".opblock").first.wait_for(timeout=15_000)
        assert await page.locator(".opblock").count() == operations >= 20
        paths = await page.locator(".opblock-summary-path").all_inner_texts()
        assert "/api/v1/webhooks/{webhook_id}/rotate-secret" in [p.strip() for p in paths]
        assert await page.get_by_role("button", name="Authorize").count() >= 1
        assert elsewhere == []
        assert errors == []
