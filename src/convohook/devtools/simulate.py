"""`convohook simulate dm`: one correctly signed Meta-format DM sent to a running server."""

from __future__ import annotations

import secrets
import time
from typing import Any

import aiohttp
import orjson

from convohook.devtools.graph_standin import StandinError, igsid_for_username, register_profile
from convohook.meta.notifications import (
    CHECK_ACCOUNTS_HEADER,
    encode,
    entry,
    notification,
    text_message,
)
from convohook.meta.signature import sign_body

TIMEOUT = aiohttp.ClientTimeout(total=10)


class SimulationError(Exception):
    pass


def new_mid() -> str:
    # Meta's mids are opaque base64-looking strings; only uniqueness matters to us.
    return "aWdfZAG1faXRlbToxOklHTWVzc2FnZAU" + secrets.token_urlsafe(24)


async def post_notification(
    server: str, app_secret: str, body: bytes, *, check_accounts: bool = False
) -> tuple[int, str]:
    """POST `body` as Meta would; `check_accounts`: also ask which of its accounts no channel
    has (convohook then answers JSON with `unknown_accounts`)."""
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": sign_body(app_secret, body),
    }
    if check_accounts:
        headers[CHECK_ACCOUNTS_HEADER] = "1"
    try:
        async with (
            aiohttp.ClientSession(timeout=TIMEOUT) as http,
            http.post(f"{server}/webhooks/instagram", data=body, headers=headers) as response,
        ):
            return response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SimulationError(
            f"could not reach convohook at {server}: {exc!r}; is `convohook serve` or "
            "`convohook demo` running there?"
        ) from exc


async def send_dm(
    *,
    server: str,
    username: str,
    name: str | None,
    text: str,
    account_id: str,
    app_secret: str,
    graph_url: str,
    register: bool,
    mid: str | None,
    timestamp_ms: int | None,
) -> dict[str, Any]:
    igsid = igsid_for_username(username)
    if register:
        try:
            await register_profile(graph_url, igsid, username, name)
        except StandinError as exc:
            raise SimulationError(str(exc)) from exc
    message_id = mid or new_mid()
    ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    body = encode(
        notification([entry(account_id, [text_message(igsid, account_id, message_id, ts, text)])])
    )
    status, answer = await post_notification(server, app_secret, body, check_accounts=True)
    if status != 200:
        raise SimulationError(f"convohook answered {status}: {answer}")
    if account_id in _unknown_accounts(answer):
        raise SimulationError(
            f"no channel has Instagram account {account_id}: connect it (Settings → Channels, "
            "or POST /api/v1/channels with this account_id), or send to a connected channel's "
            "account (--account-id); convohook acknowledged the DM and skipped it"
        )
    return {
        "status": status,
        "igsid": igsid,
        "username": username,
        "mid": message_id,
        "account_id": account_id,
        "timestamp_ms": ts,
    }


def _unknown_accounts(answer: str) -> list[str]:
    # A server that could not check (or predates the check) answers plain EVENT_RECEIVED.
    try:
        found = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return []
    unknown = found.get("unknown_accounts") if isinstance(found, dict) else None
    return [str(a) for a in unknown] if isinstance(unknown, list) else []
