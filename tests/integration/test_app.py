"""The web app in process, on real sockets: API contract, isolation, inbound, delivery, bots."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest

from convohook.devtools.graph_standin import ProfileRegistry
from convohook.domain.ids import new_id
from convohook.domain.model import OutboundMessage
from convohook.meta import notifications as n
from convohook.runtime.services import Services
from convohook.storage.base import Transaction
from convohook.usecases.orgs import create_org

from harness import (
    Api,
    Meta,
    Receiver,
    eventually,
    free_socket,
    run_receiver,
    running_convohook,
)

ACCOUNT = "17841400000000001"
SECRET = "test-app-secret"


@dataclass
class Stack:
    base: Api
    other: Api
    meta: Meta
    graph: ProfileRegistry
    receiver: Receiver
    services: Services
    channel: dict[str, Any]

    async def subscribe(
        self, url: str | None = None, events: list[str] | None = None, **options: Any
    ) -> dict[str, Any]:
        webhook: dict[str, Any] = await self.base.ok(
            "POST",
            "/api/v1/webhooks",
            {
                "name": "crm",
                "url": url or self.receiver.url,
                "channel_type": "INSTAGRAM",
                "channel_ids": [self.channel["id"]],
                "events": events or ["conversation.opened"],
                **options,
            },
        )
        return webhook

    async def dm(self, igsid: str, mid: str, ts: int = 1_700_000_000_000, text: str = "hi") -> None:
        body = n.notification([n.entry(ACCOUNT, [n.text_message(igsid, ACCOUNT, mid, ts, text)])])
        assert await self.meta.post(body) == 200


@pytest.fixture
async def stack(database_url_for: str) -> AsyncIterator[Stack]:
    async with running_convohook(
        database_url_for,
        SECRET,
        meta_verify_token="verify-me",
        retry_schedule=(0.2, 0.2),
        profile_deadline=1.5,
    ) as run:
        services: Services = run.services
        mine = await services.db.run(create_org, "Acme", services.clock())
        theirs = await services.db.run(create_org, "Other", services.clock())
        api = Api(run.base, mine.api_key)
        channel = await api.ok(
            "POST",
            "/api/v1/channels",
            {
                "type": "INSTAGRAM",
                "handle": "acme_store",
                "account_id": ACCOUNT,
                "access_token": "tok",
            },
        )
        yield Stack(
            api,
            Api(run.base, theirs.api_key),
            Meta(run.base, SECRET),
            run.graph,
            run.receiver,
            services,
            channel,
        )


# --- authentication and isolation -----------------------------------------------------------


async def test_api_needs_a_valid_bearer_key(stack: Stack) -> None:
    anonymous = Api(stack.base.base_url, "")
    anonymous.headers = {}
    status, body = await anonymous.call("GET", "/api/v1/channels")
    assert status == 401
    assert "Authorization: Bearer" in body["message"]
    status, body = await Api(stack.base.base_url, "chk_wrong").call("GET", "/api/v1/channels")
    assert (status, body["error"]) == (401, "unauthorized")


async def test_an_org_never_sees_another_orgs_objects(stack: Stack) -> None:
    webhook = await stack.subscribe()
    bot = await stack.base.ok("POST", "/api/v1/bots", {"name": "b", "trigger": "webhook"})
    stack.graph.put("900", "jane", "Jane")
    await stack.dm("900", "m-iso")
    [conversation] = await eventually(lambda: _items(stack.base.ok("GET", "/api/v1/conversations")))
    for path in (
        f"/api/v1/webhooks/{webhook['id']}",
        f"/api/v1/webhooks/{webhook['id']}/deliveries",
        f"/api/v1/bots/{bot['id']}/captures",
    ):
        status, body = await stack.other.call("GET", path)
        assert status == 404, path
        assert body["error"] == "not_found"
    assert (await stack.other.call("POST", f"/api/v1/conversations/{conversation['id']}/done"))[
        0
    ] == 404
    assert (
        await stack.other.call("PATCH", f"/api/v1/webhooks/{webhook['id']}", {"enabled": False})
    )[0] == 404
    assert (await stack.other.call("DELETE", f"/api/v1/webhooks/{webhook['id']}"))[0] == 404
    assert (await stack.other.ok("GET", "/api/v1/channels"))["items"] == []
    assert (await stack.other.ok("GET", "/api/v1/conversations"))["items"] == []
    assert (await stack.other.ok("GET", "/api/v1/contacts"))["items"] == []
    status, body = await stack.other.call(
        "POST",
        "/api/v1/webhooks",
        {
            "name": "x",
            "url": "https://example.com/h",
            "channel_ids": [stack.channel["id"]],
            "events": ["conversation.opened"],
        },
    )
    assert status == 422
    assert stack.channel["id"] in body["message"]


# Bodies for the routes whose body has required fields: valid, so that only ownership decides.
REQUIRED_BODIES: dict[str, dict[str, object]] = {
    "/api/v1/webhooks/{webhook_id}/recover": {"since": "2020-01-01T00:00:00Z"},
    "/api/v1/conversations/{conversation_id}/assign": {"agent_id": None},
    "/api/v1/conversations/{conversation_id}/messages": {"text": "hi"},
}


async def _api_routes(stack: Stack) -> list[tuple[str, str]]:
    """Every (method, path) of `/api/v1`, from the published OpenAPI document: a route added
    later is checked without anyone remembering to add it here."""
    status, document = await Api(stack.base.base_url, "").call("GET", "/api/openapi.json")
    assert status == 200
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
    )


async def test_every_api_route_refuses_missing_and_wrong_credentials(stack: Stack) -> None:
    anonymous = Api(stack.base.base_url, "")
    anonymous.headers = {}
    wrong = Api(stack.base.base_url, "chk_not_a_key")
    routes = await _api_routes(stack)
    assert len(routes) >= 20
    for method, path in routes:
        concrete = re.sub(r"\{[^}]+\}", "x_1", path)
        for caller in (anonymous, wrong):
            status, body = await caller.call(method, concrete, {} if method != "GET" else None)
            assert status == 401, (method, path, status, body)
            assert body["message"], (method, path)


async def test_every_api_route_with_an_id_hides_another_orgs_objects(stack: Stack) -> None:
    webhook = await stack.subscribe(url="http://127.0.0.1:9/refused")
    bot = await stack.base.ok("POST", "/api/v1/bots", {"name": "b", "trigger": "webhook"})
    agent = await stack.base.ok("POST", "/api/v1/agents", {"name": "A", "email": "a@iso.test"})
    stack.graph.put("905", "iso", "Iso")
    await stack.dm("905", "m-iso-all")
    [conversation] = await eventually(lambda: _items(stack.base.ok("GET", "/api/v1/conversations")))
    deliveries = await eventually(
        lambda: _items(stack.base.ok("GET", f"/api/v1/webhooks/{webhook['id']}/deliveries"))
    )
    ids = {
        "webhook_id": webhook["id"],
        "bot_id": bot["id"],
        "conversation_id": conversation["id"],
        "delivery_id": deliveries[0]["id"],
        "channel_id": stack.channel["id"],
        "contact_id": conversation.get("contact", {}).get("id", "ct_x"),
        "agent_id": agent["id"],
    }
    ids["message_id"] = await _failed_reply(stack.services, conversation)
    checked = 0
    for method, path in await _api_routes(stack):
        params = re.findall(r"\{([^}]+)\}", path)
        if not params:
            continue
        missing = [p for p in params if p not in ids]
        assert not missing, f"{method} {path}: add an id of the owner's for {missing}"
        concrete = path.format(**ids)
        payload = REQUIRED_BODIES.get(path, {}) if method != "GET" else None
        status, body = await stack.other.call(method, concrete, payload)
        assert status == 404, (method, path, status, body)
        assert body["error"] == "not_found", (method, path, body)
        checked += 1
    assert checked >= 10
    # ... and the owner still has them all.
    assert (await stack.base.call("GET", f"/api/v1/webhooks/{webhook['id']}"))[0] == 200


async def _failed_reply(services: Services, conversation: dict[str, Any]) -> str:
    """A reply that failed (the test's DM is too old for a reply to be queued now)."""

    def insert(tx: Transaction) -> str:
        channel = tx.channel_by_account(ACCOUNT)
        assert channel is not None
        reply = OutboundMessage(
            id=new_id("out", 1),
            org_id=channel.org_id,
            channel_id=channel.id,
            contact_id=conversation["contact"]["id"],
            conversation_id=conversation["id"],
            recipient_igsid=conversation["contact"]["igsid"],
            text="failed",
            human_agent=False,
            status="failed",
            attempts=1,
            next_attempt_at_ms=None,
            error="refused",
            mid=None,
            sent_by="api",
            created_at_ms=1,
            sent_at_ms=None,
            updated_at_ms=1,
        )
        tx.insert_outbound(reply)
        return reply.id

    return await services.db.run(insert)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"events": ["conversation.exploded"]}, "events"),
        ({"events": []}, "events"),
        ({"channel_ids": []}, "channel_ids"),
        ({"channel_type": "WHATSAPP"}, "channel_type"),
        ({"name": ""}, "name"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_webhook_input_is_validated_with_clear_messages(
    stack: Stack, change: dict[str, Any], fragment: str
) -> None:
    body = {
        "name": "crm",
        "url": "https://example.com/h",
        "channel_type": "INSTAGRAM",
        "channel_ids": [stack.channel["id"]],
        "events": ["conversation.opened"],
        **change,
    }
    status, answer = await stack.base.call("POST", "/api/v1/webhooks", body)
    assert status == 422
    assert fragment in answer["message"]
    assert (await stack.base.ok("GET", "/api/v1/webhooks"))["items"] == []


async def test_channel_validation_and_conflict(stack: Stack) -> None:
    status, body = await stack.base.call(
        "POST",
        "/api/v1/channels",
        {"type": "INSTAGRAM", "handle": "x", "account_id": ACCOUNT, "access_token": "t"},
    )
    assert status == 409
    assert "already connected" in body["message"]
    status, body = await stack.base.call("POST", "/api/v1/channels", {"type": "INSTAGRAM"})
    assert status == 422
    assert "handle" in body["message"]
    assert "access_token" not in stack.channel


async def test_secret_is_shown_once_and_lists_paginate(stack: Stack) -> None:
    created = await stack.subscribe()
    assert created["secret"].startswith("whsec_")
    assert "secret" not in await stack.base.ok("GET", f"/api/v1/webhooks/{created['id']}")
    for i in range(3):
        await stack.base.ok(
            "POST",
            "/api/v1/channels",
            {"type": "INSTAGRAM", "handle": f"h{i}", "account_id": f"99{i}", "access_token": "t"},
        )
    first = await stack.base.ok("GET", "/api/v1/channels?limit=3")
    assert len(first["items"]) == 3
    assert first["next"]
    second = await stack.base.ok("GET", f"/api/v1/channels?limit=3&cursor={first['next']}")
    assert len(second["items"]) == 1
    assert second["next"] is None
    ids = [c["id"] for c in first["items"] + second["items"]]
    assert len(set(ids)) == 4


async def test_conversation_filters_are_validated(stack: Stack) -> None:
    status, body = await stack.base.call("GET", "/api/v1/conversations?status=maybe")
    assert status == 422
    assert "status" in body["message"]


# --- inbound --------------------------------------------------------------------------------


async def test_inbound_rejects_bad_signatures_and_bodies_and_stores_nothing(stack: Stack) -> None:
    await stack.subscribe()
    body = n.encode(n.notification([n.entry(ACCOUNT, [n.text_message("1", ACCOUNT, "x", 1, "t")])]))
    assert await stack.meta.post(body, signature="sha256=" + "0" * 64) == 401
    assert await stack.meta.post(body, signature="") == 401
    assert await stack.meta.post(b"{not json") == 400
    assert await stack.meta.post(b"[1, 2]") == 400
    assert await stack.meta.post(b"{" + b" " * 1_100_000 + b"}") == 413
    assert await stored_notifications(stack) == 0
    assert (await stack.base.ok("GET", "/api/v1/conversations"))["items"] == []


async def test_verification_handshake(stack: Stack) -> None:
    ok = (
        "/webhooks/instagram?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
    )
    status, _ = await stack.base.call("GET", ok.replace("verify-me", "wrong"))
    assert status == 403
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(stack.base.base_url + ok) as response:
        assert response.status == 200
        assert await response.text() == "1158201444"


# --- delivery, profiles, bots ---------------------------------------------------------------


async def test_opening_is_delivered_signed_and_logged(stack: Stack) -> None:
    webhook = await stack.subscribe()
    stack.graph.put("111", "jane.doe", "Jane Doe")
    await stack.dm("111", "m1")
    await stack.dm("111", "m2", ts=1_700_000_000_001)
    await stack.dm("111", "m1")  # Meta redelivers
    [received] = await stack.receiver.wait_for(1)
    [verified] = stack.receiver.verify_all(webhook["secret"])
    assert verified["from"] == "jane.doe"
    assert received.body.startswith(b'{"to":"acme_store","from":"jane.doe","handle":"jane.doe",')
    deliveries = await eventually(lambda: _delivered(stack, webhook["id"]))
    [delivery] = deliveries
    assert delivery["id"] == received.headers["webhook-id"]
    assert [a["status_code"] for a in delivery["attempts"]] == [200]
    contacts = await stack.base.ok("GET", "/api/v1/contacts?handle=jane.doe")
    assert contacts["items"][0]["customer_id"] == verified["dtCustomerId"]


async def _delivered(stack: Stack, webhook_id: str) -> list[dict[str, Any]] | None:
    items = (await stack.base.ok("GET", f"/api/v1/webhooks/{webhook_id}/deliveries"))["items"]
    return items if items and all(d["status"] == "succeeded" for d in items) else None


async def test_done_fires_closed_and_reopen_keeps_the_customer_id(stack: Stack) -> None:
    webhook = await stack.subscribe(events=["conversation.opened", "conversation.closed"])
    stack.graph.put("222", "sam", None)
    await stack.dm("222", "a1", ts=1_000)
    await stack.receiver.wait_for(1)
    [conversation] = (await stack.base.ok("GET", "/api/v1/conversations?status=open"))["items"]
    done = await stack.base.ok("POST", f"/api/v1/conversations/{conversation['id']}/done")
    assert done["status"] == "done"
    assert done["done_at"] is not None
    await stack.receiver.wait_for(2)
    await stack.dm("222", "a2", ts=2_000)  # written long before the done mark: late
    await stack.dm("222", "a3", ts=stack.services.clock() + 1_000)
    received = await stack.receiver.wait_for(3)
    opened, closed, reopened = (r.json() for r in received)
    assert closed["conversationClosed"] is True
    assert reopened["conversationOpened"] is True
    assert opened["dtCustomerId"] == reopened["dtCustomerId"] == closed["dtCustomerId"]
    assert opened["customerName"] == "sam"  # no display name: the username
    assert stack.graph.requests_for("222") == 1  # the profile was cached
    # Nothing more is coming: no fourth event, no event sent twice. Not "wait a while, then
    # count", which proves only that nothing came during the wait (and passes on a slow
    # machine whatever happens): once every notification is processed, every event there will
    # ever be is a delivery row, so exactly three rows, each sent once and done, is the proof.
    await eventually(lambda: _processed(stack))
    deliveries = await eventually(lambda: _delivered(stack, webhook["id"]))
    assert sorted(d["event_type"] for d in deliveries) == [
        "conversation.closed",
        "conversation.opened",
        "conversation.opened",
    ]
    assert [len(d["attempts"]) for d in deliveries] == [1, 1, 1]
    assert len(stack.receiver.received) == 3


async def test_a_fifo_conversations_next_event_goes_as_soon_as_the_one_before_succeeds(
    stack: Stack,
) -> None:
    """A FIFO webhook's closed event waits for its opened one; the opened one's success must
    wake the dispatcher for it (a plain success does not), not leave it to the idle poll."""
    await stack.subscribe(events=["conversation.opened", "conversation.closed"], ordering="fifo")
    stack.receiver.statuses = [500]  # the opened event is retried (0.2 s): the closed one waits
    stack.graph.put("555", "kim", "Kim")
    await stack.dm("555", "f1")
    await stack.receiver.wait_for(1)
    [conversation] = (await stack.base.ok("GET", "/api/v1/conversations?status=open"))["items"]
    await stack.base.ok("POST", f"/api/v1/conversations/{conversation['id']}/done")
    # Well within the idle poll (30 s), which would deliver it anyway.
    received = await stack.receiver.wait_for(3, timeout=10)
    assert [r.json().get("conversationClosed", False) for r in received] == [False, False, True]


async def test_openings_without_bots_do_not_send_the_bot_runner_looking(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each opening's profile, once looked up, woke the bot runner (its runs wait for
    profiles) even when the batch scheduled none: a read for nothing per opening."""
    from convohook.runtime.workers import bot_runner
    from convohook.usecases.bot_runs import has_pending_runs

    looked: list[int] = []

    def counted(tx: Transaction) -> bool:
        looked.append(1)
        return has_pending_runs(tx)

    monkeypatch.setattr(bot_runner, "has_pending_runs", counted)
    await stack.subscribe()
    openings = 12
    for i in range(openings):
        stack.graph.put(f"nb{i}", f"user{i}", None)
        await stack.dm(f"nb{i}", f"nb{i}")
        await stack.receiver.wait_for(i + 1)  # one at a time: a batch and a lookup each
    # What remains is the runner's poll, once a second.
    assert len(looked) < openings


async def test_a_looked_up_profiles_webhooks_are_claimed_where_it_is_recorded(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The enricher hands the dispatcher what its lookups made ready, claimed in the
    transaction that records them: the dispatcher does not wake to claim each opening."""
    from convohook.runtime.workers import dispatcher
    from convohook.usecases.delivery import claim_deliveries

    claims: list[int] = []

    def counted(tx: Transaction, now_ms: int, lease_until_ms: int, limit: int) -> Any:
        claims.append(1)
        return claim_deliveries(tx, now_ms, lease_until_ms, limit)

    monkeypatch.setattr(dispatcher, "claim_deliveries", counted)
    webhook = await stack.subscribe()
    openings = 12
    for i in range(openings):
        stack.graph.put(f"hc{i}", f"user{i}", None)
        await stack.dm(f"hc{i}", f"hc{i}")
        await stack.receiver.wait_for(i + 1)  # one at a time: a lookup each
    assert len(claims) < openings
    stack.receiver.verify_all(webhook["secret"])
    delivered = await eventually(lambda: _delivered(stack, webhook["id"]))
    assert [len(d["attempts"]) for d in delivered] == [1] * openings


async def test_graph_down_delays_then_sends_best_known(stack: Stack) -> None:
    await stack.subscribe()
    stack.graph.set_fault("down")
    await stack.dm("333", "g1")
    [received] = await stack.receiver.wait_for(1, timeout=15)
    body = received.json()
    assert body["from"] == "333"
    assert body["customerName"] == "333"
    assert stack.graph.requests_for("333") >= 2  # retried before giving up


async def test_failing_receiver_is_retried_with_the_same_webhook_id(stack: Stack) -> None:
    webhook = await stack.subscribe()
    stack.receiver.statuses = [500, 503]
    stack.graph.put("444", "lee", "Lee")
    await stack.dm("444", "r1")
    received = await stack.receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in received}) == 1
    stack.receiver.verify_all(webhook["secret"])
    [delivery] = await eventually(lambda: _delivered(stack, webhook["id"]))
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]


