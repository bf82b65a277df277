"""`convohook simulate dm` learns from the receiver's answer which accounts of its notification
no channel has; Meta's own requests (which never carry the header) get the answer they always
had, byte for byte."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from convohook.meta import notifications as n
from convohook.meta.signature import sign_body

from harness import TIMEOUT, Running, connect_channel, running_convohook

SECRET = "accounts-app-secret"
CONNECTED = "17841466666666661"
UNKNOWN = ("17841466666666662", "17841466666666663")
CHECK = {"X-Convohook-Check-Accounts": "1"}  # the header was spelled so by the simulator


async def _post(
    run: Running, body: bytes, headers: Mapping[str, str] = {}, signature: str | None = None
) -> tuple[int, Mapping[str, str], bytes]:
    sent = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": signature or sign_body(SECRET, body),
        **headers,
    }
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as http,
        http.post(f"{run.base}/webhooks/instagram", data=body, headers=sent) as answer,
    ):
        return answer.status, answer.headers, await answer.read()


def _dms(*accounts: str, tag: str) -> bytes:
    """One notification with a DM to each account."""
    return n.encode(
        n.notification(
            [
                n.entry(account, [n.text_message(f"{tag}{i}", account, f"m.{tag}{i}", 1, "hi")])
                for i, account in enumerate(accounts)
            ]
        )
    )


async def test_with_the_header_the_answer_names_the_accounts_no_channel_has(
    database_url_for: str,
) -> None:
    async with running_convohook(database_url_for, SECRET) as run:
        await connect_channel(run, CONNECTED, "acct_shop")

        status, headers, body = await _post(run, _dms(CONNECTED, *UNKNOWN, tag="a"), CHECK)

        assert status == 200
        assert headers["content-type"] == "application/json"
        assert body == (
            b'{"status":"EVENT_RECEIVED","unknown_accounts":["%s","%s"]}'
            % (UNKNOWN[0].encode(), UNKNOWN[1].encode())
        )
        # Stored and processed as any notification: the connected account's DM opens.
        [opened] = await run.receiver.wait_for(1)
        assert opened.json()["conversationOpened"] is True

        _, _, all_known = await _post(run, _dms(CONNECTED, tag="b"), CHECK)
        assert all_known == b'{"status":"EVENT_RECEIVED","unknown_accounts":[]}'


async def test_without_the_header_the_answer_is_metas_as_before(database_url_for: str) -> None:
    async with running_convohook(database_url_for, SECRET) as run:
        await connect_channel(run, CONNECTED, "acct_shop")

        status, headers, body = await _post(run, _dms(CONNECTED, *UNKNOWN, tag="c"))

        assert (status, body) == (200, b"EVENT_RECEIVED")
        assert headers["content-type"] == "text/plain; charset=utf-8"
        assert headers["content-length"] == "14"


async def test_the_header_reveals_nothing_before_the_signature_is_checked(
    database_url_for: str,
) -> None:
    async with running_convohook(database_url_for, SECRET) as run:
        await connect_channel(run, CONNECTED, "acct_shop")

        status, _, body = await _post(
            run, _dms(*UNKNOWN, tag="d"), CHECK, signature="sha256=" + "0" * 64
        )

        assert status == 401
        assert b"unknown_accounts" not in body
        assert UNKNOWN[0].encode() not in body
