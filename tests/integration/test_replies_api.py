"""Replies through the API, on real sockets, against the Graph API stand-in (which answers the
Send API as Meta does and posts the signed echo back): the round trip, the window and size
refused before any call, retries on 429 and 5xx, Meta's refusal, a timeout left unknown, a
person's retry, and the messages listing both ways."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from convohook.devtools.graph_standin import ProfileRegistry
from convohook.domain.replies import HUMAN_AGENT_WINDOW_MS, STANDARD_WINDOW_MS
from convohook.meta import notifications as n
from convohook.storage.database import open_database
from convohook.usecases.orgs import create_org

from harness import Api, Meta, Running, eventually, running_convohook

SECRET = "replies-app-secret"
ACCOUNT = "17841400000000077"
CUSTOMER = "5550001"


@dataclass
class Shop:
    run: Running
    api: Api
    other: Api
    meta: Meta
    graph: ProfileRegistry
    offset: list[int]  # milliseconds added to convohook's clock

    def now(self) -> int:
        return int(time.time() * 1000) + self.offset[0]

    async def dm(self, mid: str, text: str = "hi", ts: int | None = None) -> str:
        ts = self.now() if ts is None else ts
        body = n.notification(
            [n.entry(ACCOUNT, [n.text_message(CUSTOMER, ACCOUNT, mid, ts, text)])]
        )
        assert await self.meta.post(body) == 200

        async def opened() -> Any:
            page = await self.api.ok("GET", "/api/v1/conversations?status=open")
            return page["items"][0]["id"] if page["items"] else None

        return str(await eventually(opened))

    async def messages(self, conversation: str) -> list[dict[str, Any]]:
        page = await self.api.ok("GET", f"/api/v1/conversations/{conversation}/messages")
        return list(page["items"])

    async def reply(self, conversation: str, text: str, **more: Any) -> tuple[int, Any]:
        answer: tuple[int, Any] = await self.api.call(
            "POST", f"/api/v1/conversations/{conversation}/messages", {"text": text, **more}
        )
        return answer

    async def settled(self, conversation: str, reply_id: str, *statuses: str) -> dict[str, Any]:
        async def check() -> Any:
            for item in await self.messages(conversation):
                if item["id"] == reply_id and item["status"] in statuses:
                    return item
            return None

        return dict(await eventually(check))


@pytest.fixture
async def shop(database_url_for: str) -> AsyncIterator[Shop]:
    offset = [0]
    async with running_convohook(
        database_url_for,
        SECRET,
        clock=lambda: int(time.time() * 1000) + offset[0],
        retry_schedule=(0.2, 0.2),
        graph_timeout=1.0,
    ) as run:
        services = run.services
        mine = await services.db.run(create_org, "Acme", services.clock())
        theirs = await services.db.run(create_org, "Other", services.clock())
        api = Api(run.base, mine.api_key)
        await api.ok(
            "POST",
            "/api/v1/channels",
            {"type": "INSTAGRAM", "handle": "acme", "account_id": ACCOUNT, "access_token": "tok"},
        )
        yield Shop(
            run, api, Api(run.base, theirs.api_key), Meta(run.base, SECRET), run.graph, offset
        )


async def test_a_reply_goes_out_once_and_its_echo_is_matched(shop: Shop) -> None:
    conversation = await shop.dm("m1", "Is the blue one available?")
    status, accepted = await shop.reply(conversation, "Yes, it is!")
    assert status == 202
    assert accepted["status"] == "queued"
    sent = await shop.settled(conversation, accepted["id"], "sent")
    [taken] = shop.graph.send.sent
    assert (taken.account_id, taken.recipient, taken.text, taken.tag) == (
        ACCOUNT,
        CUSTOMER,
        "Yes, it is!",
        None,
    )
    assert sent["mid"] == taken.mid
    assert sent["error"] is None
    assert sent["sent_by"] == "api"
    # The stand-in posts the echo, as Meta does; it is matched, not stored again.
    await eventually(lambda: _echoed(shop))
    items = await shop.messages(conversation)
    assert [(i["direction"], i["text"], i["status"]) for i in items] == [
        ("in", "Is the blue one available?", None),
        ("out", "Yes, it is!", "sent"),
    ]
    page = await shop.api.ok("GET", "/api/v1/conversations")
    assert len(page["items"]) == 1  # the echo opened nothing
    conv = await shop.api.ok("GET", f"/api/v1/conversations/{conversation}")
    assert conv["last_message_at"] >= sent["timestamp"]


async def _echoed(shop: Shop) -> bool:
    return not shop.graph.send.echo_tasks and bool(shop.graph.send.sent)


async def test_the_window_and_the_size_are_refused_before_any_call(shop: Shop) -> None:
    conversation = await shop.dm("m1")
    status, body = await shop.reply(conversation, "x" * 1001)
    assert status == 422
    assert "at most 1000 characters" in body["message"]
    status, body = await shop.reply(conversation, "é" * 501)  # 501 characters, 1002 bytes
    assert status == 422
    assert "1002 bytes of UTF-8" in body["message"]
    for blank in ("", "  \n"):
        status, body = await shop.reply(conversation, blank)
        assert status == 422
        assert body["details"][0]["field"] == "text"
    window = await shop.api.ok("GET", f"/api/v1/conversations/{conversation}/reply-window")
    assert window["state"] == "open"
    assert window["until"] is not None

    shop.offset[0] = STANDARD_WINDOW_MS
    window = await shop.api.ok("GET", f"/api/v1/conversations/{conversation}/reply-window")
    assert window["state"] == "human_agent"
    status, body = await shop.reply(conversation, "Sorry for the wait")
    assert status == 422
    assert body["details"][0]["field"] == "human_agent"
    assert "human agent" in body["message"]

    shop.offset[0] = HUMAN_AGENT_WINDOW_MS
    status, body = await shop.reply(conversation, "Sorry for the wait", human_agent=True)
    assert status == 422
    assert "7 days" in body["message"]
    window = await shop.api.ok("GET", f"/api/v1/conversations/{conversation}/reply-window")
    assert (window["state"], window["until"]) == ("closed", None)
    assert shop.graph.send.sent == []  # nothing reached the Graph API


async def test_a_human_agent_reply_carries_the_tag(shop: Shop) -> None:
    conversation = await shop.dm("m1")
    shop.offset[0] = STANDARD_WINDOW_MS + 1
    status, accepted = await shop.reply(conversation, "A person here", human_agent=True)
    assert status == 202
    item = await shop.settled(conversation, accepted["id"], "sent")
    assert item["human_agent"] is True
    assert [r.tag for r in shop.graph.send.sent] == ["HUMAN_AGENT"]


async def test_429_and_500_are_retried_then_sent(shop: Shop) -> None:
    conversation = await shop.dm("m1")
    shop.graph.send.set_fault("throttle", count=1)
    _status, accepted = await shop.reply(conversation, "after a 429")
    await shop.settled(conversation, accepted["id"], "sent")
    shop.graph.send.set_fault("down", count=2)
    _status, accepted = await shop.reply(conversation, "after two 500s")
    item = await shop.settled(conversation, accepted["id"], "sent")
    assert item["error"] is None
    assert shop.graph.send.texts() == {"after a 429": 1, "after two 500s": 1}


async def test_a_reply_fails_when_the_schedule_runs_out(shop: Shop) -> None:
    conversation = await shop.dm("m1")
    shop.graph.send.set_fault("down")
    _status, accepted = await shop.reply(conversation, "never")
    item = await shop.settled(conversation, accepted["id"], "failed")
    assert item["error"].startswith("gave up after 3 attempts: An unexpected error has occurred")
    assert shop.graph.send.sent == []


async def test_metas_refusal_fails_with_its_message_and_a_person_retries(shop: Shop) -> None:
    conversation = await shop.dm("m1")
    shop.graph.send.set_fault("refuse", count=1)
    status, accepted = await shop.reply(conversation, "refused once")
    item = await shop.settled(conversation, accepted["id"], "failed")
    assert "This message is sent outside of allowed window." in item["error"]
    assert "code 10" in item["error"]
    assert "subcode 2534022" in item["error"]
    retry = f"/api/v1/conversations/{conversation}/messages/{accepted['id']}/retry"
    status, body = await shop.api.call("POST", retry)
    assert (status, body["status"]) == (202, "queued")
    await shop.settled(conversation, accepted["id"], "sent")
    status, body = await shop.api.call("POST", retry)
    assert status == 409
    assert "sent" in body["message"]
    assert shop.graph.send.texts() == {"refused once": 1}


async def test_a_timeout_is_unknown_and_not_sent_again(shop: Shop) -> None:
    conversation = await shop.dm("m1")
    shop.graph.send.echo_to = None  # Meta's echo lost too: only a person can tell
    shop.graph.send.set_fault("hang", delay=3.0, count=1)
    _status, accepted = await shop.reply(conversation, "may have arrived")
    item = await shop.settled(conversation, accepted["id"], "unknown")
    assert "may have reached Instagram" in item["error"]
    # Five retry periods later it is still unknown, and the Graph API got it once: a negative
    # can only be waited for.
    await asyncio.sleep(1.0)
    item = await shop.settled(conversation, accepted["id"], "unknown")
    assert shop.graph.send.texts() == {"may have arrived": 1}


async def test_another_orgs_conversation_is_not_found(shop: Shop) -> None:
    conversation = await shop.dm("m1")
    status, _ = await shop.other.call(
        "POST", f"/api/v1/conversations/{conversation}/messages", {"text": "hi"}
    )
    assert status == 404
    status, _ = await shop.other.call("GET", f"/api/v1/conversations/{conversation}/messages")
    assert status == 404
    status, accepted = await shop.reply(conversation, "mine")
    status, _ = await shop.other.call(
        "POST", f"/api/v1/conversations/{conversation}/messages/{accepted['id']}/retry"
    )
    assert status == 404
    status, _ = await shop.api.call(
        "POST", f"/api/v1/conversations/{conversation}/messages/out_nope/retry"
    )
    assert status == 404


async def test_a_reply_in_flight_at_shutdown_is_recorded(database_url_for: str) -> None:
    async with running_convohook(database_url_for, SECRET, graph_timeout=3.0) as run:
        org = await run.services.db.run(create_org, "Acme", run.services.clock())
        api = Api(run.base, org.api_key)
        await api.ok(
            "POST",
            "/api/v1/channels",
            {"type": "INSTAGRAM", "handle": "acme", "account_id": ACCOUNT, "access_token": "tok"},
        )
        shop = Shop(run, api, api, Meta(run.base, SECRET), run.graph, [0])
        conversation = await shop.dm("m1")
        run.graph.send.echo_to = None
        run.graph.send.set_fault("hang", delay=1.0)
        _status, accepted = await shop.reply(conversation, "on its way while we stop")
        await eventually(lambda: _taken(run.graph))
    # Stopped while Meta was still answering: the answer was waited for and recorded.
    db = open_database(database_url_for)
    try:
        reply = await db.read(lambda tx: tx.get_outbound(org.org.id, accepted["id"]))
    finally:
        db.close()
    assert reply is not None
    assert (reply.status, reply.mid, reply.error) == ("sent", run.graph.send.sent[0].mid, None)


async def _taken(graph: ProfileRegistry) -> bool:
    return bool(graph.send.sent)