async def test_capture_bot_records_what_it_receives(stack: Stack) -> None:
    bot = await stack.base.ok("POST", "/api/v1/bots", {"name": "Lead bot", "trigger": "webhook"})
    assert bot["webhook_url"].startswith(stack.base.base_url + "/hooks/bots/")
    await stack.subscribe(url=bot["webhook_url"])
    stack.graph.put("555", "kim", "Kim K")
    await stack.dm("555", "c1")
    captures = await eventually(
        lambda: _items(stack.base.ok("GET", f"/api/v1/bots/{bot['id']}/captures"))
    )
    [capture] = captures
    assert capture["body"]["customerName"] == "Kim K"
    assert capture["headers"]["webhook-signature"].startswith("v1,")
    assert orjson.loads(capture["raw_body"]) == capture["body"]


async def test_bots_are_listed(stack: Stack) -> None:
    first = await stack.base.ok("POST", "/api/v1/bots", {"name": "One", "trigger": "webhook"})
    second = await stack.base.ok("POST", "/api/v1/bots", {"name": "Two", "trigger": "webhook"})
    listed = await stack.base.ok("GET", "/api/v1/bots?limit=1")
    assert [b["id"] for b in listed["items"]] == [second["id"]]
    rest = await stack.base.ok("GET", f"/api/v1/bots?cursor={listed['next']}")
    assert [b["webhook_url"] for b in rest["items"]] == [first["webhook_url"]]
    assert (await stack.other.ok("GET", "/api/v1/bots"))["items"] == []


