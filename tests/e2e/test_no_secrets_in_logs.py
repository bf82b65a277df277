"""No secret in any log line (issue 7): a deployment is put through what makes it log (failing
deliveries to an endpoint with credentials, a Graph API that fails, bad signatures, unknown
accounts, secret rotation, capture bots), then its whole log is searched for every secret it
was given or gave out."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import aiohttp
import pytest

from e2e_support import APP_SECRET, VERIFY_TOKEN, deploy, free_port, open_stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "basic-pass-Zq81xW"
BEARER = "bearer-token-Hh27sP"
HEADER_KEY = "custom-key-Lm55tV"


async def test_no_secret_reaches_the_log(tmp_path: Path) -> None:
    with deploy(tmp_path / "secrets") as deployment:
        async with open_stack(deployment) as stack:
            api = stack.api
            closed = f"http://127.0.0.1:{free_port()}/hook"  # refused: attempts fail and log
            basic = await api.ok(
                "POST",
                "/api/v1/webhooks",
                {
                    "name": "basic",
                    "url": closed,
                    "channel_ids": [stack.channel["id"]],
                    "auth": {"type": "basic", "username": "crm", "password": PASSWORD},
                    "headers": {"X-Api-Key": HEADER_KEY},
                },
            )
            bearer = await api.ok(
                "POST",
                "/api/v1/webhooks",
                {
                    "name": "bearer",
                    "url": closed,
                    "channel_ids": [stack.channel["id"]],
                    "auth": {"type": "bearer", "token": BEARER},
                    "signature_scheme": "ed25519",
                },
            )
            rotated = await api.ok(
                "POST", f"/api/v1/webhooks/{basic['id']}/rotate-secret", {"grace_seconds": 3600}
            )
            bot = await api.ok("POST", "/api/v1/bots", {"name": "capture"})

            # A customer whose profile lookup fails (Graph API down), then one that works.
            await stack.standin("POST", "faults", {"mode": "down", "count": 3})
            failing = await stack.new_customer()
            await stack.dm(failing)
            await stack.standin("POST", "faults", {"mode": "ok"})
            customer = await stack.new_customer()
            await stack.dm(customer)
            await stack.wait_for_deliveries_of(customer)

            assert (
                await stack.post(b'{"object":"instagram"}', signature="sha256=" + "0" * 64) == 401
            )
            unknown = stack.text_notification(customer, text="to nobody")
            unknown["entry"][0]["id"] = "17841400000000999"  # no channel has this account
            unknown["entry"][0]["messaging"][0]["recipient"]["id"] = "17841400000000999"
            assert await stack.post(unknown) == 200
            async with aiohttp.ClientSession() as http:
                async with http.post(bot["webhook_url"], json={"hello": "bot"}) as response:
                    assert response.status < 300
                async with http.get(
                    f"{deployment.base_url}/api/v1/webhooks",
                    headers={"Authorization": "Bearer wrong-key-Pp09"},
                ) as response:
                    assert response.status == 401
            await asyncio.sleep(2.5)  # the refused attempts and their retries are logged

        secrets = {
            "the Meta app secret": APP_SECRET,
            "the verify token": VERIFY_TOKEN,
            "the API key": deployment.api_key,
            # e2e_support makes the token from the handle's serial; the API never returns it
            "the channel's access token": "IGAA-e2e-token-"
            + stack.handle.removeprefix("e2e_shop_"),
            "a webhook secret": stack.webhook["secret"],
            "a webhook secret's key": stack.webhook["secret"].removeprefix("whsec_"),
            "a rotated webhook secret": rotated["secret"],
            "the old secret of a rotated webhook": basic["secret"],
            "a basic auth password": PASSWORD,
            "a basic auth header": base64.b64encode(f"crm:{PASSWORD}".encode()).decode(),
            "a bearer token": BEARER,
            "a custom header's value": HEADER_KEY,
            "a capture bot's token": bot["webhook_url"].rsplit("/", 1)[1],
            "a wrong API key someone tried": "wrong-key-Pp09",
        }
    raw = deployment.server.log()  # all of it: the server has stopped

    # Not on a terminal, the log is one JSON object per line (uvicorn's lines too), and lines
    # about something name it.
    lines = [json.loads(line) for line in raw.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines), raw
    [skipped] = [line for line in lines if "acknowledged and skipped" in line["message"]]
    assert skipped["level"] == "warning"
    assert skipped["account_id"] == "17841400000000999", skipped
    # Searched as written and as decoded (JSON escapes could hide a secret from a plain search).
    log = raw + "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)

    # It did log, and nothing crashed while doing so.
    assert "Traceback" not in log, log
    assert bearer["public_key"].startswith("whpk_")  # the ed25519 secret key is never shown
    leaked = {what: value for what, value in secrets.items() if value and value in log}
    assert not leaked, f"secrets in the log: {sorted(leaked)}"