async def test_a_conversations_messages_are_listed_oldest_first(stack: Stack) -> None:
    stack.graph.put("556", "lee", "Lee")
    await stack.dm("556", "msg-b", ts=1_700_000_000_002, text="second")
    await stack.dm("556", "msg-a", ts=1_700_000_000_001, text="first")
    [conversation] = await eventually(lambda: _items(stack.base.ok("GET", "/api/v1/conversations")))
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    messages = await eventually(lambda: _two(stack.base.ok("GET", path)))
    assert [m["text"] for m in messages] == ["first", "second"]
    assert messages[0]["timestamp"] == "2023-11-14T22:13:20.001Z"
    page = await stack.base.ok("GET", path + "?limit=1")
    rest = await stack.base.ok("GET", f"{path}?cursor={page['next']}")
    assert [m["mid"] for m in rest["items"]] == ["msg-b"]
    status, body = await stack.base.call("GET", path + "?cursor=nonsense")
    assert status == 422
    assert "cursor" in body["message"]
    status, _ = await stack.other.call("GET", path)
    assert status == 404


async def _two(call: Any) -> list[dict[str, Any]] | None:
    items: list[dict[str, Any]] = (await call)["items"]
    return items if len(items) == 2 else None


async def _items(call: Any) -> list[dict[str, Any]] | None:
    return (await call)["items"] or None


async def test_unknown_account_is_acknowledged_and_skipped(stack: Stack) -> None:
    await stack.subscribe()
    body = n.notification([n.entry("404404", [n.text_message("9", "404404", "u1", 1, "x")])])
    assert await stack.meta.post(body) == 200
    await eventually(lambda: _processed(stack))
    assert stack.receiver.received == []


async def _processed(stack: Stack) -> bool:
    return await stored_notifications(stack, "pending") == 0


async def stored_notifications(stack: Stack, status: str | None = None) -> int:
    """A plain count: pending_notifications() claims rows (SKIP LOCKED on PostgreSQL), and
    claiming from a test would hide them from the processor."""

    def count(tx: Any) -> int:
        sql = "SELECT count(*) FROM notifications WHERE CAST(? AS TEXT) IS NULL OR status = ?"
        return int(tx._x(sql, (status, status)).fetchone()[0])

    return int(await stack.services.db.run(count))


async def test_metrics_count_notifications_openings_and_attempts(stack: Stack) -> None:
    await stack.subscribe()
    stack.graph.put("666", "mo", "Mo")
    await stack.dm("666", "x1")
    assert await stack.meta.post(b"{}", signature="sha256=00") == 401
    await stack.receiver.wait_for(1)

    async def scraped() -> str | None:
        import aiohttp

        async with (
            aiohttp.ClientSession() as http,
            http.get(stack.base.base_url + "/metrics") as response,
        ):
            text = await response.text()
        return text if 'convohook_delivery_attempts_total{outcome="success"' in text else None

    text = await eventually(scraped)
    assert 'convohook_notifications_received_total{outcome="stored"} 1.0' in text
    assert 'convohook_notifications_received_total{outcome="invalid_signature"} 1.0' in text
    assert 'convohook_conversations_opened_total{reason="first_message"} 1.0' in text


# --- delivery options (issue 4) -------------------------------------------------------------


async def test_custom_headers_and_bearer_auth_are_sent(stack: Stack) -> None:
    webhook = await stack.subscribe(
        headers={"X-Team": "sales", "X-Source": "instagram"},
        auth={"type": "bearer", "token": "t0k3n"},
    )
    assert webhook["auth"] == {"type": "bearer"}
    assert (
        "t0k3n"
        not in orjson.dumps(
            await stack.base.ok("GET", f"/api/v1/webhooks/{webhook['id']}")
        ).decode()
    )
    stack.graph.put("701", "hdr", "Hdr")
    await stack.dm("701", "h1")
    [received] = await stack.receiver.wait_for(1)
    assert received.headers["X-Team"] == "sales"
    assert received.headers["Authorization"] == "Bearer t0k3n"
    stack.receiver.verify_all(webhook["secret"])
    # The attempt log shows the request as sent, with the credential masked.
    [delivery] = await eventually(lambda: _delivered(stack, webhook["id"]))
    [attempt] = delivery["attempts"]
    logged = attempt["request_headers"]
    assert logged["webhook-id"] == received.headers["webhook-id"]
    assert logged["webhook-signature"] == received.headers["webhook-signature"]
    assert logged["X-Team"] == "sales"
    assert logged["User-Agent"] == received.headers["User-Agent"]
    assert logged["Authorization"] == "Bearer ••••••"
    page = orjson.dumps(await stack.base.ok("GET", f"/api/v1/webhooks/{webhook['id']}/deliveries"))
    assert b"t0k3n" not in page


async def test_basic_auth(stack: Stack) -> None:
    await stack.subscribe(auth={"type": "basic", "username": "ann", "password": "s3cret"})
    stack.graph.put("702", "basic", None)
    await stack.dm("702", "b1")
    [received] = await stack.receiver.wait_for(1)
    assert received.headers["Authorization"] == "Basic YW5uOnMzY3JldA=="


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"Content-Type": "text/plain"}, "cannot be overridden"),
        ({"webhook-signature": "v1,forged"}, "cannot be overridden"),
        ({"Authorization": "Bearer x"}, "use auth"),
        ({"X-Evil": "a\r\nInjected: yes"}, "one line"),
        ({"Bad Name": "x"}, "not a valid header name"),
    ],
)
async def test_custom_headers_are_validated(
    stack: Stack, headers: dict[str, str], fragment: str
) -> None:
    status, body = await stack.base.call(
        "POST",
        "/api/v1/webhooks",
        {
            "name": "crm",
            "url": stack.receiver.url,
            "channel_ids": [stack.channel["id"]],
            "headers": headers,
        },
    )
    assert status == 422
    assert fragment in body["message"]


async def test_standard_envelope_format(stack: Stack) -> None:
    webhook = await stack.subscribe(format="standard")
    stack.graph.put("703", "envy", "Envy")
    await stack.dm("703", "s1", ts=1_700_000_000_123, text="first words")
    await stack.receiver.wait_for(1)
    [body] = stack.receiver.verify_all(webhook["secret"])
    assert list(body) == ["type", "timestamp", "data"]
    assert body["type"] == "conversation.opened"
    data = body["data"]
    assert data["from"] == "envy"
    assert data["conversationOpened"] is True
    assert data["reason"] == "first_message"
    assert data["igsid"] == "703"
    assert data["eventId"].startswith("evt_")
    assert data["conversationId"].startswith("conv_")
    assert data["firstMessage"] == {"text": "first words", "timestamp": "2023-11-14T22:13:20.123Z"}
    # The log keeps the envelope as sent, since it is not the stored DoubleTick payload.
    [delivery] = await eventually(lambda: _delivered(stack, webhook["id"]))
    assert stack.receiver.received[0].body == delivery["attempts"][0]["request_body"].encode()


async def test_secret_rotation_sends_both_signatures_during_grace(stack: Stack) -> None:
    webhook = await stack.subscribe()
    rotated = await stack.base.ok(
        "POST", f"/api/v1/webhooks/{webhook['id']}/rotate-secret", {"grace_seconds": 3600}
    )
    assert rotated["secret"] != webhook["secret"]
    assert rotated["previous_valid_until"]
    stack.graph.put("704", "rot", None)
    await stack.dm("704", "r1")
    [received] = await stack.receiver.wait_for(1)
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    stack.receiver.verify_all(webhook["secret"])  # receivers not yet switched
    stack.receiver.verify_all(rotated["secret"])  # receivers already switched


async def test_ed25519_webhook_signs_v1a(stack: Stack) -> None:
    from convohook.delivery.signing import verify_v1a

    webhook = await stack.subscribe(signature_scheme="ed25519")
    assert "secret" not in webhook
    assert webhook["public_key"].startswith("whpk_")
    stack.graph.put("705", "ed", None)
    await stack.dm("705", "e1")
    [received] = await stack.receiver.wait_for(1)
    h = received.headers
    assert h["webhook-signature"].startswith("v1a,")
    assert verify_v1a(
        webhook["public_key"],
        h["webhook-id"],
        int(h["webhook-timestamp"]),
        received.body,
        h["webhook-signature"],
    )


async def test_per_webhook_timeout(stack: Stack) -> None:
    webhook = await stack.subscribe(timeout_seconds=1)
    stack.receiver.delay = 3
    stack.graph.put("706", "slow", None)
    await stack.dm("706", "t1")

    async def timed_out() -> list[dict[str, Any]] | None:
        items = (await stack.base.ok("GET", f"/api/v1/webhooks/{webhook['id']}/deliveries"))[
            "items"
        ]
        return items if items and items[0]["attempts"] else None

    [delivery] = await eventually(timed_out)
    assert delivery["attempts"][0]["error_class"] == "timeout"
    assert delivery["status"] == "pending"


async def test_recover_resends_failed_deliveries(stack: Stack) -> None:
    webhook = await stack.subscribe()
    stack.receiver.statuses = [500, 500, 500]  # 1 + 2 retries: the delivery fails
    stack.graph.put("707", "rec", None)
    await stack.dm("707", "f1")
    await stack.receiver.wait_for(3)

    async def failed() -> list[dict[str, Any]] | None:
        items = (await stack.base.ok("GET", f"/api/v1/webhooks/{webhook['id']}/deliveries"))[
            "items"
        ]
        return items if items and items[0]["status"] == "failed" else None

    await eventually(failed)
    answer = await stack.base.ok(
        "POST", f"/api/v1/webhooks/{webhook['id']}/recover", {"since": "2020-01-01T00:00:00Z"}
    )
    assert answer["recovered"] == 1
    await stack.receiver.wait_for(4)
    assert len({r.headers["webhook-id"] for r in stack.receiver.received}) == 1


async def test_concurrency_limit_is_respected(stack: Stack) -> None:
    webhook = await stack.subscribe(max_concurrency=1, rate_limit_per_second=50)
    assert webhook["max_concurrency"] == 1
    stack.receiver.delay = 0.2
    for i in range(5):
        stack.graph.put(f"80{i}", f"c{i}", None)
        await stack.dm(f"80{i}", f"cc{i}")
    await stack.receiver.wait_for(5, timeout=30)
    assert stack.receiver.max_in_flight == 1

    async def all_once() -> list[dict[str, Any]] | None:
        items = await _delivered(stack, webhook["id"])
        return items if items and len(items) == 5 else None

    deliveries = await eventually(all_once, timeout=15)
    assert all(len(d["attempts"]) == 1 for d in deliveries)  # holding back is not an attempt


async def test_operations_webhook_needs_no_channel_but_conversation_events_do(stack: Stack) -> None:
    ops = await stack.base.ok(
        "POST",
        "/api/v1/webhooks",
        {
            "name": "ops",
            "url": stack.receiver.url,
            "events": ["webhook.disabled", "delivery.exhausted"],
        },
    )
    assert ops["channel_ids"] == []
    status, body = await stack.base.call(
        "POST",
        "/api/v1/webhooks",
        {"name": "x", "url": stack.receiver.url, "events": ["conversation.opened"]},
    )
    assert status == 422
    assert "channel_ids" in body["message"]


async def test_a_410_is_reported_to_the_operations_webhook(stack: Stack) -> None:
    async with run_receiver(Receiver()) as ops_receiver:
        ops = await stack.base.ok(
            "POST",
            "/api/v1/webhooks",
            {"name": "ops", "url": ops_receiver.url, "events": ["webhook.disabled"]},
        )
        gone = await stack.subscribe()
        stack.receiver.statuses = [410]
        stack.graph.put("901", "gone", None)
        await stack.dm("901", "g1")
        [report] = await ops_receiver.wait_for(1)
        [body] = ops_receiver.verify_all(ops["secret"])
        assert body["type"] == "webhook.disabled"
        assert body["data"]["webhookId"] == gone["id"]
        assert report.headers["webhook-id"].startswith("msg_")


async def test_a_refused_connection_is_retried_once_at_once(stack: Stack) -> None:
    sock = free_socket()
    closed_url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    sock.close()  # nothing listens there: connections are refused at once
    webhook = await stack.subscribe(url=closed_url)
    stack.graph.put("902", "refused", None)
    await stack.dm("902", "x1")

    async def failed() -> list[dict[str, Any]] | None:
        items = (await stack.base.ok("GET", f"/api/v1/webhooks/{webhook['id']}/deliveries"))[
            "items"
        ]
        return items if items and items[0]["status"] == "failed" else None

    [delivery] = await eventually(failed)
    # Each send is refused at once and retried at once, and both attempts count: send 1
    # (attempts 1, 2), then a scheduled retry (3, 4) after which the schedule (0.2, 0.2) is spent.
    assert [a["attempt"] for a in delivery["attempts"]] == [1, 2, 3, 4]
    assert {a["error_class"] for a in delivery["attempts"]} == {"connect"}


async def test_deleting_a_webhook_answers_an_empty_204_without_a_server_error(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    webhook = await stack.subscribe()
    caplog.set_level(logging.ERROR, logger="uvicorn.error")
    async with aiohttp.ClientSession(headers=stack.base.headers) as http:
        async with http.delete(f"{stack.base.base_url}/api/v1/webhooks/{webhook['id']}") as gone:
            assert gone.status == 204
            assert await gone.read() == b""
        async with http.get(f"{stack.base.base_url}/api/v1/webhooks/{webhook['id']}") as again:
            assert again.status == 404
    # A 204 with a body ("null") made uvicorn log "Exception in ASGI application" every time.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
